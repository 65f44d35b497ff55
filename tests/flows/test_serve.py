"""``make serve`` with no server running starts the project's one kind of server, with the UI, and it stops
with the serving process."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers.prefect_server import free_port, prefect_home, without_prefect_settings
from tests.helpers.repo import REPO

pytestmark = pytest.mark.slow


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def test_serving_with_no_server_starts_one_with_the_ui_that_stops_with_it(tmp_path_factory):
    url = f"http://127.0.0.1:{free_port()}"
    home = prefect_home(tmp_path_factory, "serve-home")
    env = {**without_prefect_settings(), "PREFECT_HOME": str(home), "PREFECT_API_URL": f"{url}/api"}
    serving = subprocess.Popen(
        [sys.executable, "-m", "flows.serve", "--root", str(REPO)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        found = None
        while time.monotonic() < deadline and serving.poll() is None:
            found = _get(f"{url}/api/deployments/name/gender-pipeline/weekly-retrain")
            if found is not None and found.status_code == 200:
                break
            time.sleep(1)
        assert found is not None and found.status_code == 200, "the deployment never appeared"
        ui = _get(url)
        assert ui is not None and ui.status_code == 200 and "<html" in ui.text.lower()  # the UI too
    finally:
        serving.terminate()
        serving.wait(30)
    deadline = time.monotonic() + 30
    while _get(f"{url}/api/health") is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _get(f"{url}/api/health") is None  # the server ended with the serving process
