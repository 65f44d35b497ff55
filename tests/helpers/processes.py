"""A stage's command (``python -m tasks.run STAGE``) in a folder with its own params.yaml, run to the
end or started; and a process killed at a chosen moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.helpers.repo import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def start_command(stage: str, cwd: Path, params: dict) -> subprocess.Popen:
    """Start ``python -m tasks.run stage`` in ``cwd`` with ``params`` as its params.yaml."""
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.Popen(
        [sys.executable, "-m", "tasks.run", stage],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
        start_new_session=True,  # its own process group: a kill reaches its worker processes too
    )


def run_command(stage: str, cwd: Path, params: dict) -> subprocess.CompletedProcess:
    """Run ``python -m tasks.run stage`` to the end in ``cwd`` with ``params`` as its params.yaml."""
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, "-m", "tasks.run", stage], cwd=cwd, capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL ``proc``, with its process group when it leads one (its workers, a flow's dvc repro), as soon as
    ``ready()`` is true (polled every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the process ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting to kill"
        time.sleep(0.2)
    if os.getpgid(proc.pid) == proc.pid:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
