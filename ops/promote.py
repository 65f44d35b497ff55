"""``python -m ops.promote`` (``make promote``): make the gated candidate the production model, in the registry.

The pipeline (``dvc repro``, ``dvc exp run``, the flow) only computes the gate's verdict; this is the one
step that changes what is in production. It refuses, in one line each:

1. uncommitted changes to tracked files other than the run's record (dvc.lock, params.yaml, the metrics file):
   a production model is made from committed code;
2. a pipeline that DVC does not report up to date (the outputs must be the ones dvc.lock names);
3. a failed verdict (``reports/gate.json``), or one computed against another production model than today's.

Then it pushes the outputs to the DVC remote (nothing is named in the registry before its bytes are there),
records the run, assigns it to ``prod`` with GTO, pushes the tags when the repository has an ``origin``, and
updates the local copy (``models/production``).

The record: a production model names the commit whose dvc.lock describes it. When the run's record equals
HEAD's, that commit is HEAD. Otherwise (a run changes dvc.lock: training's last digits differ by machine) the
record is committed on top of HEAD as a commit that no branch points to, and GTO's tags keep it; your branch
and working tree are left as they are (commit the record yourself when you want main's table to show it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ops.record import author, check_committed, check_up_to_date, git, push_outputs, record
from tasks import paths, registry, reports
from tasks.cli import run_cli, setup
from tasks.errors import StageError
from tasks.files import tree_hash
from tasks.reports.verdict import Verdict
from tasks.verdict import failed_checks


def check_verdict(root: Path, production: tuple[str, str, str] | None) -> Verdict:
    """The gate's verdict, when it passed against the model in production now."""
    verdict = reports.read(root / paths.GATE, Verdict, "gate")
    if not verdict.passed:
        raise StageError(f"not promoted: the quality gate failed ({'; '.join(failed_checks(verdict))})")
    was = verdict.baseline.model if verdict.baseline else None
    now = f"{registry.ARTIFACT}@{production[0]}" if production else None
    if was != now:
        raise StageError(
            f"{paths.GATE} compared with {was or 'no production model'}, and production is now {now or 'empty'}; "
            "gate against it first: dvc repro --force --single-item gate"
        )
    return verdict


def promote(root: Path) -> str:
    """Make the gated candidate the production model; the line that says what was done."""
    root = Path(root).resolve()
    production = registry.assigned(root)
    check_committed(root)
    check_up_to_date(root)
    current = registry.sync(root)
    if current and current.fingerprint == tree_hash(root / paths.MODEL_DIR):
        return f"{paths.MODEL_DIR} is already the production model ({registry.ARTIFACT}@{current.model_version})"
    verdict = check_verdict(root, production)
    push_outputs(root, "not promoted")
    accuracy = next(c.value for c in verdict.checks if c.name == "accuracy")
    commit = record(root)
    assigned = registry.gto(
        root,
        "assign",
        registry.ARTIFACT,
        commit,
        "--stage",
        registry.PROD,
        "--message",
        f"promoted by make promote: Test accuracy {accuracy:.4f}",
        env={**os.environ, **author(root)},
    )
    if assigned.returncode != 0:
        raise StageError(f"not promoted: gto assign failed ({assigned.stderr.strip() or assigned.stdout.strip()})")
    version = registry.assigned(root)[0]
    shared = ""
    if "origin" in git(root, "remote").split():
        tags = [t for t in git(root, "tag", "--points-at", commit).split() if t.startswith(f"{registry.ARTIFACT}")]
        git(root, "push", "origin", *tags)
        shared = "; tags pushed to origin"
    registry.sync(root)
    return (
        f"promoted: {paths.MODEL_DIR} is the production model {registry.ARTIFACT}@{version} (commit {commit[:8]}, "
        f"Test accuracy {accuracy:.4f}){shared}; from any clone: dvc artifacts get . {registry.ARTIFACT} "
        f"--stage {registry.PROD}"
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m ops.promote [--root DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository (default: current folder)")
    args = parser.parse_args(argv)
    setup()
    run_cli(lambda: print(promote(Path(args.root))))


if __name__ == "__main__":
    main()
