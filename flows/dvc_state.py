"""What the flow asks DVC: is a stage up to date, what are its inputs, record a finished stage.

The flow runs a stale stage in-process and then records it with ``dvc commit``, which writes the
same dvc.lock entry (cmd, deps, params, outs) and caches the outputs as ``dvc repro`` would. So
after a flow run ``dvc status`` is clean and ``dvc repro`` does nothing, and vice versa.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tasks.errors import StageError


class PipelineBusy(StageError):
    """Another flow run or ``dvc repro`` holds the repository."""


class DvcState:
    """A thin wrapper around ``dvc.repo.Repo`` for one repository root."""

    def __init__(self, root: Path):
        from dvc.repo import Repo

        self.root = Path(root).resolve()
        self.repo = Repo(str(self.root))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold DVC's own repository lock for the whole run (dvc repro takes the same lock)."""
        from dvc.lock import LockError
        from dvc.repo import lock_repo

        try:
            with lock_repo(self.repo):
                yield
        except LockError:
            raise PipelineBusy(
                f"{self.root}: pipeline already running (another flow run or dvc repro holds the DVC lock); "
                "wait for it to finish and start again"
            ) from None

    def changes(self, stage: str) -> list[Any]:
        """DVC's reasons why ``stage`` is stale; empty when it is up to date."""
        return self.repo.status(targets=[stage]).get(stage, [])

    def inputs_hash(self, stage: str) -> str:
        """A short hash of the stage's cmd, deps and params: what its dvc.lock entry is keyed on."""
        from dvc.stage.serialize import to_single_stage_lockfile

        (st,) = self.repo.stage.collect(stage)
        st.save_deps()
        entry = {k: v for k, v in to_single_stage_lockfile(st).items() if k in ("cmd", "deps", "params")}
        return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def record(self, stage: str) -> None:
        """Write the finished stage into dvc.lock and its outputs into the DVC cache."""
        self.repo.commit(stage, force=True)


def git_version(root: Path) -> str:
    """The short git commit of ``root``, with ``-dirty`` when tracked files differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tasks", "flows", "dvc.yaml", "params.yaml")
    return f"{commit}-dirty" if dirty else commit
