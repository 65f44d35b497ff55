"""A real Prefect server on a free loopback port with a temporary PREFECT_HOME, and a repo copy."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers.repo import TINY_PARAMS, copy_repo, set_params

RETRYABLE = {429, 502, 503}  # what Prefect's client retries (PREFECT_CLIENT_MAX_RETRIES)


def without_prefect_settings() -> dict[str, str]:
    """This process's environment less every ``PREFECT_*`` variable: a test's server and database are its
    own, whatever API or database the user's shell points at."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running ``prefect server start`` and a small REST client for it."""

    def __init__(self, home: Path, database_url: str | None = None):
        """``database_url``: PREFECT_SERVER_DATABASE_CONNECTION_URL (PostgreSQL); SQLite in ``home`` without it."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api"
        self.env = {
            **without_prefect_settings(),
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # a run kept waiting by a deployment's concurrency limit retries after 5 s, not 30
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
            # each database error the server answers with 503 is logged, so a test can count them
            "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",
        }
        if database_url:
            self.env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
        home.mkdir(parents=True, exist_ok=True)
        self.log = (home / "server.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
        self.wait_until(lambda: self.healthy(), 120, "the Prefect server to start")

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_until(self, check, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Prefect server exited while waiting for {what}")
            time.sleep(1)
        raise TimeoutError(f"timed out waiting for {what}")

    def request(self, method: str, path: str, body: dict | None = None):
        """One API call, retried as Prefect's own client retries: a 429/502/503 (on SQLite, a write
        that found the database locked answers 503) is tried again after 1, 2, 4, 8 and 16 s."""
        for wait in (1, 2, 4, 8, 16, None):
            r = httpx.request(method, f"{self.api}{path}", json=body, timeout=30)
            if r.status_code not in RETRYABLE or wait is None:
                break
            time.sleep(wait)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict | None = None):
        return self.request("POST", path, body or {})

    def get(self, path: str):
        return self.request("GET", path)

    def flow_runs(self, flow_name: str = "gender-pipeline") -> list[dict]:
        """Flow runs of ``flow_name`` that have started, newest first (not the upcoming scheduled ones)."""
        return self.post(
            "/flow_runs/filter",
            {
                "flows": {"name": {"any_": [flow_name]}},
                "flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED", "PENDING"]}}},
                "sort": "START_TIME_DESC",
            },
        )

    def task_runs(self, flow_run_id: str) -> list[dict]:
        """Task runs of a flow run, in start order."""
        return self.post(
            "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
        )

    def graph_edges(self, flow_run_id: str) -> set[tuple[str, str]]:
        """The edges of the flow-run graph the UI draws (Prefect's graph-v2 API), by task-run name."""
        nodes = dict(self.get(f"/flow_runs/{flow_run_id}/graph-v2")["nodes"])
        return {(nodes[p["id"]]["label"], node["label"]) for node in nodes.values() for p in node["parents"]}

    def logs(self, flow_run_id: str) -> str:
        rows = self.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"})
        return "\n".join(r["message"] for r in rows)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def prefect_home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A new PREFECT_HOME (``tmp_path_factory.mktemp(name)``) holding a copy of an SQLite database that
    ``prefect server database upgrade`` migrated once for the whole test session, all pytest-xdist workers
    together, in the session's temporary folder.

    A server's first start on an empty home runs every migration (about 11 s of CPU and 14 s here);
    on the copy it finds none left to run. Everything else about the server is as a user's.
    """
    import prefect

    shared = tmp_path_factory.getbasetemp()  # this session's own folder (even with --basetemp)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # each worker's folder is one of the session's
    template = shared / f"prefect-{prefect.__version__}-migrated.db"
    with (shared / "prefect-db.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker migrates; the others wait for it
        if not template.exists():
            staging = Path(tempfile.mkdtemp(dir=shared))
            env = {**without_prefect_settings(), "PREFECT_HOME": str(staging)}
            cmd = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
            subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
            (staging / "prefect.db").replace(template)
            shutil.rmtree(staging)
    home = tmp_path_factory.mktemp(name)
    shutil.copyfile(template, home / "prefect.db")
    return home


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    with Server(prefect_home(tmp_path_factory, "prefect-home")) as server:
        yield server


@pytest.fixture(scope="module")
def flow_repo(tmp_path_factory) -> Path:
    """A temporary git copy of the repository with tiny params (module-wide: tests build on each other)."""
    repo = copy_repo(tmp_path_factory.mktemp("flow") / "repo")
    set_params(repo, TINY_PARAMS)
    return repo


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done
