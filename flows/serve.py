"""Serve the deployments with their schedules: ``python -m flows.serve`` (``make serve``).

No work pool or worker is needed: this process polls the Prefect server (PREFECT_API_URL) and runs
the scheduled and triggered flow runs itself. It first sets up the alerts (``ALERT_WEBHOOK_URL``,
flows/events.py). The deployments, their schedules and limits come from
flows/deployments.py, as does prefect.yaml for the work-pool route (``prefect deploy --all`` +
``prefect worker start``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prefect import serve

from flows.deployments import served
from flows.events import ensure_alerts
from tasks.cli import run_cli
from tasks.quiet import add_verbose_flag


def ensure_server(api_url: str, wait_s: float = 60) -> subprocess.Popen | None:
    """Start ``prefect server start`` on 127.0.0.1 unless ``api_url`` already answers."""
    health = api_url.rstrip("/") + "/health"

    def up() -> bool:
        try:
            return httpx.get(health, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if up():
        return None
    port = str(httpx.URL(api_url).port or 4200)
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port]
    )
    deadline = time.monotonic() + wait_s
    while not up():
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            raise SystemExit(f"could not start the Prefect server on 127.0.0.1:{port}")
        time.sleep(1)
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the scheduled deployments.")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (default: current folder)")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    api_url = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    os.environ["PREFECT_API_URL"] = api_url  # serve() needs a real server to poll
    server = ensure_server(api_url)
    try:
        ensure_alerts()  # the webhook alerts on a blocked promotion or a failed retrain (flows/events.py)
        serve(*served(args.root))
    finally:
        if server:
            server.terminate()


if __name__ == "__main__":
    run_cli(main)
