"""Serve the deployments with their schedules: ``python -m flows.serve`` (``make serve``).

No work pool or worker is needed: this process polls the Prefect server (PREFECT_API_URL) and runs
the scheduled and triggered flow runs itself. It first sets up the alerts (``ALERT_WEBHOOK_URL``,
flows/events.py). The deployments, their schedules and limits come from
flows/deployments.py, as does prefect.yaml for the work-pool route (``prefect deploy --all`` +
``prefect worker start``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import httpx
from prefect import serve

from flows.deployments import served
from flows.events import ensure_alerts
from flows.server import answers, bypass_proxy_for_loopback, local_server
from tasks.cli import run_cli
from tasks.quiet import add_verbose_flag


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the scheduled deployments.")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (default: current folder)")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    api_url = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    os.environ["PREFECT_API_URL"] = api_url  # serve() needs a real server to poll
    bypass_proxy_for_loopback()
    with contextlib.ExitStack() as stack:
        if not answers(api_url):  # none running there: one with the UI, which stops with this process
            stack.enter_context(local_server(port=httpx.URL(api_url).port or 4200, full=True))
        ensure_alerts()  # the webhook alerts on a blocked promotion or a failed retrain (flows/events.py)
        serve(*served(args.root))


if __name__ == "__main__":
    run_cli(main)
