"""The stage contracts: dvc.yaml follows from them, code deps are complete, stages get what they declare."""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tasks import paths, stages
from tasks.code_deps import import_closure
from tasks.contract import Output, Stage
from tasks.params.config import Params

REPO = Path(__file__).resolve().parents[2]


def _dvc_stages() -> dict:
    with (REPO / "dvc.yaml").open() as fh:
        return yaml.safe_load(fh)["stages"]


def _names(items: list) -> set[str]:
    return {next(iter(i)) if isinstance(i, dict) else i for i in items or []}


def test_committed_dvc_yaml_is_the_generated_one():
    assert (REPO / "dvc.yaml").read_text() == stages.render(), "dvc.yaml is stale: run make dvc-yaml"


def test_every_project_module_a_stage_imports_is_a_dep():
    """Checked against what Python really imports (sys.modules), not against the static closure itself."""
    probe = (
        "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tasks', 'flows'))))"
    )
    for name, entry in _dvc_stages().items():
        module = stages.BY_NAME[name].module
        done = subprocess.run([sys.executable, "-c", probe, module], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        files = set()
        for mod in json.loads(done.stdout):
            base = REPO.joinpath(*mod.split("."))
            files.add((base / "__init__.py" if base.is_dir() else base.with_suffix(".py")).relative_to(REPO).as_posix())
        missing = files - _names(entry["deps"])
        assert not missing, f"{name} imports {sorted(missing)} but dvc.yaml does not list them"


@pytest.mark.parametrize(
    ("module", "stages_that_see_it"),
    [
        ("tasks/metrics.py", {"evaluate", "gate"}),  # the gate's arithmetic
        # the TFRecord encoder and reader
        ("tasks/dataset.py", {"preprocess", "features", "audit", "train", "evaluate", "gate"}),
        ("tasks/backbones.py", {"features", "train"}),  # download, validate and the audit never load a backbone
        ("tasks/synthetic.py", {"download", "features", "train"}),  # small_cnn is pretrained on synthetic faces
        ("tasks/feature_files.py", {"features", "audit", "train"}),
        ("tasks/model_card.py", {"gate"}),
        ("tasks/registry.py", {"validate", "gate"}),  # the two stages that read the production model
        # what runs a stage is not what it computes: editing these reruns nothing
        ("tasks/run.py", set()),
        ("tasks/cli.py", set()),
        ("tasks/doctor.py", set()),
        ("tasks/quiet.py", set()),
        ("tasks/stages.py", set()),
        ("tasks/params/config.py", set()),  # the whole params file: each stage sees its own sections only
        # each params section's code is a dep of the stages that read that section
        ("tasks/params/gate.py", {"gate"}),
        ("tasks/params/train.py", {"train"}),
        ("tasks/params/evaluate.py", {"evaluate"}),
        ("tasks/verdict.py", {"gate"}),
        ("tasks/gate.py", {"gate"}),
        # a report's module reruns its writer and its readers only: the gate's verdict, evaluate's evaluation
        ("tasks/reports/verdict.py", {"gate"}),
        ("tasks/reports/evaluation.py", {"evaluate", "gate"}),
        ("tasks/evaluate.py", {"evaluate"}),  # its plots are no dep of the gate
    ],
)
def test_a_module_is_a_dep_of_exactly_the_stages_that_import_it(module, stages_that_see_it):
    assert {name for name, e in _dvc_stages().items() if module in e["deps"]} == stages_that_see_it


def test_each_stage_declares_exactly_its_functions_arguments():
    for stage in stages.STAGES:
        signature = inspect.signature(stage.fn).parameters
        required = {n for n, p in signature.items() if p.default is inspect.Parameter.empty}
        declared = set(stage.arguments(Path("root"), Params()))
        assert required <= declared <= set(signature), f"{stage.name}: {required ^ declared}"


def test_arguments_are_paths_under_root_and_params_sections():
    params = Params()
    args = stages.BY_NAME["train"].arguments(Path("/r"), params)
    assert args["processed"] == Path("/r/data/processed")
    assert args["model_dir"] == Path("/r/models/model")
    assert args["params"] is params.train
    assert args["model"] is params.model


def test_outputs_render_as_dvc_entries():
    assert Output("a/b").dvc() == "a/b"
    assert Output("m", persist=True).dvc() == {"m": {"persist": True}}
    assert Output("p.json", "plots", plot={"x": "step"}, cache=False).dvc() == {"p.json": {"x": "step", "cache": False}}
    entry = stages.dvc_stage(Stage("s", stages.BY_NAME["gate"].fn, deps={"a": "in"}, outs={"b": "out"}))
    assert entry["deps"][-1] == "in"
    assert entry["outs"] == ["out"]
    assert "params" not in entry


def test_import_closure_follows_every_form_of_import(tmp_path):
    pkg = tmp_path / "tasks"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "stage.py": (
            "import os\nfrom tasks import helper\nfrom . import relative\n\ndef f():\n    import tasks.lazy\n"
            'if __name__ == "__main__":\n    import tasks.runner\n'  # counts as any import does
        ),
        "runner.py": "",
        "helper.py": "from tasks.sub.deep import x\n",
        "relative.py": "",
        "lazy.py": "",
        "unused.py": "",
        "sub/__init__.py": "",
        "sub/deep.py": "x = 1\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    closure = import_closure("tasks.stage", tmp_path)
    expected = {f"tasks/{n}" for n in files if n != "unused.py"}
    assert set(closure) == expected
    assert closure == sorted(closure)


def test_a_stage_that_reads_single_keys_is_checked_for_changes_to_those_keys_only(tmp_path):
    from tasks.snapshot import Snapshot

    raw = {"model": {"handle": "small_cnn", "image_size": 64, "dropout": 0.2}, "train": {"seed": 1, "epochs": 3}}
    snapshot = Snapshot("features", tmp_path, tmp_path / "params.yaml", raw, {})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**raw, "train": {"seed": 1, "epochs": 9}}))
    assert snapshot.changes() == []  # train.epochs is not the features stage's
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**raw, "model": {**raw["model"], "image_size": 96}}))
    assert snapshot.changes() == ["params.yaml changed while features ran (model.image_size)"]


def test_the_committed_metrics_are_the_ones_the_committed_dvc_lock_describes():
    """A fresh clone's `dvc exp show` baseline row: reports/metrics.json is in git (cache: false), and its bytes
    are those dvc.lock records for the gate's run, so the figures belong to the committed pipeline."""

    def committed(rel: str) -> bytes:
        return subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=REPO, capture_output=True, check=True).stdout

    lock = yaml.safe_load(committed("dvc.lock"))
    (entry,) = [o for o in lock["stages"]["gate"]["outs"] if o["path"] == paths.METRICS]
    assert hashlib.md5(committed(paths.METRICS)).hexdigest() == entry["md5"]
    assert set(json.loads(committed(paths.METRICS))) >= {"acc", "acc_lo", "acc_hi", "gate", "recall"}


def test_the_committed_dvc_lock_records_exactly_the_stages_of_dvc_yaml():
    """DVC keeps the entry of a stage that dvc.yaml no longer has (the old promote): nothing may read it as current."""
    lock = yaml.safe_load(
        subprocess.run(["git", "show", "HEAD:dvc.lock"], cwd=REPO, capture_output=True, check=True).stdout
    )
    assert list(lock["stages"]) == [s.name for s in stages.STAGES]
