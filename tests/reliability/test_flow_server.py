"""The flow's temporary Prefect server ends with it, and a lost or unreachable API is one line.

``python -m flows.pipeline`` without PREFECT_API_URL runs against a temporary server, a child
process. These tests run the real command line in a repository copy, find that child in /proc,
and kill the flow (or the server) at a known moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.pipeline import STAGE_NAMES
from tests.helpers.prefect_server import Server, free_port, prefect_home, without_prefect_settings
from tests.helpers.repo import TINY_PARAMS, copy_repo, dvc, set_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("server") / "repo")
    set_params(repo, TINY_PARAMS)
    return repo


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """PREFECT_HOME for the module: the server's database is made once, by the first test's flow, as on a
    user's first run (the suite's other servers start on a copy of a migrated one: ``prefect_home``)."""
    return tmp_path_factory.mktemp("prefect-home")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in without_prefect_settings().items() if k.lower() != "no_proxy"}
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


def _servers(parent: int) -> list[int]:
    """The child processes of ``parent`` that serve Prefect's API (ours or Prefect's own)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
        if ppid == parent and ("flows.server" in cmdline or "prefect.server" in cmdline):
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended (its new parent has not reaped it yet)


def _start(repo: Path, env: dict, *args: str) -> tuple[subprocess.Popen, Path]:
    err = repo.parent / f"flow-{time.monotonic_ns()}.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.pipeline", "--root", str(repo), *args],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
    )
    return proc, err


def _wait_for(proc: subprocess.Popen, err: Path, text: str) -> list[int]:
    """Wait until the flow's stderr shows ``text``; its server processes then."""
    deadline = time.monotonic() + 300
    while text not in err.read_text():
        assert proc.poll() is None, err.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in 300 s"
        time.sleep(0.2)
    servers = _servers(proc.pid)
    assert servers, "the flow runs without a server process"
    return servers


def _gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 15
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not any(map(_alive, pids))


def test_a_flow_behind_a_proxy_reaches_its_own_server_and_stops_it_when_done(repo, home):
    """The whole pipeline: the tests after it kill runs of an up-to-date repository."""
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    env = _env(home, http_proxy=dead_proxy, https_proxy=dead_proxy, HTTP_PROXY=dead_proxy, no_proxy="")
    proc, err = _start(repo, env)
    servers = _wait_for(proc, err, "download: running")
    assert proc.wait(timeout=600) == 0, err.read_text()[-3000:]
    assert _gone(servers)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_flow_leaves_no_server_behind(repo, home, sig):
    proc, err = _start(repo, _env(home), "--force", "download")
    servers = _wait_for(proc, err, "download: running")
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert _gone(servers), f"the server {servers} outlived the flow killed by {sig.name}"


def test_a_server_lost_mid_run_is_one_line_and_leaves_what_was_recorded(repo_copy, home):
    repo = repo_copy  # its own copy: every stage is stale at the start
    set_params(repo, TINY_PARAMS)
    # Two retries (about 6 s once the server is gone, not Prefect's default minute), and not none: a busy
    # SQLite answers 503 to a call now and then, which a retry gets past (CI once failed on one with none).
    proc, err = _start(repo, _env(home, PREFECT_CLIENT_MAX_RETRIES="2"))
    servers = _wait_for(proc, err, "validate: recorded in dvc.lock")
    for pid in servers:
        os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=600) == 2
    text = err.read_text()
    lines = text.splitlines()
    assert "Traceback" not in text
    assert lines[-1].startswith("error: the temporary Prefect server at http://127.0.0.1:")
    assert lines[-1].endswith("stopped answering: stages recorded in dvc.lock so far stand; run the flow again")
    # The flow finds the server gone at its next call to the API, and the state of a task run is sent in
    # the background: the next stage may run (and be recorded) first. Between the kill and the one line,
    # only the stages' own progress: no warning, no retry, no error.
    killed = max(i for i, line in enumerate(lines) if "validate: recorded in dvc.lock" in line)
    after = lines[killed + 1 : -1]
    assert all(" | INFO " in line for line in after), after
    recorded = [s for s in STAGE_NAMES if f"{s}: recorded in dvc.lock" in text]
    assert recorded == list(STAGE_NAMES[: len(recorded)]), recorded
    assert len(recorded) < len(STAGE_NAMES)
    stale = json.loads(dvc(repo, "status", "--json"))
    assert not set(recorded) & set(stale), stale  # what the log says was recorded stands ...
    assert STAGE_NAMES[len(recorded)] in stale  # ... and the stage after it was not recorded
    assert not list((repo / "data").glob(".*.tmp-*"))


def test_an_api_that_does_not_answer_at_the_start_is_one_line(repo, home):
    url = f"http://127.0.0.1:{free_port()}/api"
    done = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", "--root", str(repo)],
        cwd=repo,
        env=_env(home, PREFECT_API_URL=url),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: the Prefect API at {url} does not answer: start it (`make ui`) or unset PREFECT_API_URL to use "
        "a temporary one; stages recorded in dvc.lock so far stand, run the flow again"
    ]


def test_a_test_server_keeps_its_own_database_whatever_the_shell_points_at(tmp_path_factory, monkeypatch):
    """The suite's servers (tests/helpers) drop the caller's PREFECT_* settings: a shell pointing Prefect at
    a team's database or API must not have a test write there."""
    monkeypatch.setenv(
        "PREFECT_SERVER_DATABASE_CONNECTION_URL", f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/x"
    )
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    with Server(prefect_home(tmp_path_factory, "own-database")) as server:
        assert server.healthy()
        assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" not in server.env
        assert server.env["PREFECT_API_URL"] == server.api
