"""Debian's Chromium, headless, through Playwright (its own browser download does not work offline)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("UI_SCREENSHOT_DIR", "test-screenshots"))


@contextlib.contextmanager
def chromium_page(*args: str) -> Iterator:
    """A new page, 1400x1000, in a headless Chromium (with ``args`` added) that is closed afterwards."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: run `make system` (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", *args],
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()
