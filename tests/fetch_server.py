"""A local HTTP server on 127.0.0.1 that answers like the CelebA sources (no test reaches the
internet): the Hugging Face Hub's tree and resolve URLs (``HF_ENDPOINT`` points the client at
it) and Google Drive's download URL (``CNN_LAB_DRIVE_URL``), serving fixture bytes with
``Range`` support, or a quota / virus-scan page, a 403, or a file paused half-way."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
QUOTA_PAGE = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>"
    b"Too many users have viewed or downloaded this file recently.</body></html>"
)
VIRUS_PAGE = (
    "<!DOCTYPE html><html><body>Google Drive can't scan this file for viruses."
    '<form id="download-form" action="{action}" method="get">'
    '<input type="hidden" name="id" value="{id}"><input type="hidden" name="confirm" value="t">'
    '<input type="hidden" name="uuid" value="abc"></form></body></html>'
)


class FixtureServer:
    """``hf``: {path in repo: bytes}; ``drive``: {id: (name, bytes)}; ``drive_mode``:
    {name: "quota" | "virus" | "403" | "pause"}; ``hf_status``: answer every Hub call with it."""

    def __init__(self):
        self.hf: dict[str, bytes] = {}
        self.drive: dict[str, tuple[str, bytes]] = {}
        self.drive_mode: dict[str, str] = {}
        self.hf_status: int | None = None
        self.log: list[tuple[str, str, str | None]] = []  # (method, name or path, Range)
        self.paused = threading.Event()  # set once a paused file has sent its first half
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                server.answer(self, head=True)

            def do_GET(self):
                server.answer(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_for(self, name: str) -> list[tuple[str, str, str | None]]:
        return [r for r in self.log if r[1] == name and r[0] == "GET"]

    # ---- answers -----------------------------------------------------------------------------
    def answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        url = urllib.parse.urlsplit(h.path)
        path = urllib.parse.unquote(url.path)
        hf_tree = "/api/datasets/flwrlabs/celeba/tree/main/"
        hf_file = "/datasets/flwrlabs/celeba/resolve/main/"
        if path.startswith(hf_tree):
            self.log.append(("GET", path, None))
            if self.hf_status:
                return self.status(h, self.hf_status)
            folder = path[len(hf_tree) :].strip("/")
            entries = [
                {
                    "type": "file",
                    "path": name,
                    "size": len(data),
                    "oid": hashlib.sha1(data).hexdigest(),
                    "lfs": {
                        "oid": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 134,
                    },
                }
                for name, data in sorted(self.hf.items())
                if name.startswith(folder + "/")
            ]
            return self.send(h, json.dumps(entries).encode(), "application/json", head)
        if path.startswith(hf_file):
            name = path[len(hf_file) :]
            self.log.append(("HEAD" if head else "GET", name, h.headers.get("Range")))
            if self.hf_status:
                return self.status(h, self.hf_status)
            if name not in self.hf:
                return self.status(h, 404)
            data = self.hf[name]
            extra = {
                "X-Repo-Commit": COMMIT,
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            }
            return self.send(h, data, "application/octet-stream", head, extra)
        if path == "/drive":
            query = urllib.parse.parse_qs(url.query)
            file_id = query.get("id", [""])[0]
            if file_id not in self.drive:
                return self.status(h, 404)
            name, data = self.drive[file_id]
            self.log.append(("GET", name, h.headers.get("Range")))
            mode = self.drive_mode.get(name)
            if mode == "quota":
                return self.send(h, QUOTA_PAGE, "text/html", head)
            if mode == "403":
                return self.status(h, 403)
            if mode == "virus" and "uuid" not in query:
                page = VIRUS_PAGE.format(action=f"{self.url}/drive", id=file_id).encode()
                return self.send(h, page, "text/html", head)
            if mode == "pause":
                return self.send(h, data, "application/octet-stream", head, pause=True)
            return self.send(h, data, "application/octet-stream", head)
        return self.status(h, 404)

    def status(self, h, code: int) -> None:
        body = json.dumps({"error": f"fixture answer {code}"}).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def send(self, h, data: bytes, kind: str, head: bool, extra=None, pause=False) -> None:
        start = 0
        asked = h.headers.get("Range")
        if asked and asked.startswith("bytes="):
            start = int(asked[6:].split("-")[0])
        body = data[start:]
        h.send_response(206 if start else 200)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        for key, value in (extra or {}).items():
            h.send_header(key, value)
        h.end_headers()
        if head:
            return
        try:
            if pause and not start:
                half = len(body) // 2
                h.wfile.write(body[:half])
                h.wfile.flush()
                self.paused.set()
                self.release.wait(60)  # until the test has killed the client
                return
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def drive_table(src: Path, files: list[str]) -> list[tuple[str, str, str]]:
    """(name, id, md5) rows like ``celeba_fetch.DRIVE_FILES`` for fixture files in ``src``."""
    return [
        (name, f"id-{k}", hashlib.md5((src / name).read_bytes()).hexdigest())
        for k, name in enumerate(files)
    ]


DRIVE_NAMES = ["list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba.zip"]


def serve_celeba(source: Path, tmp_path: Path, monkeypatch) -> FixtureServer:
    """A server with every source's copy of ``source`` (which holds an image zip too), the
    clients pointed at it, data root ``tmp_path/data`` and no Kaggle token."""
    from cnn_core.data import celeba_fetch
    from tests import celeba_fixtures as fx

    srv = FixtureServer()
    for shard in fx.parquet_shards(source, tmp_path / "shards"):
        srv.hf[f"{celeba_fetch.HF_FOLDER}/{shard.name}"] = shard.read_bytes()
    table = drive_table(source, DRIVE_NAMES)
    srv.drive = {file_id: (name, (source / name).read_bytes()) for name, file_id, _ in table}
    monkeypatch.setattr(celeba_fetch, "DRIVE_FILES", table)
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setenv("CNN_LAB_DRIVE_URL", f"{srv.url}/drive")
    monkeypatch.setenv("CNN_LAB_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return srv
