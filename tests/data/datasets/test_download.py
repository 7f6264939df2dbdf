"""The downloader against a local HTTP server (127.0.0.1, a thread) serving a PhysioNet-style tree.

The fixture tree mimics https://physionet.org/files/ptb-xl/1.0.3/: a SHA256SUMS.txt of
``<sha256> <path>`` lines, top-level csv files and records100/00000/*.dat|.hea files (random
bytes; the downloader never looks inside). The server honours ``Range`` and can be told to fail,
cut a transfer short or serve corrupted bytes.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ecgbench.core.config import RunFailed
from ecgbench.data.datasets import ptbxl
from ecgbench.data.datasets.download import (
    ChecksumMismatch,
    DownloadError,
    download_file,
    download_tree,
    parse_sha256sums,
    verify_tree,
)

SHARED_PTBXL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ptb-xl"
PREFIX = "/files/ptb-xl/1.0.3/"


class Server:
    """Serves ``files`` (url path -> bytes); logs requests; misbehaves on demand."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.fail_first = 0  # answer this many requests with 503
        self.cut_first = 0  # send only half of the body on this many requests, then close
        self.corrupt: set[str] = set()  # paths served with one byte flipped
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server.serve(self)

        return Handler

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests.append((h.path, h.headers.get("Range")))
            if self.fail_first > 0:
                self.fail_first -= 1
                h.send_error(503, "try again")
                return
            cut = self.cut_first > 0
            self.cut_first -= int(cut)
        body = self.files.get(h.path)
        if body is None:
            h.send_error(404)
            return
        if h.path in self.corrupt:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        start = _range_start(h.headers.get("Range"))
        if start is not None and start >= len(body):
            h.send_error(416)
            return
        h.send_response(206 if start is not None else 200)
        payload = body[start or 0:]
        if start is not None:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload[: len(payload) // 2] if cut else payload)
        if cut:
            h.close_connection = True


def _range_start(header: str | None) -> int | None:
    if not header:
        return None
    assert header.startswith("bytes=") and header.endswith("-"), header
    return int(header[len("bytes="):-1])


def _tree() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {"ptbxl_database.csv": b"ecg_id,patient_id\n1,15709.0\n",
             "scp_statements.csv": b",diagnostic\nNORM,1.0\n"}
    for i in (1, 2, 3):
        files[f"records100/00000/{i:05d}_lr.hea"] = f"{i:05d}_lr 12 100 1000\n".encode()
        files[f"records100/00000/{i:05d}_lr.dat"] = rng.bytes(24_000)
    sums = "".join(f"{hashlib.sha256(b).hexdigest()} {p}\n" for p, b in sorted(files.items()))
    files["SHA256SUMS.txt"] = sums.encode()
    return files


@pytest.fixture
def tree() -> dict[str, bytes]:
    return _tree()


@pytest.fixture
def server(tree):
    fake = Server({PREFIX + path: body for path, body in tree.items()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}{PREFIX}"
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _sums(tree: dict[str, bytes], tmp_path: Path) -> dict[str, str]:
    (tmp_path / "SHA256SUMS.txt").write_bytes(tree["SHA256SUMS.txt"])
    return parse_sha256sums(tmp_path / "SHA256SUMS.txt")


def test_full_tree_downloads_and_verifies(server, tree, tmp_path):
    sums = _sums(tree, tmp_path)
    report = download_tree(server.base, tmp_path / "out", sums, backoff=0)
    assert report.complete and len(report.ok) == len(sums) == 8
    for relative in sums:
        assert (tmp_path / "out" / relative).read_bytes() == tree[relative]
    assert not list((tmp_path / "out").rglob("*.part"))
    # a second call finds everything verified and asks the server nothing
    before = len(server.requests)
    download_tree(server.base, tmp_path / "out", sums, backoff=0)
    assert len(server.requests) == before


def test_include_filters_the_tree(server, tree, tmp_path):
    sums = _sums(tree, tmp_path)
    report = download_tree(server.base, tmp_path / "out", sums, backoff=0,
                           include=lambda p: p.endswith(".csv"))
    assert sorted(report.ok) == ["ptbxl_database.csv", "scp_statements.csv"]
    assert not (tmp_path / "out" / "records100").exists()


def test_corrupted_file_is_refused_and_deleted(server, tree, tmp_path):
    path = "records100/00000/00002_lr.dat"
    server.corrupt.add(PREFIX + path)
    expected = hashlib.sha256(tree[path]).hexdigest()
    dest = tmp_path / path
    with pytest.raises(ChecksumMismatch) as caught:
        download_file(server.base + path, dest, sha256=expected, backoff=0)
    message = str(caught.value)
    assert str(dest) in message and expected in message
    corrupted = bytes([tree[path][0] ^ 0xFF]) + tree[path][1:]
    assert hashlib.sha256(corrupted).hexdigest() in message
    assert "\n" not in message and isinstance(caught.value, RunFailed)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_tree_reports_a_corrupted_file_and_keeps_the_rest(server, tree, tmp_path):
    sums = _sums(tree, tmp_path)
    server.corrupt.add(PREFIX + "scp_statements.csv")
    with pytest.raises(DownloadError, match="1 of 8 files failed; first: .*scp_statements.csv"):
        download_tree(server.base, tmp_path / "out", sums, backoff=0)
    report = verify_tree(tmp_path / "out", sums)
    assert report.missing == ["scp_statements.csv"] and len(report.ok) == 7


def test_part_file_resumes_with_a_range_request(server, tree, tmp_path):
    path = "records100/00000/00003_lr.dat"
    body = tree[path]
    dest = tmp_path / path
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(body[: len(body) // 2])
    download_file(server.base + path, dest, sha256=hashlib.sha256(body).hexdigest(), backoff=0)
    assert dest.read_bytes() == body
    assert server.requests == [(PREFIX + path, f"bytes={len(body) // 2}-")]


def test_connection_cut_midway_is_resumed(server, tree, tmp_path):
    path = "records100/00000/00001_lr.dat"
    body = tree[path]
    server.cut_first = 1
    dest = download_file(server.base + path, tmp_path / "x.dat",
                         sha256=hashlib.sha256(body).hexdigest(), backoff=0)
    assert dest.read_bytes() == body
    assert [r for _, r in server.requests] == [None, f"bytes={len(body) // 2}-"]


def test_complete_part_file_is_accepted_after_416(server, tree, tmp_path):
    path = "scp_statements.csv"
    dest = tmp_path / path
    dest.with_name(dest.name + ".part").write_bytes(tree[path])
    download_file(server.base + path, dest, sha256=hashlib.sha256(tree[path]).hexdigest())
    assert dest.read_bytes() == tree[path]


def test_retries_a_failing_server_then_succeeds(server, tree, tmp_path):
    server.fail_first = 3
    path = "ptbxl_database.csv"
    dest = download_file(server.base + path, tmp_path / path, retries=4, backoff=0,
                         sha256=hashlib.sha256(tree[path]).hexdigest())
    assert dest.read_bytes() == tree[path]
    assert len(server.requests) == 4


def test_gives_up_after_the_retries(server, tmp_path):
    server.fail_first = 10
    with pytest.raises(DownloadError, match=r"failed after 3 attempts: HTTP 503"):
        download_file(server.base + "ptbxl_database.csv", tmp_path / "db.csv", retries=2,
                      backoff=0)
    assert len(server.requests) == 3


def test_backoff_is_exponential(server, tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr("ecgbench.data.datasets.download.time.sleep", waits.append)
    server.fail_first = 3
    download_file(server.base + "ptbxl_database.csv", tmp_path / "db.csv", backoff=0.5)
    assert waits == [0.5, 1.0, 2.0]


def test_not_found_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.base + "nope.csv", tmp_path / "nope.csv", backoff=0)
    assert len(server.requests) == 1


def test_unreachable_host_is_one_line_error(tmp_path):
    with pytest.raises(DownloadError, match="failed after 2 attempts"):
        download_file("http://127.0.0.1:9/x.csv", tmp_path / "x.csv", retries=1, backoff=0,
                      timeout=2)


def test_ptbxl_download_fetches_sums_then_the_tree(server, tree, tmp_path):
    target = ptbxl.download(tmp_path, base_url=server.base, include=lambda p: "00001" in p)
    assert target == tmp_path / "ptb-xl"
    assert (target / "SHA256SUMS.txt").read_bytes() == tree["SHA256SUMS.txt"]
    assert sorted(p.name for p in (target / "records100" / "00000").iterdir()) == \
        ["00001_lr.dat", "00001_lr.hea"]


def test_ptbxl_download_of_one_rate_skips_the_other(server, tree, tmp_path):
    target = ptbxl.download(tmp_path, fs=500, base_url=server.base)
    assert not (target / "records100").exists()  # the fixture tree has only records100
    assert (target / "ptbxl_database.csv").read_bytes() == tree["ptbxl_database.csv"]


def test_parse_sha256sums_formats_and_refusals(tmp_path):
    digest = "a" * 64
    good = tmp_path / "good.txt"
    good.write_text(f"{digest} x/a.dat\n\n{digest.upper()}  *b c.hea\n")
    assert parse_sha256sums(good) == {"x/a.dat": digest, "b c.hea": digest}
    for line, problem in ((f"{digest} ../etc/passwd", "outside the tree"),
                          (f"{digest} /etc/passwd", "outside the tree"),
                          ("abc x.dat", "not a '<sha256> <path>' line")):
        bad = tmp_path / "bad.txt"
        bad.write_text(line + "\n")
        with pytest.raises(RunFailed, match=problem):
            parse_sha256sums(bad)


@pytest.mark.skipif(not SHARED_PTBXL.is_dir(), reason="shared PTB-XL subset not available")
def test_verify_tree_on_the_shared_ptbxl_subset():
    """SOURCE.md: all 400 listed record files match; the truncated ptbxl_database.csv and the
    slightly different LICENSE.txt do not; scp_statements.csv is byte-identical."""
    sums = parse_sha256sums(SHARED_PTBXL / "SHA256SUMS.txt")
    assert len(sums) == 403
    report = verify_tree(SHARED_PTBXL, sums)
    records = [p for p in report.ok if p.startswith("records")]
    assert len(records) == 400
    assert sum(p.startswith("records100/") for p in records) == 200
    assert "scp_statements.csv" in report.ok
    assert report.mismatched == ["LICENSE.txt", "ptbxl_database.csv"]
    assert report.missing == [] and not report.complete


def test_progress_bar_path_for_large_transfers(server, tree, tmp_path, monkeypatch):
    monkeypatch.setattr("ecgbench.data.datasets.download.PROGRESS_MIN_BYTES", 1000)
    path = "records100/00000/00001_lr.dat"
    dest = download_file(server.base + path, tmp_path / "x.dat", backoff=0,
                         sha256=hashlib.sha256(tree[path]).hexdigest())
    assert dest.read_bytes() == tree[path]


def test_existing_file_with_a_wrong_hash_is_fetched_again(server, tree, tmp_path):
    path = "scp_statements.csv"
    dest = tmp_path / path
    dest.write_bytes(b"stale")
    download_file(server.base + path, dest, sha256=hashlib.sha256(tree[path]).hexdigest())
    assert dest.read_bytes() == tree[path] and len(server.requests) == 1
