"""Prepared caches, shared by the dataset loaders: what a cache was built from, what it holds.

* :func:`build_key` names a cache folder after everything it was built from: the loader's
  options, digests of the small files it parses (csv tables, WFDB headers) and the size and
  modification time (ns) of every other source file (:func:`stamps`; signal files are too big
  to hash on every load). Overwriting, truncating or touching a source file rebuilds the cache.
* :func:`finish` writes ``done.json`` last, with the :func:`content_fingerprint` of the
  prepared ``signals.npy`` and ``meta.csv``. :func:`fingerprint` reads it back (mixed with
  options applied at load time, such as split seeds): it depends on the prepared content only,
  not on file times or paths, so a copied or re-downloaded tree keeps it. Loaders expose it as
  ``Recordings.fingerprint`` and end ``Recordings.version`` with it, so everything keyed by the
  version (runs, embeddings, results) names the exact data it used.
* :func:`scan` stamps every file of a few source folders in one ``os.scandir`` pass each (no
  path object or separate ``stat`` per file), so a loader that knows its record folders finds
  what is there and each file's stamp without a call per file. A manifest
  (:func:`write_manifest`, ``manifest-<source>.json`` in the cache folder, one per source tree)
  records what a key was computed from (file stamps, digests of the small files) so that the
  next load re-reads only the small files whose stamp changed (:func:`newest_manifest`); it is
  a memo for computing the same key faster, never a reason to trust a cache by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_mode
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ecgbench.core.config import short_hash
from ecgbench.core.store import StoreError, atomic_write, read_json, write_json

CONTENT = ("signals.npy", "meta.csv")


def stamp(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of a source file; None when it is missing (its reader names it)."""
    try:
        status = Path(path).stat()
    except FileNotFoundError:
        return None
    return [status.st_size, status.st_mtime_ns]


def scan(root: Path, folders: Iterable[str]) -> dict[str, list[int]]:
    """``[size, mtime_ns]`` of every regular file (links followed) directly in each of ``folders``
    (posix paths relative to ``root``), by its path relative to ``root``: the same stamps as
    :func:`stamps`, one directory listing per folder. A missing folder or a file that vanishes
    during the scan is left out, for the caller to name as missing."""
    found: dict[str, list[int]] = {}
    for folder in folders:
        prefix = f"{folder}/" if folder else ""
        try:
            entries = os.scandir(os.path.join(root, folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                try:
                    status = entry.stat()
                except OSError:
                    continue
                if stat_mode.S_ISREG(status.st_mode):
                    found[prefix + entry.name] = [status.st_size, status.st_mtime_ns]
    return found


def stamps(paths: Iterable[Path], root: Path) -> dict[str, list[int] | None]:
    """:func:`stamp` of each file, by its path relative to ``root``."""
    return {Path(path).relative_to(root).as_posix(): stamp(path) for path in paths}


def digest_files(paths: Iterable[Path], root: Path) -> str:
    """One sha256 over each small file's path relative to ``root`` and its bytes (a missing
    file counts as missing, for its reader to name)."""
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing\0")
    return digest.hexdigest()


def build_key(**parts: Any) -> str:
    """The cache folder's key: a short hash of everything the cache was built from."""
    return short_hash(parts)


def content_fingerprint(folder: Path) -> str:
    """A short hash of the prepared files' bytes."""
    from ecgbench.data.datasets.download import sha256_of  # http.client etc.: not on a cache hit

    return short_hash({name: sha256_of(Path(folder) / name) for name in CONTENT})


def finish(folder: Path, done: dict[str, Any]) -> None:
    """Write ``done.json`` (last: its presence marks the cache usable) with the fingerprint."""
    write_json(Path(folder) / "done.json", {**done, "fingerprint": content_fingerprint(folder)})


def is_prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a finished cache (a done.json that reads, with a fingerprint);
    anything less is prepared again."""
    try:
        return bool(read_json(Path(folder) / "done.json").get("fingerprint"))
    except (OSError, ValueError, AttributeError):
        return False


def fingerprint(folder: Path, **load_options: Any) -> str:
    """The cache's content fingerprint, mixed with options applied when it is loaded."""
    stored = read_json(Path(folder) / "done.json")["fingerprint"]
    return short_hash({"content": stored, **load_options}) if load_options else stored


def load_signals(folder: Path, error: type[Exception]) -> np.ndarray:
    """``signals.npy`` memory-mapped; a damaged one is ``error`` naming it, not a deep trace."""
    path = Path(folder) / "signals.npy"
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as cause:
        reason = " ".join(str(cause).split())[:100] or type(cause).__name__
        raise error(f"{path}: unreadable prepared signals ({reason}); delete {folder} to "
                    "prepare it again") from None


def _manifest_name(source: Path) -> str:
    return f"manifest-{short_hash(os.path.abspath(source), 8)}.json"


def newest_manifest(cache: Path, prefix: str, source: Path) -> tuple[Path | None, dict[str, Any]]:
    """The cache folder under ``cache`` named ``prefix...`` whose manifest for ``source`` was
    written last, and that manifest; ``(None, {})`` when there is none or it does not read."""
    name, newest = _manifest_name(source), (0, None)
    try:
        with os.scandir(cache) as entries:
            for entry in entries:
                if entry.name.startswith(prefix):
                    try:
                        newest = max(newest, (os.stat(os.path.join(entry.path, name)).st_mtime_ns, entry.path))
                    except OSError:
                        continue
    except OSError:
        return None, {}
    if newest[1] is None:
        return None, {}
    try:
        with open(os.path.join(newest[1], name), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None, {}
    return (Path(newest[1]), manifest) if isinstance(manifest, dict) else (None, {})


def write_manifest(folder: Path, source: Path, manifest: dict[str, Any]) -> None:
    """Write ``source``'s manifest into the cache ``folder`` (renamed into place); a cache on a
    read-only disk stays usable, only slower to find."""
    def dump(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({**manifest, "source": os.path.abspath(source)}, handle, separators=(",", ":"))

    try:
        atomic_write(Path(folder) / _manifest_name(source), dump)
    except StoreError:
        pass
