"""``python -m ops.docs_assets`` (run by ``make setup``): download the Data Docs' npm packages once.

Each tarball is checked against the sha512 the registry publishes (npm's ``integrity``) and unpacked
where :func:`tasks.docs_assets.localize` finds it; nothing is downloaded at run time. Set-up tooling,
so it lives outside the stages' code: editing it reruns nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import urllib.request

from tasks.docs_assets import PACKAGES, Package, installed, store
from tasks.errors import StageError, logger

log = logger("docs_assets")


def registry() -> str:
    """The npm registry: ``NPM_REGISTRY``, or npm's own."""
    return os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")


def tarball(package: Package) -> str:
    """The registry URL of ``package``'s tarball."""
    return f"{registry()}/{package.name}/-/{package.name.split('/')[-1]}-{package.version}.tgz"


def install() -> None:
    """Download, check and unpack every package that is not unpacked yet (``make setup``)."""
    for package in PACKAGES:
        target = installed(package)
        if target.is_dir():
            continue
        url = tarball(package)
        try:
            with urllib.request.urlopen(url, timeout=60) as reply:
                data = reply.read()
        except OSError as exc:  # URLError, a timeout, a reset connection
            raise StageError(f"{url}: {exc}; set NPM_REGISTRY to a reachable npm registry") from exc
        digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != package.integrity:
            raise StageError(f"{url}: sha512 {digest} is not the pinned {package.integrity}; nothing unpacked")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(partial, filter="data")
        partial.rename(target)  # a half-unpacked package is never taken for an installed one
        log.info("unpacked %s into %s", package.folder, target)


def main() -> None:
    install()
    print(f"Data Docs assets: {len(PACKAGES)} packages in {store()}")


if __name__ == "__main__":
    from tasks.cli import run_cli

    run_cli(main)
