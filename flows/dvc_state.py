"""What the flow asks DVC before it runs a stage: is it stale and why, and what its inputs hash to.

Running and recording a stage is ``dvc repro``'s job (flows/pipeline.py); this module only reads.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from tasks.errors import StageError


class PipelineBusy(StageError):
    """Another flow run or ``dvc repro`` holds the repository."""


def busy(root: Path) -> PipelineBusy:
    """The one line for a repository whose DVC lock another process holds."""
    return PipelineBusy(
        f"{root}: pipeline already running (another flow run or dvc repro holds the DVC lock); "
        "wait for it to finish and start again"
    )


def dvc_status(root: Path, stage: str) -> list[str]:
    """DVC's reasons why ``stage`` is stale, one JSON text each; empty when it is up to date."""
    from dvc.lock import LockError
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            changes = repo.status(targets=[stage]).get(stage, [])
    except LockError:
        raise busy(root) from None
    return [json.dumps(change, default=str) for change in changes]


def inputs_hash(root: Path, stage: str) -> str:
    """A short hash of the stage's cmd, deps and params: what its dvc.lock entry is keyed on."""
    from dvc.repo import Repo
    from dvc.stage.serialize import to_single_stage_lockfile

    with Repo(str(root)) as repo:
        (st,) = repo.stage.collect(stage)
        st.save_deps()
        entry = {k: v for k, v in to_single_stage_lockfile(st).items() if k in ("cmd", "deps", "params")}
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:12]


def git_version(root: Path) -> str:
    """The short git commit of ``root``, with ``-dirty`` when tracked files differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tasks", "flows", "dvc.yaml", "params.yaml")
    return f"{commit}-dirty" if dirty else commit
