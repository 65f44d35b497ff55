"""A model put in production the way ``make promote`` leaves it locally, for stage tests without git or a remote."""

from __future__ import annotations

import shutil
from pathlib import Path

from tasks import paths, registry


def put_in_production(root: Path, version: str = "v0.0.1") -> registry.Production:
    """``models/production`` holding ``root``'s models/model and its reports, as :func:`registry.sync` fetches them."""

    def fill(tmp: Path) -> None:
        shutil.copytree(root / paths.MODEL_DIR, tmp / paths.PRODUCTION_MODEL_NAME)
        for name, rel in registry.REPORTS.items():
            shutil.copy2(root / rel, tmp / name)

    return registry.install(root / paths.PRODUCTION_DIR, fill, version, "c" * 40, "2026-12-08T00:00:00+00:00")
