"""Checksummed, resumable downloads with the standard library only (``urllib``).

Built for PhysioNet's layout: every dataset version publishes a ``SHA256SUMS.txt`` of
``<sha256> <relative path>`` lines next to its files (e.g.
https://physionet.org/files/ptb-xl/1.0.3/SHA256SUMS.txt), so a tree can be fetched file by file,
verified, and resumed after an interruption.

* :func:`download_file` writes to ``<dest>.part``, resumes it with an HTTP ``Range`` request,
  retries network errors with exponential backoff, and moves the file into place only after
  its SHA-256 matches; a mismatching download is deleted and reported (file, expected, actual).
* :func:`verify_tree` only reports (ok / mismatched / missing); it never deletes.
* :func:`download_tree` fetches every listed file that is not already present and verified.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ecgbench.core.config import RunFailed

CHUNK = 1 << 16
PROGRESS_MIN_BYTES = 8 << 20  # a byte-level progress bar only for transfers at least this big
USER_AGENT = "ecgbench-downloader/1 (+urllib)"
_HASH_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$")
# HTTP statuses worth retrying; any other 4xx means the request itself is wrong.
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(RunFailed):
    """A download failed for good (after retries, or a client error such as 404)."""


class ChecksumMismatch(DownloadError):
    """A downloaded file's SHA-256 differs from the expected one; the file was deleted."""


@dataclass
class VerifyReport:
    """Relative paths (as listed in the sums file) sorted into ok / mismatched / missing."""

    ok: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.mismatched and not self.missing

    def summary(self) -> str:
        return (f"{len(self.ok)} ok, {len(self.mismatched)} mismatched, "
                f"{len(self.missing)} missing")


# ----- checksums -------------------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_sha256sums(path: str | Path) -> dict[str, str]:
    """``{relative_path: sha256}`` from a ``sha256sum``-style file (PhysioNet's SHA256SUMS.txt).

    Paths that are absolute or climb out of the tree (``..``) are refused: the file comes from
    the network and its paths become local file names.
    """
    path = Path(path)
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _HASH_LINE.match(line)
        if not match:
            raise RunFailed(f"{path}:{number}: not a '<sha256> <path>' line: {line[:80]!r}")
        relative = match.group(2)
        parts = PurePosixPath(relative).parts
        if relative.startswith("/") or ".." in parts:
            raise RunFailed(f"{path}:{number}: refusing a path outside the tree: {relative!r}")
        sums[relative] = match.group(1).lower()
    return sums


def verify_tree(root: str | Path, sums: dict[str, str]) -> VerifyReport:
    """Hash every listed file under ``root``; report, never delete."""
    root = Path(root)
    report = VerifyReport()
    for relative, expected in sorted(sums.items()):
        target = root / relative
        if not target.is_file():
            report.missing.append(relative)
        elif sha256_of(target) == expected:
            report.ok.append(relative)
        else:
            report.mismatched.append(relative)
    return report


# ----- one file --------------------------------------------------------------------------------
def download_file(url: str, dest: str | Path, sha256: str | None = None, retries: int = 4,
                  backoff: float = 1.0, timeout: float = 60.0, progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest`` via ``dest.part`` (resumed with HTTP Range), then verify.

    An existing ``dest`` whose hash matches (or any existing ``dest`` when no hash is given) is
    kept without a request. Network errors and 5xx/429 answers are retried ``retries`` times,
    waiting ``backoff * 2**attempt`` seconds; the partial file is kept between attempts so each
    retry resumes. Raises :class:`ChecksumMismatch` (file deleted) or :class:`DownloadError`.
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256.lower()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress)
            break
        except _Retryable as error:
            if attempt == retries:
                raise DownloadError(f"{dest}: download of {url} failed after {retries + 1} "
                                    f"attempts: {error}") from None
            time.sleep(backoff * 2**attempt)
    _verify_part(part, dest, sha256)
    os.replace(part, dest)
    return dest


class _Retryable(Exception):
    """A transient failure: the next attempt resumes from what the .part file holds."""


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            _receive(response, part, offset, progress)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return  # the .part already holds the whole file; the checksum decides
        if error.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {error.code} {error.reason}") from None
        raise DownloadError(f"{part.with_suffix('')}: {url} answered HTTP {error.code} "
                            f"{error.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
            OSError) as error:
        raise _Retryable(f"{type(error).__name__}: {error}") from None


def _receive(response: http.client.HTTPResponse, part: Path, offset: int, progress: bool) -> None:
    """Append (206) or rewrite (200: the server ignored Range) and check the byte count."""
    resumed = response.status == 206 and offset > 0
    start = offset if resumed else 0
    length = response.headers.get("Content-Length")
    expected = start + int(length) if length is not None else None
    written = start
    with open(part, "ab" if resumed else "wb") as handle, \
            _bar(part.name, expected, start, progress) as advance:
        for block in iter(lambda: response.read(CHUNK), b""):
            handle.write(block)
            written += len(block)
            advance(len(block))
    if expected is not None and written < expected:
        raise _Retryable(f"connection closed after {written} of {expected} bytes")


@contextmanager
def _bar(name: str, total: int | None, done: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled or total is None or total < PROGRESS_MIN_BYTES:
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(name, total=total, completed=done)
        yield lambda n: bar.advance(task, n)


def _verify_part(part: Path, dest: Path, sha256: str | None) -> None:
    if sha256 is None:
        return
    actual = sha256_of(part)
    if actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{dest}: SHA-256 mismatch (expected {sha256.lower()}, "
                               f"got {actual}); the download was deleted")


# ----- a tree ----------------------------------------------------------------------------------
def file_url(base_url: str, relative: str) -> str:
    return base_url.rstrip("/") + "/" + urllib.parse.quote(relative)


def download_tree(base_url: str, root: str | Path, sums: dict[str, str],
                  include: Callable[[str], bool] | None = None, retries: int = 4,
                  backoff: float = 1.0, progress: bool = True) -> VerifyReport:
    """Download every listed file (``include(relative_path)`` true) not already verified.

    Keeps going after a failed file so one bad file does not stop a long download, then raises
    :class:`DownloadError` naming the first failure and the count. Returns the final report.
    """
    root = Path(root)
    wanted = {rel: digest for rel, digest in sums.items() if include is None or include(rel)}
    todo = [rel for rel in sorted(wanted) if not _verified(root / rel, wanted[rel])]
    failures: list[str] = []
    for relative in _files_progress(todo, progress):
        try:
            download_file(file_url(base_url, relative), root / relative, wanted[relative],
                          retries=retries, backoff=backoff, progress=progress)
        except DownloadError as error:
            failures.append(str(error))
    if failures:
        raise DownloadError(f"{len(failures)} of {len(todo)} files failed; first: {failures[0]}")
    # every wanted file was hashed once already: before the loop, or by download_file
    return VerifyReport(ok=sorted(wanted))


def _verified(path: Path, expected: str) -> bool:
    return path.is_file() and sha256_of(path) == expected


def _files_progress(items: list[str], enabled: bool) -> Iterable[str]:
    if not enabled or len(items) < 50:
        return items
    from rich.progress import track

    return track(items, description="downloading files", transient=True)
