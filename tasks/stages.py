"""The pipeline: the stages in DAG order, and ``dvc.yaml`` generated from their contracts.

``python -m tasks.stages`` (``make dvc-yaml``) rewrites ``dvc.yaml``; ``--check`` fails when the
committed file is not what the contracts give (a test runs it). No stage imports this module, so
it is in no stage's code deps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from tasks import download, evaluate, preprocess, promote, train, validate
from tasks.contract import REPO, STAGE_PYTHON, Stage, import_closure
from tasks.params import Params

STAGES: tuple[Stage, ...] = (
    download.STAGE,
    validate.STAGE,
    preprocess.STAGE,
    train.STAGE,
    evaluate.STAGE,
    promote.STAGE,
)
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}
DVC_YAML = "dvc.yaml"
HEADER = "# Generated from the stage contracts (STAGE in tasks/<stage>.py) by `make dvc-yaml`; do not edit.\n"


def run_through(last: str, root: Path, params: Params) -> None:
    """Run every stage in DAG order up to and including ``last`` on the layout under ``root`` (tests, benchmarks)."""
    names = list(BY_NAME)
    for name in names[: names.index(last) + 1]:
        BY_NAME[name].run(root, params)


def dvc_stage(stage: Stage, root: Path = REPO) -> dict:
    """The dvc.yaml entry of ``stage``: cmd, code deps (the import closure), data deps, params, outputs."""
    entry: dict = {
        "cmd": f"{STAGE_PYTHON} -m {stage.module}",
        "deps": [*import_closure(stage.module, root), *stage.deps.values()],
    }
    if stage.params:
        entry["params"] = sorted(set(stage.params.values()))
    for kind in ("outs", "metrics", "plots"):
        declared = [o.dvc() for o in stage.outputs() if o.kind == kind]
        if declared:
            entry[kind] = declared
    return entry


def render(root: Path = REPO) -> str:
    """The text of dvc.yaml."""
    body = yaml.safe_dump({"stages": {s.name: dvc_stage(s, root) for s in STAGES}}, sort_keys=False, width=120)
    return HEADER + body


def main(argv: list[str] | None = None) -> None:
    """Write dvc.yaml, or with ``--check`` say whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is not the generated text")
    args = parser.parse_args(argv)
    target, text = REPO / DVC_YAML, render()
    if args.check:
        if target.read_text(encoding="utf-8") != text:
            sys.exit(f"{DVC_YAML} is out of date with the stage contracts; run: make dvc-yaml")
        print(f"{DVC_YAML} is current")
        return
    tmp = target.with_name(f".{DVC_YAML}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    print(f"wrote {DVC_YAML} ({len(STAGES)} stages)")


if __name__ == "__main__":
    main()
