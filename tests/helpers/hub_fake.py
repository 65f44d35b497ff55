"""A loopback fake of a TF Hub / Kaggle Models host, for the real ``tensorflow_hub`` resolver (tests only).

It serves one SavedModel folder the way tfhub.dev does now: the handle URL
(``/models/<path>?tf-hub-format=compressed``, as the resolver asks) answers 302 to a signed,
expiring archive URL (``/archive/<n>.tar.gz?Expires=…&Signature=…``), which answers the ``.tar.gz``
with ``Content-Length``. Nothing in the library is patched: the resolver reaches the fake through its
own ``http://127.0.0.1:<port>/…`` URL.

Faults are set per test in ``faults``, one consumed per handle request, then the model again:

* ``drop``: headers and half of the archive, then the connection is closed;
* ``stall``: the connection is accepted and nothing is sent (until the fake stops);
* ``403``: the signed URL is refused, as an expired one is (an XML error body, as cloud storage sends);
* ``html``: 200 with an HTML page, as a proxy's or a login page;
* ``no_model``: a valid ``.tar.gz`` whose top holds no ``saved_model.pb``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.helpers.loopback import QuietHandler, running

MODEL_PATH = "/models/google/resnet-v2/tensorFlow2/50-feature-vector/2"


def tar_gz(folder: Path, skip: str | None = None) -> bytes:
    """``folder``'s tree at the top of a gzip tarball, folders first as ``tar`` writes them (the resolver
    makes no parent folders); ``skip``: a name to leave out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(folder.rglob("*")):
            if path.name != skip:
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


class FakeHub:
    def __init__(self, model_dir: Path) -> None:
        self.body = tar_gz(model_dir)
        self.no_model = tar_gz(model_dir, skip="saved_model.pb")
        self.faults: list[str] = []
        self.requests: list[str] = []  # the paths asked for, in order
        self.stop = threading.Event()
        self._signed: dict[str, str | None] = {}  # archive path -> its fault
        self._count = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{MODEL_PATH}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fake.requests.append(parts.path)
                if parts.path == MODEL_PATH and parse_qs(parts.query).get("tf-hub-format") == ["compressed"]:
                    archive = f"/archive/{next(fake._count)}.tar.gz"
                    fake._signed[archive] = fake.faults.pop(0) if fake.faults else None
                    self.send_response(302)
                    self.send_header("Location", f"{archive}?Expires=1893456000&Signature=c2lnbmVk")
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if parts.path not in fake._signed:
                    return self.send_body(404, "text/plain", b"not found")
                fault = fake._signed[parts.path]
                if fault == "stall":
                    fake.stop.wait(120)
                    self.close_connection = True
                elif fault == "403":
                    self.send_body(403, "application/xml", b"<Error><Code>AccessDenied</Code></Error>")
                elif fault == "html":
                    self.send_body(200, "text/html", b"<!DOCTYPE html><html><body>Sign in to continue</body></html>")
                elif fault == "no_model":
                    self.send_body(200, "application/x-gzip", fake.no_model)
                elif fault == "drop":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-gzip")
                    self.send_header("Content-Length", str(len(fake.body)))
                    self.end_headers()
                    self.wfile.write(fake.body[: len(fake.body) // 2])
                    self.close_connection = True
                else:
                    self.send_body(200, "application/x-gzip", fake.body)

        return Handler


@contextlib.contextmanager
def serve(model_dir: Path) -> Iterator[FakeHub]:
    fake = FakeHub(model_dir)
    with running(fake.server, before_stop=fake.stop.set):
        yield fake
