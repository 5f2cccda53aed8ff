"""A real HTTP file server on loopback for the hub tests: GET with Range, PUT, counters.

It serves one directory, counts requests and body bytes per path, can slow each chunk
down (so two downloads overlap) and can cut the next response of a path after N bytes
(a dropped connection, for resume tests).
"""

from __future__ import annotations

import collections
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def send_file_headers(
    handler: BaseHTTPRequestHandler, size: int, honour_range: bool = True, headers: dict[str, str] | None = None
) -> int | None:
    """Status and headers for a body of ``size`` bytes: 206 from a ``Range: bytes=N-`` start
    (when ``honour_range``), 416 past the end (then ``None``: nothing more to send), else 200.
    Returns the offset the body starts at."""
    start = 0
    rng = handler.headers.get("Range")
    if honour_range and rng and rng.startswith("bytes="):
        start = int(rng[len("bytes=") :].split("-")[0] or 0)
        if start >= size:
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{size}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        handler.send_response(206)
        handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
    else:
        handler.send_response(200)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(size - start))
    handler.send_header("Accept-Ranges", "bytes")
    handler.end_headers()
    return start


class HubServer:
    def __init__(self, root: Path, chunk_delay: float = 0.0) -> None:
        self.root = root.resolve()
        self.chunk_delay = chunk_delay
        self.requests: collections.Counter[str] = collections.Counter()
        self.bytes_sent: collections.Counter[str] = collections.Counter()
        self.range_starts: list[tuple[str, int]] = []
        self.cut_after: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _file(self) -> Path | None:
                rel = self.path.split("?")[0].lstrip("/")
                p = (server.root / rel).resolve()
                return p if p.is_relative_to(server.root) else None

            def do_GET(self) -> None:
                rel = self.path.split("?")[0].lstrip("/")
                p = self._file()
                with server.lock:
                    server.requests[rel] += 1
                if p is None or not p.is_file():
                    self.send_error(404)
                    return
                data = p.read_bytes()
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    with server.lock:
                        server.range_starts.append((rel, int(rng[len("bytes=") :].split("-")[0] or 0)))
                start = send_file_headers(self, len(data))
                if start is None:
                    return
                body = data[start:]
                with server.lock:
                    cut = server.cut_after.pop(rel, None)
                if cut is not None:
                    body = body[:cut]
                    self.close_connection = True
                for i in range(0, len(body), 1 << 15):
                    piece = body[i : i + (1 << 15)]
                    try:
                        self.wfile.write(piece)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    with server.lock:
                        server.bytes_sent[rel] += len(piece)
                    if server.chunk_delay:
                        time.sleep(server.chunk_delay)

            def do_PUT(self) -> None:
                p = self._file()
                if p is None:
                    self.send_error(403)
                    return
                n = int(self.headers.get("Content-Length", 0))
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(self.rfile.read(n))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
