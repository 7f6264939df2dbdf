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


def test_a_scan_gives_the_stamps_of_every_file_of_its_folders(tmp_path):
    signal, header = _source(tmp_path)
    (tmp_path / "src" / "sub").mkdir()  # a folder is not a file
    (tmp_path / "src" / "link.dat").symlink_to(signal)  # followed, as stamp() follows it
    (tmp_path / "src" / "broken.dat").symlink_to(tmp_path / "nowhere")  # missing
    (tmp_path / "top.csv").write_text("x\n")
    found = prepared.scan(tmp_path, ["src", "absent", ""])
    paths = [signal, header, tmp_path / "src" / "link.dat", tmp_path / "top.csv"]
    assert found == prepared.stamps(paths, tmp_path)


def test_the_newest_manifest_of_the_same_source_is_found(tmp_path):
    cache, first, second = tmp_path / "cache", tmp_path / "tree-a", tmp_path / "tree-b"
    assert prepared.newest_manifest(cache, "x-", first) == (None, {})  # no cache folder yet
    for folder, source, tag in [("x-1", first, 1), ("x-2", first, 2), ("x-3", second, 3), ("y-4", first, 4)]:
        (cache / folder).mkdir(parents=True)
        prepared.write_manifest(cache / folder, source, {"tag": tag})
    older = next((cache / "x-2").glob("manifest-*.json")).stat()
    os.utime(next((cache / "x-1").glob("manifest-*.json")), ns=(older.st_atime_ns, older.st_mtime_ns + 10**9))
    folder, manifest = prepared.newest_manifest(cache, "x-", first)
    assert folder == cache / "x-1" and manifest == {"tag": 1, "source": str(first)}
    assert prepared.newest_manifest(cache, "x-", second)[1]["tag"] == 3
    next((cache / "x-1").glob("manifest-*.json")).write_text("[1, 2]")  # not a manifest: none
    assert prepared.newest_manifest(cache, "x-", first) == (None, {})


def test_a_manifest_that_cannot_be_written_is_left_out(tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    prepared.write_manifest(tmp_path / "not-a-folder", tmp_path, {"tag": 1})  # no error
    assert prepared.newest_manifest(tmp_path, "not-", tmp_path) == (None, {})
