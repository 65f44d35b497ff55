"""The pipeline: the stages in DAG order, and ``dvc.yaml`` generated from their contracts.

``python -m tasks.stages`` (``make dvc-yaml``) rewrites ``dvc.yaml``; ``--check`` fails when the
committed file is not what the contracts give (a test runs it). No stage imports this module, so
it is in no stage's code deps.

The grain of the code deps: a stage's deps are the project files its module imports, directly or
not (its import closure). What only *runs* a stage lives outside that closure: the command line
(``tasks.run``, ``tasks.cli``), the repair tool (``tasks.doctor``), the quiet TensorFlow import
(``tasks.quiet``), loading the whole params file (``tasks.params.config``) and this generator. A
stage imports the params module of its own sections only, so a change to another stage's params
code reruns nothing of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from tasks import audit, download, evaluate, features, gate, paths, preprocess, registry, train, validate
from tasks.code_deps import REPO, import_closure
from tasks.contract import Stage
from tasks.generated import write_or_check
from tasks.params.config import Params

STAGE_PYTHON = "bin/stage-python"  # the interpreter of dvc.yaml's commands (the project's .venv)
RUNNER = "tasks.run"  # the command-line runner: not imported by any stage, so editing it reruns nothing

STAGES: tuple[Stage, ...] = (
    download.STAGE,
    validate.STAGE,
    preprocess.STAGE,
    features.STAGE,
    audit.STAGE,
    train.STAGE,
    evaluate.STAGE,
    gate.STAGE,
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
        "cmd": f"{STAGE_PYTHON} -m {RUNNER} {stage.name}",
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
    stages = {s.name: dvc_stage(s, root) for s in STAGES}
    # the model registry's artifact (tasks.registry): `dvc artifacts get . model --stage prod` from any clone
    artifacts = {registry.ARTIFACT: {"path": paths.MODEL_DIR, "type": "model", "desc": "Male/Female face classifier"}}
    body = yaml.safe_dump({"stages": stages, "artifacts": artifacts}, sort_keys=False, width=120)
    return HEADER + body


def main(argv: list[str] | None = None) -> None:
    """Write dvc.yaml, or with ``--check`` say whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is not the generated text")
    args = parser.parse_args(argv)
    write_or_check(REPO / DVC_YAML, render(), args.check, "make dvc-yaml")


if __name__ == "__main__":
    main()
