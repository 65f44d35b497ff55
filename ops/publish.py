"""``python -m ops.publish BRANCH``: publish a run where the team finds it, the flow's last step on a worker.

A worker that ran the pipeline in its own clone (a ``git_clone`` pull step) pushes the outputs to the DVC
remote first, then the run's record (dvc.lock, params.yaml, reports/metrics.json, committed on top of the
commit it ran, ``ops.record``) to ``origin`` as ``BRANCH``. A teammate runs ``git fetch origin BRANCH``,
``git checkout FETCH_HEAD`` and ``dvc pull``, and has the run's outputs byte for byte with a clean
``dvc status``; ``make experiments -a`` shows the branch's row beside main's.

Why a branch rather than ``dvc exp push``: the flow runs the stages with ``dvc repro``, not as a DVC
experiment, and a branch is what a reviewer opens as a pull request, in any git tool. Nothing is published
before every output is in the remote: a worker killed during the push leaves no branch to pull.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ops.record import check_committed, check_up_to_date, git, push_outputs, record
from tasks.cli import run_cli, setup
from tasks.errors import StageError


def publish(root: Path, branch: str) -> str:
    """Push the outputs, then the run's record as ``branch`` on ``origin``; the line that says what was done.

    Raises:
        StageError: when the repository has no ``origin``, code is uncommitted, the pipeline is stale, or the
            push fails (then nothing is published).
    """
    root = Path(root).resolve()
    if "origin" not in git(root, "remote").split():
        raise StageError(f"{root}: no git remote named origin to publish {branch} to")
    check_committed(root)
    check_up_to_date(root)
    push_outputs(root, "not published")
    commit = record(root)
    git(root, "push", "origin", f"{commit}:refs/heads/{branch}")
    return (
        f"published: {branch} ({commit[:8]}) on origin, its outputs in the DVC remote; "
        f"to look: git fetch origin {branch} && git checkout FETCH_HEAD && dvc pull"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("branch", help="the branch to create on origin, e.g. retrain/2026-12-08")
    parser.add_argument("--root", default=".", help="the repository (default: current folder)")
    args = parser.parse_args(argv)
    setup()
    run_cli(lambda: print(publish(Path(args.root), args.branch)))


if __name__ == "__main__":
    main()
