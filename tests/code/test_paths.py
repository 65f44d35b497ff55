"""dvc.yaml and tasks/paths.py name the same data paths."""

from __future__ import annotations

from pathlib import Path

import yaml

from tasks import paths

REPO = Path(__file__).resolve().parents[2]


def _declared(stage: dict, key: str) -> set[str]:
    items = stage.get(key) or []
    return {next(iter(i)) if isinstance(i, dict) else i for i in items}


def test_dvc_yaml_matches_paths_module():
    with (REPO / "dvc.yaml").open() as fh:
        stages = yaml.safe_load(fh)["stages"]
    assert list(stages) == list(paths.STAGES), "dvc.yaml and paths.STAGES list different stages (or order)"
    for name, io in paths.STAGES.items():
        stage = stages[name]
        data_deps = {d for d in _declared(stage, "deps") if not d.endswith(".py")}
        assert data_deps == set(io.deps), f"{name}: deps"
        assert _declared(stage, "outs") == set(io.outs), f"{name}: outs"
        assert _declared(stage, "metrics") == set(io.metrics), f"{name}: metrics"
        assert _declared(stage, "plots") == set(io.plots), f"{name}: plots"
        assert stage["cmd"] == f"bin/stage-python -m tasks.{name}", f"{name}: cmd"


def test_code_deps_exist():
    with (REPO / "dvc.yaml").open() as fh:
        stages = yaml.safe_load(fh)["stages"]
    for name, stage in stages.items():
        for dep in _declared(stage, "deps"):
            if dep.endswith(".py"):
                assert (REPO / dep).is_file(), f"{name}: {dep} is missing"
        assert f"tasks/{name}.py" in _declared(stage, "deps"), f"{name} must depend on its own module"
