"""Chapman-Shaoxing / Ningbo (PhysioNet ecg-arrhythmia 1.0.0) loader on a fixture tree.

No real ecg-arrhythmia file is available here. The fixture is built in the release's exact
layout (``WFDBRecords/<nn>/<nnn>/JSxxxxx.hea|.mat`` beside ``ConditionNames_SNOMED-CT.csv``,
``RECORDS``, ``LICENSE.txt`` and ``SHA256SUMS.txt``) from real files: the five Ningbo records
JS20000-JS20004 of ../shared/data/cinc2021-rawheaders, whose original challenge headers
(``#Age:``, ``#Sex:``, ``#Dx:``, date on the record line) are the style of this release, and
whose records the 2021 challenge took from it under the same names.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ecgbench.data import leakage
from ecgbench.data.datasets import chapman, cinc2021

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
RAW, SAMPLES = SHARED / "cinc2021-rawheaders", SHARED / "cinc2021-samples"
NAMES = [f"JS2000{i}" for i in range(5)]
pytestmark = pytest.mark.skipif(not RAW.is_dir(), reason="shared CinC 2021 raw headers absent")


def build_release(folder: Path) -> Path:
    records = folder / "WFDBRecords" / "20" / "209"
    records.mkdir(parents=True)
    for name in NAMES:
        for suffix in (".hea", ".mat"):
            shutil.copy(RAW / f"{name}{suffix}", records / f"{name}{suffix}")
    (folder / "RECORDS").write_text("WFDBRecords/20/209/\n")
    (folder / "LICENSE.txt").write_text("Creative Commons Attribution 4.0 International\n")
    (folder / "ConditionNames_SNOMED-CT.csv").write_text(
        "Acronym Name,Full Name,Snomed_CT\nSB,Sinus Bradycardia,426177001\n")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    (folder / "SHA256SUMS.txt").write_text("".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}\n"
        for p in files))
    return folder


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chapman-root")
    build_release(root / chapman.FOLDER)
    return root


@pytest.fixture(scope="module")
def loaded(root):
    return chapman.load(root)


def test_reads_the_release_layout_with_the_shared_parser(loaded):
    assert loaded.name == "chapman" and loaded.version.startswith("1.0.0-p1-")
    assert loaded.signals.shape == (5, 12, 5000) and loaded.fs == 500
    meta = loaded.meta
    assert meta["record_id"].tolist() == NAMES
    assert set(meta["source"]) == {"ningbo"}  # JS10647 and above
    assert meta["filename"].tolist() == [f"WFDBRecords/20/209/{n}.hea" for n in NAMES]
    first = meta.iloc[0]  # '#Age: 84', '#Sex: Female', '#Dx: 284470004,427084000,698252002,55930002'
    assert (first["age"], first["sex"], first["dx"]) == (84.0, 1, "284470004,427084000,698252002,55930002")


def test_same_records_same_ids_and_signals_as_cinc2021(loaded, tmp_path):
    cinc = cinc2021.load(SAMPLES, cache_dir=tmp_path)
    rows = cinc.meta["record_id"].isin(NAMES).to_numpy()
    np.testing.assert_array_equal(np.asarray(loaded.signals), np.asarray(cinc.signals)[rows])
    assert loaded.meta["patient_id"].tolist() == cinc.meta.loc[rows, "patient_id"].tolist()
    assert loaded.meta["split"].tolist() == cinc.meta.loc[rows, "split"].tolist()
    assert chapman.overlaps(loaded.meta, "cinc2021").tolist() == NAMES
    assert chapman.overlaps(loaded.meta, "ptbxl") is None
    assert cinc2021.overlaps(cinc.meta, "chapman").notna().sum() == 20


def test_pretraining_on_chapman_drops_what_cinc2021_evaluates(loaded, tmp_path):
    cinc = cinc2021.load(SAMPLES, cache_dir=tmp_path)
    split = cinc.meta.set_index("record_id").loc[NAMES, "split"]
    assert split.tolist() == ["test", "train", "train", "train", "train"]  # the seeded hash split
    selection = leakage.select_pretraining(loaded, {"cinc2021": cinc})
    assert selection.excluded == {"cinc2021": ["JS20000"]}  # a cinc2021 test record
    assert loaded.meta["record_id"][selection.indices].tolist() == NAMES[1:]  # its training records
    assert selection.key.startswith("-minus-cinc2021:1:")
    with pytest.raises(leakage.LeakageError, match=r"would see 1 record \(JS20000=JS20000\)"):
        leakage.check(loaded, np.arange(5), {"cinc2021": cinc})


def test_download_fetches_every_listed_file_from_a_local_server(tmp_path):
    remote = build_release(tmp_path / "remote")
    handler = partial(_QuietHandler, directory=str(remote))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        target = chapman.download(tmp_path / "data", base_url=f"http://127.0.0.1:{server.server_address[1]}/")
        server.shutdown()
    assert target == tmp_path / "data" / "ecg-arrhythmia"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file())
    assert chapman.load(tmp_path / "data").meta["record_id"].tolist() == NAMES


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
