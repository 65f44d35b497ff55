"""A loopback fake of the Kaggle API, for the real ``kaggle`` client (tests only).

The client in use (kaggle 2.x) talks to ``http://localhost`` when ``KAGGLE_API_ENVIRONMENT=LOCALHOST``;
the fake listens on a free loopback port and is reached as that host's HTTP proxy (``http_proxy``),
so nothing in the client is patched. It serves only the calls the download stage makes:

* ``POST /api/v1/datasets.DatasetApiService/DownloadDataset``: checks the HTTP Basic credentials and
  the slug, then redirects (302) to the file, as Kaggle redirects to its storage;
* ``GET /files/<name>.zip``: the zip, with Content-Length, ETag, Last-Modified and byte ranges (206);
* ``POST /api/v1/datasets.DatasetApiService/ListDatasets``: the dataset's version and last update;
* Kaggle Models, as ``kagglehub`` calls them, for each model added with :meth:`FakeKaggle.add_model`:
  ``POST /api/v1/models.ModelApiService/ListModelInstanceVersionFiles`` (the SavedModel's files) and
  ``.../DownloadModelInstanceVersion`` (one file: a redirect to ``GET /files/models/<handle>/<path>``).

Faults are set per test: ``statuses`` (answers to the next DownloadDataset calls, e.g. 503 then the
file), ``drop_after`` (close the connection once after that many bytes of the file) and
``chunk_delay`` (seconds between 16 KiB chunks, to interrupt a download from outside) and ``html`` (an
HTML page, 200, for every API call).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.helpers.loopback import QuietHandler, running

SERVICE = "/api/v1/datasets.DatasetApiService"
MODELS = "/api/v1/models.ModelApiService"
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
CHUNK = 16 * 1024


class FakeKaggle:
    def __init__(self, slug: str, archive: Path, username: str, key: str) -> None:
        self.slug = slug
        self.files = {f"/files/{slug.split('/')[1]}.zip": archive.read_bytes()}  # GET path -> body
        self.models: dict[str, list[str]] = {}  # owner/model/framework/variation/version -> its files
        self.auth = "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()
        self.statuses: list[int] = []
        self.drop_after: int | None = None
        self.chunk_delay = 0.0
        self.html = False  # answer every API call with an HTML page
        self.requests: list[dict] = []  # method, path, range, bytes sent
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.proxy = f"http://127.0.0.1:{self.server.server_address[1]}"

    def file_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith("/files/")]

    def add_model(self, handle: str, folder: Path) -> None:
        """Serve the SavedModel ``folder`` as the Kaggle Models handle ``owner/model/framework/variation/version``."""
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        self.models[handle.lower()] = files
        self.files.update({f"/files/models/{handle.lower()}/{f}": (folder / f).read_bytes() for f in files})

    def _model(self, request: dict) -> str | None:
        """The added model a Models API request names (the framework as kagglehub spells it), or None."""
        framework = str(request.get("framework", "")).removeprefix("MODEL_FRAMEWORK_").replace("_", "")
        parts = ("ownerSlug", "modelSlug", "instanceSlug", "versionNumber")
        owner, model, variation, version = (str(request.get(k, "")) for k in parts)
        key = f"{owner}/{model}/{framework}/{variation}/{version}".lower()
        return key if key in self.models else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def _json(self, status: int, body: dict) -> None:
                self.send_body(status, "application/json", json.dumps(body).encode())

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append({"method": "POST", "path": path})
                if fake.html:  # a proxy's or a login page instead of the API
                    return self.send_body(200, "text/html", b"<html><body>Sign in to continue</body></html>")
                if self.headers.get("Authorization") != fake.auth:
                    return self._json(401, {"code": 401, "message": "Unauthenticated"})
                if path.startswith(MODELS):
                    return self._models_call(path.removeprefix(MODELS + "/"), request)
                if path == f"{SERVICE}/ListDatasets":
                    owner = fake.slug.split("/")[0]
                    hits = [{"ref": fake.slug, "currentVersionNumber": 2, "lastUpdated": "2024-01-01T00:00:00Z"}]
                    return self._json(200, {"datasets": hits if request.get("user") == owner else []})
                if path != f"{SERVICE}/DownloadDataset":
                    return self._json(404, {"code": 404, "message": f"no route {path}"})
                if f"{request.get('ownerSlug')}/{request.get('datasetSlug')}" != fake.slug:
                    return self._json(404, {"code": 404, "message": "Not found"})
                if fake.statuses:
                    status = fake.statuses.pop(0)
                    return self._json(status, {"code": status, "message": "try later"})
                self._redirect(f"/files/{fake.slug.split('/')[1]}.zip")

            def _models_call(self, call: str, request: dict) -> None:
                model = fake._model(request)
                if model is None:
                    return self._json(404, {"code": 404, "message": "Not found"})
                if call == "ListModelInstanceVersionFiles":
                    names = fake.models[model]
                    files = [{"name": n, "size": len(fake.files[f"/files/models/{model}/{n}"])} for n in names]
                    return self._json(200, {"files": files, "nextPageToken": ""})
                if call == "DownloadModelInstanceVersion" and request.get("path") in fake.models[model]:
                    return self._redirect(f"/files/models/{model}/{request['path']}")
                return self._json(404, {"code": 404, "message": f"no route {call}"})

            def _redirect(self, path: str) -> None:
                """As Kaggle redirects to its storage."""
                self.send_response(302)
                self.send_header("Location", f"http://localhost{path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path not in fake.files:
                    return self._json(404, {"code": 404, "message": "Not found"})
                body = fake.files[path]
                etag, size = '"' + hashlib.sha256(body).hexdigest()[:16] + '"', len(body)
                asked = self.headers.get("Range")
                start = int(asked.removeprefix("bytes=").split("-")[0]) if asked else 0
                if self.headers.get("If-Range") not in (None, etag):
                    start = 0
                record = {"method": "GET", "path": path, "range": asked, "sent": 0}
                fake.requests.append(record)
                self.send_response(206 if start else 200)
                self.send_header(
                    "Content-Type", "application/zip" if path.endswith(".zip") else "application/octet-stream"
                )
                self.send_header("Content-Length", str(size - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", LAST_MODIFIED)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()
                position = start
                while position < size:
                    end = min(size, position + CHUNK)
                    if fake.drop_after is not None and end > fake.drop_after:
                        self.wfile.write(body[position : fake.drop_after])
                        record["sent"] += fake.drop_after - position
                        fake.drop_after = None  # once
                        self.close_connection = True
                        return
                    self.wfile.write(body[position:end])
                    self.wfile.flush()
                    record["sent"] += end - position
                    position = end
                    time.sleep(fake.chunk_delay)

        return Handler


@contextlib.contextmanager
def serve(slug: str, archive: Path, username: str, key: str) -> Iterator[FakeKaggle]:
    fake = FakeKaggle(slug, archive, username, key)
    with running(fake.server):
        yield fake


def client_env(fake: FakeKaggle, username: str, key: str) -> dict[str, str]:
    """The environment that points the real client at the fake (and only at it)."""
    return {
        "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
        "http_proxy": fake.proxy,
        "HTTP_PROXY": fake.proxy,
        "no_proxy": "",
        "NO_PROXY": "",
        "KAGGLE_USERNAME": username,
        "KAGGLE_KEY": key,
    }
