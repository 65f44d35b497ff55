"""Data Docs that open air-gapped: every page's scripts, styles and images point at local copies.

GX 1.x Data Docs pages load their stylesheets and scripts from CDNs and the GX logo from S3; offline,
the index opens empty and unstyled (GX's maintainers declined to vendor them: GX #994, PR #2870).
``make setup`` unpacks the pinned npm packages below (``ops/docs_assets.py``); after each build,
:func:`localize` copies the files the pages load into the site and points every page at them. A page
that would still load anything from the network is refused, naming it and the URL. The versions are
the ones GX 1.24's templates name (``vega@5``-like ranges pinned to the newest of that major version).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import StageError

VENDOR = Path("static") / "vendor"  # inside the Data Docs site


@dataclass(frozen=True)
class Package:
    """One npm package version and the sha512 the registry publishes for its tarball."""

    name: str
    version: str
    integrity: str

    @property
    def folder(self) -> str:
        return f"{self.name}@{self.version}"


def _package(name: str, version: str, integrity: str) -> Package:
    return Package(name, version, "sha512-" + integrity)


JQUERY = _package(
    "jquery", "3.7.1", "m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg=="
)
BOOTSTRAP = _package(
    "bootstrap", "4.3.1", "rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag=="
)
TABLE = _package(
    "bootstrap-table",
    "1.19.1",
    "WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==",
)
TABLE_1190 = _package(
    "bootstrap-table",
    "1.19.0",
    "L+USHm3X9FKocx/6yngGu12yF6r6s1Ntuc+hoIK2a2QQJjHw5kcySLiE2HY/9sEaSGAOfPbfQOtBH3uKkcpqEA==",
)
DATEPICKER = _package(
    "bootstrap-datepicker",
    "1.9.0",
    "9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==",
)
DARK = _package(
    "@forevolve/bootstrap-dark",
    "1.1.0",
    "A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==",
)
FONTAWESOME = _package(
    "@fortawesome/fontawesome-free",
    "6.6.0",
    "60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==",
)
POPPER = _package(
    "popper.js", "1.12.9", "s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg=="
)
VEGA = _package(
    "vega", "5.33.1", "1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw=="
)
VEGA_LITE = _package(
    "vega-lite", "5.23.0", "l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA=="
)
VEGA_EMBED = _package(
    "vega-embed", "6.29.0", "PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q=="
)
PACKAGES = (JQUERY, BOOTSTRAP, TABLE, TABLE_1190, DATEPICKER, DARK, FONTAWESOME, POPPER, VEGA, VEGA_LITE, VEGA_EMBED)

_UNPKG_TABLE = "https://unpkg.com/bootstrap-table@1.19.1/dist/"
_UNPKG_FILTER = "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
_DATEPICKER = "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/"
# every network URL GX 1.24's page templates load, and the package file it is
ASSETS: dict[str, tuple[Package, str]] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": (JQUERY, "dist/jquery.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (BOOTSTRAP, "dist/css/bootstrap.min.css"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (BOOTSTRAP, "dist/js/bootstrap.min.js"),
    _UNPKG_TABLE + "bootstrap-table.min.css": (TABLE, "dist/bootstrap-table.min.css"),
    _UNPKG_TABLE + "bootstrap-table.min.js": (TABLE, "dist/bootstrap-table.min.js"),
    _UNPKG_TABLE + "extensions/filter-control/bootstrap-table-filter-control.min.js": (
        TABLE,
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    _UNPKG_FILTER + "bootstrap-table-filter-control.css": (
        TABLE_1190,
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    _UNPKG_FILTER + "bootstrap-table-filter-control.min.css": (
        TABLE_1190,
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    _DATEPICKER + "css/bootstrap-datepicker.min.css": (DATEPICKER, "dist/css/bootstrap-datepicker.min.css"),
    _DATEPICKER + "js/bootstrap-datepicker.min.js": (DATEPICKER, "dist/js/bootstrap-datepicker.min.js"),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        DARK,
        "dist/css/bootstrap-prefers-dark.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (FONTAWESOME, "css/all.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (POPPER, "dist/umd/popper.min.js"),
    "https://cdn.jsdelivr.net/npm/vega@5": (VEGA, "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": (VEGA_LITE, "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": (VEGA_EMBED, "build/vega-embed.min.js"),
}
# images GX loads from its S3 bucket that it also ships in the site's own static/images (query string dropped)
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

_RESOURCE = re.compile(r"<(script|link|img)\b[^>]*>", re.IGNORECASE)
_URL_ATTR = re.compile(r"""\b(src|href)=(["'])((?:https?:)?//[^"']+)\2""", re.IGNORECASE)
_CORS_ATTR = re.compile(r"""\s+(integrity|crossorigin)(=(["'])[^"']*\3)?""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')]+)\1\s*\)""")
_CSS_REMOTE_URL = re.compile(r"""url\(\s*(["']?)((?:https?:)?//[^"')]+)\1\s*\)""")


def store() -> Path:
    """Where ``make setup`` unpacks the packages: ``<venv>/share/data-docs-assets``."""
    return Path(os.environ.get("DATA_DOCS_ASSETS") or Path(sys.prefix) / "share" / "data-docs-assets")


def installed(package: Package) -> Path:
    return store() / package.folder


def _copy(package: Package, file: str, site: Path) -> Path:
    """Copy one package file (and, for a stylesheet, the relative files its url()s name) into the site,
    once per build: every page loads the same few files."""
    dest = site / VENDOR / package.folder / file
    if dest.is_file():
        return dest
    source = installed(package) / "package" / file
    if not source.is_file():
        raise StageError(
            f"{source} missing: the Data Docs assets are installed by `make setup` (python -m ops.docs_assets)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    if file.endswith(".css"):
        for _, ref in _CSS_URL.findall(source.read_text(encoding="utf-8")):
            if ref.startswith(("data:", "#")):
                continue
            if re.match(r"(https?:)?//", ref):
                raise StageError(f"{source} loads {ref} from the network: vendor it in tasks/docs_assets.py")
            _copy(package, os.path.normpath(os.path.join(os.path.dirname(file), ref.split("?")[0].split("#")[0])), site)
    return dest


def _local(url: str, page: Path, site: Path) -> str | None:
    """The relative path from ``page`` to the local copy of ``url``, or None when none is known."""
    if url in ASSETS:
        target = _copy(*ASSETS[url], site)
    elif url.startswith(GX_IMAGES):
        target = site / "static" / "images" / url[len(GX_IMAGES) :].split("?")[0]
        if not target.is_file():
            return None
    else:
        return None
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _refuse(file: Path, url: str) -> StageError:
    return StageError(f"Data Docs page {file} loads {url} from the network: add it to ASSETS in tasks/docs_assets.py")


def _rewrite_tag(tag: re.Match, page: Path, site: Path) -> str:
    """A ``<script>``, ``<link>`` or ``<img>`` tag pointed at the local copy of what it loads."""
    found = _URL_ATTR.search(tag.group(0))
    if not found:
        return tag.group(0)
    local = _local(found.group(3), page, site)
    if local is None:
        raise _refuse(page, found.group(3))
    text = tag.group(0).replace(found.group(0), f'{found.group(1)}="{local}"')
    return _CORS_ATTR.sub("", text)


def _rewrite_css_url(found: re.Match, file: Path, site: Path) -> str:
    """A stylesheet's ``url(https://...)`` pointed at its local copy; a GX decoration it ships no copy of
    (the dark logo behind the navbar's own local logo) becomes ``none``."""
    url = found.group(2)
    local = _local(url, file, site)
    if local is not None:
        return f'url("{local}")'
    if url.startswith(GX_IMAGES):
        return "none"
    raise _refuse(file, url)


def localize(site: Path) -> None:
    """Point every page and GX stylesheet of the Data Docs ``site`` at local copies; refuse one that still
    loads a URL."""
    for page in sorted(site.rglob("*.html")):
        html = _RESOURCE.sub(lambda tag, page=page: _rewrite_tag(tag, page, site), page.read_text(encoding="utf-8"))
        html = _CSS_REMOTE_URL.sub(lambda m, page=page: _rewrite_css_url(m, page, site), html)
        page.write_text(html, encoding="utf-8")
    for sheet in sorted(site.rglob("*.css")):
        if VENDOR not in sheet.relative_to(site).parents:  # the vendored packages' are checked as they are copied
            text = _CSS_REMOTE_URL.sub(
                lambda m, f=sheet: _rewrite_css_url(m, f, site), sheet.read_text(encoding="utf-8")
            )
            sheet.write_text(text, encoding="utf-8")
