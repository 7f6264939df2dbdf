"""Prepared-cache bookkeeping (benchmark/datasets/prepared.py): keys from what a cache was
built from, fingerprints of what it holds, and damaged caches found rather than used."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ecgbench.core.config import RunFailed
from ecgbench.core.store import write_json
from ecgbench.data.datasets import prepared


def _source(tmp_path):
    (tmp_path / "src").mkdir()
    signal, header = tmp_path / "src" / "a.dat", tmp_path / "src" / "a.hea"
    signal.write_bytes(b"\x01\x02" * 50)
    header.write_text("a 1 100 50\n")
    return signal, header


def _key(signal, header):
    root = signal.parent
    return prepared.build_key(headers=prepared.digest_files([header], root),
                              signals=prepared.stamps([signal], root))


def test_the_key_follows_every_change_of_a_source_file(tmp_path):
    signal, header = _source(tmp_path)
    keys = {_key(signal, header)}
    assert _key(signal, header) in keys  # stable while nothing changes
    stat = signal.stat()
    signal.write_bytes(b"\x01\x03" * 50)  # same size, new content
    os.utime(signal, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    keys.add(_key(signal, header))
    signal.write_bytes(b"\x01\x03" * 49)  # truncated
    keys.add(_key(signal, header))
    stat = header.stat()
    header.write_text("a 1 100 49\n")  # same size, mtime put back: the digest still sees it
    os.utime(header, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    keys.add(_key(signal, header))
    signal.unlink()
    keys.add(_key(signal, header))
    assert len(keys) == 5


def _cache(folder, signals, meta="record_id\n1\n"):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "signals.npy", signals)
    (folder / "meta.csv").write_text(meta)
    prepared.finish(folder, {"name": "x"})


def test_the_fingerprint_is_the_content_not_the_place_or_time(tmp_path):
    signals = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    _cache(tmp_path / "a", signals)
    _cache(tmp_path / "b", signals)
    _cache(tmp_path / "c", signals + 1)
    _cache(tmp_path / "d", signals, meta="record_id\n2\n")
    found = [prepared.fingerprint(tmp_path / name) for name in "abcd"]
    assert found[0] == found[1] and len(set(found)) == 3 and len(found[0]) == 12
    seeded = prepared.fingerprint(tmp_path / "a", split_seed=1)
    assert seeded not in found and seeded == prepared.fingerprint(tmp_path / "b", split_seed=1)


@pytest.mark.parametrize("done", [None, "{not json", {"name": "x"}])
def test_a_cache_without_a_readable_fingerprinted_done_json_is_not_prepared(tmp_path, done):
    folder = tmp_path / "cache"
    _cache(folder, np.zeros((1, 1, 4), dtype=np.float32))
    assert prepared.is_prepared(folder)
    (folder / "done.json").unlink()
    if isinstance(done, str):
        (folder / "done.json").write_text(done)
    elif done is not None:
        write_json(folder / "done.json", done)
    assert not prepared.is_prepared(folder)


def test_damaged_prepared_signals_are_one_line_naming_the_file(tmp_path):
    folder = tmp_path / "cache"
    _cache(folder, np.zeros((4, 3, 100), dtype=np.float32))
    path = folder / "signals.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RunFailed) as caught:
        prepared.load_signals(folder, RunFailed)
    message = str(caught.value)
    assert message.startswith(f"{path}: unreadable prepared signals") and "\n" not in message
    assert f"delete {folder}" in message
