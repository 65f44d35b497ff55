"""The deployments have one definition (flows/deployments.py): prefect.yaml and `make serve` follow from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from flows import deployments
from flows.deployments import DEPLOYMENTS
from tests.helpers.repo import copy_repo

REPO = Path(__file__).resolve().parents[2]


def test_committed_prefect_yaml_is_the_generated_one():
    assert (REPO / "prefect.yaml").read_text() == deployments.render(), "prefect.yaml is stale: run make prefect-yaml"


def test_prefect_yaml_and_serve_declare_the_same_deployments(tmp_path):
    from prefect.cli.deploy._triggers import DeploymentTriggerAdapter
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy

    declared = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    served = {d.name: d for d in deployments.served(tmp_path)}
    assert set(declared) == set(served) == {d.name for d in DEPLOYMENTS}
    for name, runner in served.items():
        spec = declared[name]
        assert [s.schedule.cron for s in runner.schedules] == [s["cron"] for s in spec["schedules"]]
        assert runner.tags == spec["tags"]
        assert runner.description == spec["description"]
        assert runner.entrypoint == spec["entrypoint"]
        assert runner.concurrency_limit == 1
        assert runner.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
        assert spec["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        # the triggers as `prefect deploy` reads them from prefect.yaml, and as served
        assert [DeploymentTriggerAdapter.validate_python(t) for t in spec.get("triggers", [])] == runner.triggers

        # the same parameters: paths relative to the repository in prefect.yaml, under --root when served; flags as is
        def served_as(v):
            if isinstance(v, bool):
                return v
            return [str(tmp_path.resolve() / x) for x in v] if isinstance(v, list) else str((tmp_path / v).resolve())

        assert runner.parameters == {k: served_as(v) for k, v in spec["parameters"].items()}
    assert served["weekly-retrain"].parameters["promote"] is True  # the scheduled retrain promotes what passes


def test_lint_fails_when_prefect_yaml_drifts(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    check = [sys.executable, "-m", "flows.deployments", "--check"]
    assert subprocess.run(check, cwd=repo, capture_output=True, text=True).returncode == 0
    text = (repo / "prefect.yaml").read_text()
    (repo / "prefect.yaml").write_text(text.replace("cron: 0 3 * * 1", "cron: 0 4 * * 1"))
    done = subprocess.run(check, cwd=repo, capture_output=True, text=True)
    assert done.returncode == 1
    assert "prefect.yaml is out of date with its definition in code; run: make prefect-yaml" in done.stderr
