"""The run's record in git and its outputs in the DVC remote: what ``make promote`` and the flow's publish step share.

A run writes three files that git keeps (dvc.lock, params.yaml, reports/metrics.json); everything else it
writes is in DVC's cache and, once pushed, in the DVC remote. :func:`record` commits those three on top of
HEAD without moving any branch, so a tag or a pushed branch can name exactly the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from tasks import paths, registry
from tasks.doctor import LOCKFILE
from tasks.errors import StageError

RECORD = (LOCKFILE, paths.PARAMS_FILE, paths.METRICS)  # what a run writes that git keeps
IDENTITY = {"GIT_AUTHOR_NAME": "gender-pipeline", "GIT_AUTHOR_EMAIL": "gender-pipeline@localhost"}


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """``git ARGS`` in ``root``; its output, stripped.

    Raises:
        StageError: with git's message when it fails.
    """
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise StageError(f"git {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def author(root: Path) -> dict[str, str]:
    """Git's author and committer: the user's, or the pipeline's where git has none configured."""
    configured = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True, check=False)
    if configured.returncode == 0:
        return {}
    return {
        **IDENTITY,
        "GIT_COMMITTER_NAME": IDENTITY["GIT_AUTHOR_NAME"],
        "GIT_COMMITTER_EMAIL": IDENTITY["GIT_AUTHOR_EMAIL"],
    }


def check_up_to_date(root: Path) -> None:
    """Refuse a pipeline that DVC does not report up to date."""
    done = registry.dvc(root, "status", "--json")
    stale = json.loads(done.stdout or "{}") if done.returncode == 0 else None
    if stale is None:
        raise StageError(f"dvc status failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    if stale:
        raise StageError(f"not up to date: {', '.join(stale)}; run `dvc repro` (or make repro) first")


def check_committed(root: Path) -> None:
    """Refuse uncommitted changes to tracked files other than the run's record."""
    code = sorted(set(git(root, "diff", "--name-only", "HEAD").splitlines()) - set(RECORD))
    if code:
        raise StageError(
            f"uncommitted changes to {', '.join(code[:5])}{' …' if len(code) > 5 else ''}; commit them first "
            "(git commit): a production model is made from committed code"
        )


MESSAGE = "pipeline run: dvc.lock, params.yaml and reports/metrics.json as the run left them"


def record(root: Path) -> str:
    """The commit that describes the run: HEAD, or a commit on top of it with the run's record (no branch moves).

    The same record on the same HEAD is the same commit (its dates are HEAD's), so promoting and publishing a
    run name one commit, whichever comes first.
    """
    present = [f for f in RECORD if (root / f).is_file()]
    if not git(root, "diff", "--name-only", "HEAD", "--", *present):
        return git(root, "rev-parse", "HEAD")
    when = git(root, "log", "-1", "--format=%cI", "HEAD")
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            **author(root),
            "GIT_INDEX_FILE": str(Path(tmp) / "index"),
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_DATE": when,
        }
        git(root, "read-tree", "HEAD", env=env)
        git(root, "update-index", "--add", "--", *present, env=env)
        tree = git(root, "write-tree", env=env)
        return git(root, "commit-tree", tree, "-p", "HEAD", "-m", MESSAGE, env=env)


def push_outputs(root: Path, what: str) -> None:
    """``dvc push`` to the default remote, which must answer; ``what`` (e.g. "not promoted") starts the refusal."""
    registry.check_remote(root)
    pushed = registry.dvc(root, "push")
    if pushed.returncode != 0:
        lines = (pushed.stderr or pushed.stdout).strip().splitlines()
        raise StageError(f"{what}: dvc push failed ({lines[-1] if lines else pushed.returncode}); nothing changed")
