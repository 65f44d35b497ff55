"""What the loopback fakes (the Kaggle API, a Hub host) share: a quiet HTTP/1.1 handler and a server thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, no request log, and one call to answer with a whole body."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def send_body(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def running(server: ThreadingHTTPServer, before_stop: Callable[[], object] = lambda: None) -> Iterator[None]:
    """Serve on a daemon thread; on exit call ``before_stop`` (to release stalled handlers), then stop."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        before_stop()
        server.shutdown()
        server.server_close()
