"""Data Docs open air-gapped: every script and stylesheet is a local copy (tasks/docs_assets.py).

The browser check opens the pages from disk in Chromium with the network blocked twice over (a dead
proxy and a resolver that finds no host) and every non-file request recorded and refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ops.docs_assets
from tasks import docs_assets
from tasks.errors import StageError
from tests.helpers.browser import chromium_page
from tests.helpers.data import run_stage

REMOTE = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.IGNORECASE)
REMOTE_CSS = re.compile(r"""url\(\s*["']?(?:https?:)?//""", re.IGNORECASE)  # a background image, a font


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from tasks.download import download
    from tasks.params.data import DataParams
    from tasks.params.validate import ValidateParams
    from tests.helpers.data import write_folder

    root = tmp_path_factory.mktemp("docs")
    download(root / "data" / "raw", DataParams(source="local", path=str(write_folder(root / "src"))))
    run_stage("validate", root, validate=ValidateParams(min_per_class=1, workers=1))
    return root / "data" / "validation" / "data_docs"


def test_no_page_loads_anything_from_the_network(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 5  # the index, two suites, two validation results
    for page in pages:
        html = page.read_text()
        assert not REMOTE.search(html), page
        assert not REMOTE_CSS.search(html), page
        assert "static/vendor/" in html, page
    sheets = sorted(site.rglob("*.css"))
    assert any(s.name == "data_docs_default_styles.css" for s in sheets)  # GX's own, beside the vendored ones
    for sheet in sheets:
        assert not REMOTE_CSS.search(sheet.read_text()), sheet


@pytest.mark.slow
def test_the_pages_render_styled_with_the_network_blocked(site):
    left: list[str] = []  # every request that was not for a local file

    def refuse(route):
        if not route.request.url.startswith("file:"):
            left.append(route.request.url)
            return route.abort()
        return route.continue_()

    validation = next((site / "validations").rglob("*.html"))
    blocked = ("--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND")
    with chromium_page(*blocked) as page:
        page.route("**/*", refuse)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        for url in (site / "index.html").as_uri(), validation.as_uri():
            page.goto(url, wait_until="load")
            # bootstrap's stylesheet is applied (unstyled, the body font is the browser's serif) ...
            assert "-apple-system" in page.evaluate("getComputedStyle(document.body).fontFamily"), url
            # ... jQuery and bootstrap-table ran: they wrap each table they render
            page.locator("div.bootstrap-table").first.wait_for(state="attached", timeout=10_000)
            # ... and Font Awesome's font face is defined and loads from its local copy
            assert page.evaluate("async () => (await document.fonts.load('900 16px \"Font Awesome 6 Free\"')).length")
        assert page.locator("div.bootstrap-table").count() >= 1
        page.goto((site / "index.html").as_uri(), wait_until="load")
        rows = page.locator(".ge-index-page-validation-results-table tbody tr")
        assert rows.count() == 2, rows.all_inner_texts()  # the two validation results are listed
    assert left == [], left
    assert errors == [], errors


def test_a_page_that_loads_an_unknown_url_is_refused_naming_both(site, tmp_path):
    copy = tmp_path / "docs"
    (copy / "static" / "images").mkdir(parents=True)
    page = copy / "index.html"
    page.write_text('<html><head><script src="https://cdn.example.org/new.js"></script></head></html>')
    with pytest.raises(StageError, match=r"index.html loads https://cdn.example.org/new.js .* tasks/docs_assets.py"):
        docs_assets.localize(copy)


def test_assets_not_installed_say_to_run_make_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DOCS_ASSETS", str(tmp_path / "empty"))
    (tmp_path / "index.html").write_text('<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>')
    with pytest.raises(StageError, match="installed by `make setup`"):
        docs_assets.localize(tmp_path)


def test_a_tarball_that_is_not_the_pinned_one_is_refused_and_nothing_is_unpacked(tmp_path, monkeypatch):
    import http.server
    import threading

    class Tampered(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"not the package"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Tampered)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("NPM_REGISTRY", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("DATA_DOCS_ASSETS", str(tmp_path / "store"))
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        with pytest.raises(StageError, match="is not the pinned sha512-"):
            ops.docs_assets.install()
    finally:
        server.shutdown()
    assert not (tmp_path / "store").exists()
