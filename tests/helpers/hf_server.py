"""A Hugging Face Hub-compatible file server on loopback, for the ``hf://`` hub tests.

It serves ``ROOT/OWNER/REPO/REVISION/PATH`` at ``/{OWNER}/{REPO}/resolve/{REVISION}/{PATH}``
(HEAD and GET) with the headers a Hub client needs to download a file:

- ``X-Repo-Commit``: a 40-hex commit id per (repo, revision); the commit id is accepted as
  a revision too;
- a plain file answers 200 with ``ETag`` = its git blob id and ``Content-Length``;
- a large-file-storage file (``*.safetensors``, archives) answers 302 with ``X-Linked-Etag``
  = its sha256, ``X-Linked-Size`` and a ``Location`` on a second server (another port, so
  another origin, like a CDN) that serves ``/blobs/SHA256``;
- unknown repo (401) / revision / file (404) with ``X-Error-Code`` RepoNotFound /
  RevisionNotFound / EntryNotFound; GET honours ``Range``; the revisions in ``loop_revisions``
  redirect to themselves (a broken mirror).

Every request is logged (method, path, revision, file, Range) for the tests to check.
"""

from __future__ import annotations

import hashlib
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from helpers.hub_server import send_file_headers

LFS_SUFFIXES = (".safetensors", ".bin", ".tar", ".tar.gz", ".tgz", ".zip")


def commit_id(repo_id: str, revision: str) -> str:
    return hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Request:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    repo: str = ""
    revision: str = ""
    file: str = ""
    range: str | None = None


def _send_body(handler: BaseHTTPRequestHandler, data: bytes, head: bool, headers: dict[str, str]) -> None:
    """200 or 206 (``Range: bytes=N-``) with ``data``; HEAD sends the headers only."""
    start = send_file_headers(handler, len(data), honour_range=not head, headers=headers)
    if start is not None and not head:
        handler.wfile.write(data[start:])


def _error(handler: BaseHTTPRequestHandler, code: int, error_code: str, extra: dict[str, str] | None = None) -> None:
    body = f'{{"error": "{error_code}"}}'.encode()
    handler.send_response(code)
    handler.send_header("X-Error-Code", error_code)
    handler.send_header("Content-Type", "application/json")
    for k, v in (extra or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class HfServer:
    """``with HfServer(root) as hub: hub.endpoint`` is the value for ``HF_ENDPOINT``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.log: list[Request] = []
        self.blobs: dict[str, bytes] = {}  # sha256 -> bytes handed to the CDN by a redirect
        self.loop_revisions: set[str] = set()  # a misconfigured mirror: these redirect to themselves
        self.lock = threading.Lock()
        self.hub = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(self._hub))
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(self._cdn))
        self.threads = []
        for httpd in (self.hub, self.cdn):
            httpd.daemon_threads = True
            self.threads.append(threading.Thread(target=httpd.serve_forever, daemon=True))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def requests(self, server: str = "hub", method: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.log if r.server == server and (method is None or r.method == method)]

    def _handler(self, serve: Callable[[BaseHTTPRequestHandler, bool], None]) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the Hub's own front end

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                serve(self, True)

            def do_GET(self) -> None:
                serve(self, False)

        return Handler

    def _record(self, req: Request) -> None:
        with self.lock:
            self.log.append(req)

    def _revision_dir(self, repo_dir: Path, repo_id: str, revision: str) -> Path | None:
        if (repo_dir / revision).is_dir() and "/" not in revision and revision not in (".", ".."):
            return repo_dir / revision
        for d in repo_dir.iterdir():  # a commit id names the revision it was made for
            if d.is_dir() and commit_id(repo_id, d.name) == revision:
                return d
        return None

    def _hub(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = urllib.parse.urlsplit(h.path).path
        parts = path.lstrip("/").split("/", 4)
        if len(parts) < 5 or parts[2] != "resolve":
            self._record(Request("hub", h.command, path))
            _error(h, 404, "EntryNotFound")
            return
        owner, repo, _, revision, file = (urllib.parse.unquote(p) for p in parts)
        repo_id = f"{owner}/{repo}"
        self._record(Request("hub", h.command, path, repo_id, revision, file, h.headers.get("Range")))
        if revision in self.loop_revisions:
            h.send_response(302)
            h.send_header("Location", path)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        repo_dir = self.root / owner / repo
        if not repo_dir.resolve().is_relative_to(self.root) or not repo_dir.is_dir():
            _error(h, 401, "RepoNotFound")  # the Hub answers 401 for a repo it does not show
            return
        rev_dir = self._revision_dir(repo_dir, repo_id, revision)
        if rev_dir is None:
            _error(h, 404, "RevisionNotFound")
            return
        commit = commit_id(repo_id, rev_dir.name)
        target = (rev_dir / file).resolve()
        if not target.is_relative_to(rev_dir.resolve()) or not target.is_file():
            _error(h, 404, "EntryNotFound", {"X-Repo-Commit": commit})
            return
        data = target.read_bytes()
        if file.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            with self.lock:
                self.blobs[sha] = data
            h.send_response(302)
            h.send_header("Location", f"{self.cdn_url}/blobs/{sha}")
            h.send_header("X-Repo-Commit", commit)
            h.send_header("X-Linked-Etag", f'"{sha}"')
            h.send_header("X-Linked-Size", str(len(data)))
            h.send_header("ETag", f'"{git_blob_id(data)}"')  # the pointer file's id, which the client must not use
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        _send_body(h, data, head, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_id(data)}"'})

    def _cdn(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = urllib.parse.urlsplit(h.path).path
        sha = path.rsplit("/", 1)[-1]
        self._record(Request("cdn", h.command, path, file=sha, range=h.headers.get("Range")))
        with self.lock:
            data = self.blobs.get(sha) if path.startswith("/blobs/") else None
        if data is None:
            _error(h, 404, "EntryNotFound")
            return
        _send_body(h, data, head, {"ETag": f'"{sha}"'})

    def __enter__(self) -> HfServer:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for httpd in (self.hub, self.cdn):
            httpd.shutdown()
            httpd.server_close()
