"""DREAMER loader on fixture DREAMER.mat files built here.

No real DREAMER.mat exists on this machine (access on request under an EULA). The fixture is
written with scipy.io.savemat in the release's structure: one struct variable ``DREAMER`` with
``Data`` (a 1 x 23 cell of per-volunteer structs), ``EEG_SamplingRate`` 128,
``ECG_SamplingRate`` 256, ``EEG_Electrodes`` (1 x 14 cell), ``noOfSubjects``,
``noOfVideoSequences``, ``Disclaimer``, ``Provider``, ``Version``, ``Acknowledgement``; each
volunteer ``Age`` and ``Gender`` (strings), ``EEG`` and ``ECG`` structs of ``baseline`` and
``stimuli`` (18 x 1 cells of samples x channels doubles: 14 EEG, 2 ECG) and ``ScoreValence`` /
``ScoreArousal`` / ``ScoreDominance`` (18 x 1 doubles, 1-5). Only the signal lengths are short
(real baselines are 61 s, real stimuli 65-393 s). A test reads the fixture back with the
index path public DREAMER readers use (``mat['DREAMER'][0, 0]['Data'][0, s]['ECG'][0, 0]
['stimuli'][0, 0][k, 0]``), so the layout is the one such code expects.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from ecgbench.core.config import RunFailed
from ecgbench.data.datasets import dreamer, load_dataset

WINDOW = 2560
BASELINE = 512  # samples per baseline segment in the fixture


def stimulus_length(subject: int, clip: int, scale: int = 1) -> int:
    """Clip 1 holds two windows, the others one, each with a 100 + subject sample tail."""
    return scale * WINDOW * (2 if clip == 1 else 1) + 100 + subject


def scores(subject: int, offset: int) -> np.ndarray:
    return (((np.arange(18) + subject + offset) % 5) + 1).astype(float).reshape(18, 1)


def cell(arrays: list) -> np.ndarray:
    """A MATLAB cell of the given shape (column) for savemat: an object array."""
    out = np.empty((len(arrays), 1), dtype=object)
    for i, array in enumerate(arrays):
        out[i, 0] = array
    return out


def dreamer_struct(subjects: int = 23, clips: int = 18, scale: int = 1, seed: int = 0) -> dict:
    """The release's structure with short, random signals. ``scale=0`` gives stimuli shorter
    than a window (only the 100 + subject tail): enough for the structure checks, tiny files."""
    rng = np.random.default_rng(seed)
    data = np.empty((1, subjects), dtype=object)
    for s in range(1, subjects + 1):
        # ECG in sensor units around an offset, different per volunteer and channel
        offset, gain = np.array([2000.0 + s, 1500.0 - s]), np.array([40.0 + s, 25.0])
        ecg = {
            "baseline": cell([offset + gain * rng.normal(size=(BASELINE, 2)) for _ in range(clips)]),
            "stimuli": cell([offset + gain * rng.normal(size=(stimulus_length(s, k, scale), 2))
                             for k in range(1, clips + 1)]),
        }
        eeg = {"baseline": cell([rng.normal(size=(8, 14)) for _ in range(clips)]),
               "stimuli": cell([rng.normal(size=(8, 14)) for _ in range(clips)])}
        data[0, s - 1] = {
            "Age": str(20 + s), "Gender": "male" if s % 2 else "female", "EEG": eeg, "ECG": ecg,
            "ScoreValence": scores(s, 0), "ScoreArousal": scores(s, 1), "ScoreDominance": scores(s, 2),
        }
    electrodes = np.empty((1, 14), dtype=object)
    for i, name in enumerate(["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8",
                              "FC6", "F4", "F8", "AF4"]):
        electrodes[0, i] = name
    return {
        "Data": data, "EEG_SamplingRate": 128.0, "ECG_SamplingRate": 256.0,
        "EEG_Electrodes": electrodes, "noOfSubjects": float(subjects),
        "noOfVideoSequences": float(clips), "Disclaimer": "fixture for ecgbench tests",
        "Provider": "ecgbench tests", "Version": "fixture", "Acknowledgement": "none",
    }


def write(path, struct: dict, name: str = "DREAMER"):
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {name: struct})
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("dreamer-root")
    struct = dreamer_struct()
    write(root / "dreamer" / "DREAMER.mat", struct)
    return root, struct


@pytest.fixture(scope="module")
def data(release):
    return dreamer.load(release[0])


# ----- the fixture is the release's layout -----------------------------------------------------
def test_fixture_has_the_public_index_path(release):
    root, _ = release
    mat = loadmat(root / "dreamer" / "DREAMER.mat")
    top = mat["DREAMER"][0, 0]
    assert top["Data"].shape == (1, 23) and float(top["ECG_SamplingRate"][0, 0]) == 256
    subject = top["Data"][0, 4]
    stimuli = subject["ECG"][0, 0]["stimuli"][0, 0]
    assert stimuli.shape == (18, 1) and stimuli[3, 0].shape == (stimulus_length(5, 4), 2)
    assert subject["ScoreArousal"][0, 0].shape == (18, 1)


# ----- windows and metadata --------------------------------------------------------------------
def test_windows_shapes_and_counts(data):
    # per volunteer: clip 1 gives two windows, clips 2-18 one each -> 19; 23 volunteers
    assert data.signals.shape == (23 * 19, 2, 2560) and data.signals.dtype == np.float32
    assert data.fs == 256 and data.lead_names == ("ECG1", "ECG2") and data.name == "dreamer"
    meta = data.meta
    assert meta["record_id"].tolist() == list(range(1, 23 * 19 + 1))
    assert (meta["patient_id"] == meta["subject"]).all()
    first = meta[(meta["subject"] == 1) & (meta["clip"] == 1)]
    assert first["window"].tolist() == [0, 1] and first["start_s"].tolist() == [0, 10]
    assert first["dropped_s"].iloc[0] == pytest.approx(101 / 256, abs=1e-3)


def test_scores_age_gender_follow_the_clip(data, release):
    _, struct = release
    meta = data.meta.set_index(["subject", "clip", "window"])
    row = meta.loc[(7, 5, 0)]
    cell_ = struct["Data"][0, 6]
    assert row["arousal"] == cell_["ScoreArousal"][4, 0] and row["valence"] == cell_["ScoreValence"][4, 0]
    assert row["dominance"] == cell_["ScoreDominance"][4, 0]
    assert row["age"] == "27" and row["gender"] == "male"


def test_windows_are_baseline_z_scored_stimulus(data, release):
    _, struct = release
    ecg = struct["Data"][0, 2]["ECG"]  # volunteer 3
    baseline = np.concatenate([b for b in ecg["baseline"][:, 0]])
    mean, std = baseline.mean(0), baseline.std(0)
    stimulus = ecg["stimuli"][0, 0]  # clip 1, window 1 = samples 2560..5119
    expected = ((stimulus[WINDOW : 2 * WINDOW] - mean) / std).T
    index = data.meta.index[(data.meta["subject"] == 3) & (data.meta["clip"] == 1) & (data.meta["window"] == 1)][0]
    np.testing.assert_allclose(data.signals[index], expected, rtol=1e-4, atol=1e-4)


def test_normalize_none_keeps_sensor_units(release, tmp_path):
    raw = dreamer.load(release[0], normalize="none", cache_dir=tmp_path)
    stimulus = release[1]["Data"][0, 0]["ECG"]["stimuli"][2, 0]  # volunteer 1, clip 3
    index = raw.meta.index[(raw.meta["subject"] == 1) & (raw.meta["clip"] == 3)][0]
    np.testing.assert_allclose(raw.signals[index], stimulus[:WINDOW].T.astype(np.float32))
    assert raw.version != dreamer.load(release[0], cache_dir=tmp_path).version


def test_split_by_subject_seeded(data):
    meta = data.meta
    subjects = {s: set(meta.loc[meta["split"] == s, "subject"]) for s in ("train", "val", "test")}
    assert [len(subjects[s]) for s in ("train", "val", "test")] == [15, 3, 5]
    assert not subjects["train"] & subjects["val"] and not subjects["train"] & subjects["test"]
    assert not subjects["val"] & subjects["test"]
    per_subject = meta.groupby("subject")["split"].nunique()
    assert (per_subject == 1).all()  # never split by window
    again = dreamer.assign_split(meta["subject"].to_numpy(), dreamer.SPLIT_SEED)
    assert (again == meta["split"].to_numpy()).all()
    other = dreamer.assign_split(meta["subject"].to_numpy(), 1)
    assert set(meta.loc[other == "test", "subject"]) != subjects["test"]


def test_registry_loader_info_and_cache_reuse(release, monkeypatch):
    root, _ = release
    first = load_dataset("dreamer", root)
    summary = dreamer.info(root)
    assert summary["records"] == 23 * 19 and summary["patients"] == 23 and summary["clips"] == 23 * 18
    assert summary["high_over_3"]["arousal"] == int((first.meta["arousal"] > 3).sum())
    monkeypatch.setattr(dreamer, "read_release", lambda *a: pytest.fail("cache not reused"))
    assert dreamer.load(root).version == first.version


# ----- download: a user-supplied file ----------------------------------------------------------
def test_download_explains_and_accepts_a_file(release, tmp_path):
    with pytest.raises(RunFailed, match="cannot be downloaded automatically.*EULA") as caught:
        dreamer.download(tmp_path)
    assert "\n" not in str(caught.value)
    source = release[0] / "dreamer" / "DREAMER.mat"
    target = dreamer.download(tmp_path / "copy", source=source)
    assert target == tmp_path / "copy" / "dreamer" / "DREAMER.mat" and target.read_bytes() == source.read_bytes()
    linked = dreamer.download(tmp_path / "link", source=str(source), link="true")  # as from --set
    assert linked.is_symlink() and linked.resolve() == source.resolve()
    assert not dreamer.download(tmp_path / "copy2", source=source, link="false").is_symlink()


def test_download_refuses_a_wrong_file(tmp_path):
    wrong = write(tmp_path / "other.mat", dreamer_struct(subjects=23, scale=0), name="AMIGOS")
    with pytest.raises(RunFailed, match="no variable 'DREAMER'"):
        dreamer.download(tmp_path / "root", source=wrong)
    assert not (tmp_path / "root" / "dreamer" / "DREAMER.mat").exists()


# ----- bad input: the structure checks, one line naming the file -------------------------------
def _fails(path, match: str) -> str:
    with pytest.raises(RunFailed, match=match) as caught:
        dreamer.load(path.parent.parent)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def _small(tmp_path, **changes) -> dict:
    struct = dreamer_struct(scale=0)
    struct.update(changes)
    return struct


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(RunFailed, match="DREAMER not found.*request DREAMER.mat.*--set source=PATH"):
        dreamer.load(tmp_path)


def test_wrong_top_level_variable(tmp_path):
    path = write(tmp_path / "dreamer" / "DREAMER.mat", _small(tmp_path), name="Data")
    _fails(path, r"no variable 'DREAMER' \(found \['Data'\]\)")


def test_missing_top_level_field(tmp_path):
    struct = _small(tmp_path)
    del struct["ECG_SamplingRate"]
    path = write(tmp_path / "dreamer" / "DREAMER.mat", struct)
    _fails(path, r"DREAMER lacks field\(s\) \['ECG_SamplingRate'\]")


def test_wrong_sampling_rate(tmp_path):
    path = write(tmp_path / "dreamer" / "DREAMER.mat", _small(tmp_path, ECG_SamplingRate=128.0))
    _fails(path, "ECG_SamplingRate is 128.0, expected 256 Hz")


def test_wrong_number_of_volunteers(tmp_path):
    path = write(tmp_path / "dreamer" / "DREAMER.mat", dreamer_struct(subjects=22, scale=0))
    _fails(path, "DREAMER.Data has 22 volunteers, expected 23")


def test_wrong_number_of_clips(tmp_path):
    struct = _small(tmp_path)
    ecg = struct["Data"][0, 8]["ECG"]
    ecg["stimuli"] = ecg["stimuli"][:17]
    path = write(tmp_path / "dreamer" / "DREAMER.mat", struct)
    _fails(path, r"DREAMER.Data\{9\}.ECG.stimuli has 17 clips, expected 18")


def test_missing_volunteer_field(tmp_path):
    struct = _small(tmp_path)
    del struct["Data"][0, 3]["ScoreArousal"]
    path = write(tmp_path / "dreamer" / "DREAMER.mat", struct)
    _fails(path, r"DREAMER.Data\{4\} lacks field\(s\) \['ScoreArousal'\]")


def test_wrong_number_of_ecg_channels(tmp_path):
    struct = _small(tmp_path)
    stimuli = struct["Data"][0, 0]["ECG"]["stimuli"]
    stimuli[5, 0] = np.zeros((300, 3))
    path = write(tmp_path / "dreamer" / "DREAMER.mat", struct)
    _fails(path, r"DREAMER.Data\{1\}.ECG.stimuli\{6\} is float64 \(300, 3\), expected a samples x 2")


def test_score_out_of_range(tmp_path):
    struct = _small(tmp_path)
    struct["Data"][0, 1]["ScoreValence"][2, 0] = 7
    path = write(tmp_path / "dreamer" / "DREAMER.mat", struct)
    _fails(path, r"DREAMER.Data\{2\}.ScoreValence\(3\) is 7.0, expected an integer score 1-5")


def test_nan_samples(tmp_path):
    struct = _small(tmp_path)
    struct["Data"][0, 10]["ECG"]["stimuli"][0, 0][5, 1] = np.nan
    path = write(tmp_path / "dreamer" / "DREAMER.mat", struct)
    _fails(path, r"DREAMER.Data\{11\}.ECG.stimuli\{1\}: 1 non-finite samples")


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "dreamer" / "DREAMER.mat"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"MATLAB 5.0 MAT-file, truncated" + bytes(50))
    _fails(path, "not a readable MATLAB file")


def test_hdf5_v73_file(tmp_path):
    """A v7.3 file (HDF5 with a MATLAB header): scipy cannot read it; the message says why."""
    path = tmp_path / "dreamer" / "DREAMER.mat"
    path.parent.mkdir(parents=True)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    path.write_bytes(header.ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(384))
    _fails(path, r"MATLAB v7.3 \(HDF5\) file")


def test_no_full_window_and_failed_prepare_leaves_no_cache(tmp_path):
    path = write(tmp_path / "dreamer" / "DREAMER.mat", dreamer_struct(scale=0))
    _fails(path, "no stimulus segment holds a 10 s window")
    assert not list(tmp_path.glob("dreamer-prepared-*"))


def test_unknown_option_and_bad_normalize(tmp_path):
    with pytest.raises(RunFailed, match=r"unknown option\(s\) \['fs'\]"):
        dreamer.load(tmp_path, fs=256)
    with pytest.raises(RunFailed, match="normalize must be one of"):
        dreamer.load(tmp_path, normalize="zscore")
