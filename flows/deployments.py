"""The deployments, defined once.

``make serve`` (flows/serve.py) builds them from :data:`DEPLOYMENTS`, and the work-pool route's
``prefect.yaml`` is written from it: ``python -m flows.deployments`` (``make prefect-yaml``) rewrites
the file, ``--check`` (in ``make lint``) fails when the committed file is not what this module gives.

Each deployment allows **one run at a time** (a deployment concurrency limit, enforced by the Prefect
server whichever route runs the flow). A second trigger while one runs is **enqueued**, not cancelled:
it waits in the state ``AwaitingConcurrencySlot`` and runs when the first ends. For the retrain that
run is cheap when nothing changed (DVC skips every stage) and necessary when something did: a params
or code edit made during the first run is refused at recording time (tasks/snapshot.py), so the
queued run is the one that records it. For batch prediction, a queued run predicts the images that
arrived in the inbox after the first one listed it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flows.events import promoted_trigger
from tasks import paths
from tasks.generated import write_or_check

REPO = Path(__file__).resolve().parents[1]
PREFECT_YAML = "prefect.yaml"
WORK_POOL = "local-process"  # `make deploy` creates it; `make worker` serves it
COLLISION = "ENQUEUE"  # a second run waits for the first (see the module docstring)

HEADER = f"""\
# Generated from flows/deployments.py by `make prefect-yaml`; `make lint` fails if they differ.
# Deployments of this repository for the work-pool route:
#   make deploy    (creates the process work pool "{WORK_POOL}", then `prefect deploy --all`)
#   make worker    (`prefect worker start --pool {WORK_POOL}`: picks up scheduled and triggered runs)
# `make serve` runs the same deployments without a work pool (flows/serve.py).
# For more than one machine, point work_pool at a Docker or Kubernetes work pool and keep the
# DVC data in an S3 remote (dvc remote add -d team s3://bucket/path; docs/scaling.md).
"""


@dataclass(frozen=True)
class Deployment:
    """One deployment. ``parameters`` are paths relative to the repository (a string or a list of them) or flags:
    prefect.yaml's runs start in the repository, and ``make serve`` resolves the paths against ``--root``."""

    name: str
    entrypoint: str  # file:flow, as prefect.yaml has it
    description: str
    cron: str  # UTC
    tags: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: int = 1
    triggers: tuple[Callable[[], Any], ...] = ()  # each makes a DeploymentEventTrigger that starts a run

    def made_triggers(self) -> list[Any]:
        return [make() for make in self.triggers]

    def flow(self) -> Any:
        """The flow object the entrypoint names."""
        file, name = self.entrypoint.split(":")
        return getattr(importlib.import_module(file.removesuffix(".py").replace("/", ".")), name)

    def resolved(self, root: Path) -> dict[str, Any]:
        """``parameters`` with each path made absolute under ``root``."""

        def under(value: Any) -> Any:
            if isinstance(value, bool):
                return value
            return [under(v) for v in value] if isinstance(value, list) else str((root / value).resolve())

        return {k: under(v) for k, v in self.parameters.items()}


DEPLOYMENTS = (
    Deployment(
        name="weekly-retrain",
        entrypoint="flows/pipeline.py:gender_pipeline",
        description="Rerun the stale stages of the pipeline (DVC skips the rest), then promote a model the gate passed",
        cron="0 3 * * 1",  # Mondays 03:00
        tags=("retrain",),
        parameters={"root": ".", "promote": True},  # make promote's step: the scheduled retrain serves its model
    ),
    Deployment(
        name="batch-predict",
        entrypoint="flows/predict.py:batch_predict",
        description=f"Predict every image in {paths.INBOX} with the production model; results: {paths.PREDICTIONS_OUT}",
        cron="0 6 * * *",  # daily 06:00
        tags=("predict",),
        parameters={"inputs": [paths.INBOX], "model": paths.PRODUCTION_MODEL, "output": paths.PREDICTIONS_OUT},
        triggers=(promoted_trigger,),  # a newly promoted model serves the inbox at once (flows/events.py)
    ),
)
BY_NAME = {d.name: d for d in DEPLOYMENTS}


def served(root: Path) -> list:
    """The deployments as ``prefect.serve`` takes them, with their paths under ``root``."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    return [
        d.flow().to_deployment(
            name=d.name,
            cron=d.cron,
            parameters=d.resolved(root),
            tags=list(d.tags),
            description=d.description,
            concurrency_limit=ConcurrencyLimitConfig(limit=d.concurrency_limit, collision_strategy=COLLISION),
            triggers=d.made_triggers(),
        )
        for d in DEPLOYMENTS
    ]


def _as_yaml(trigger: Any) -> dict[str, Any]:
    """A deployment trigger as prefect.yaml's ``triggers:`` entry (what ``prefect deploy`` reads back)."""
    shown = trigger.model_dump(mode="json", exclude_unset=True, exclude={"name"})
    shown["expect"] = sorted(shown["expect"])
    return {"name": trigger.name, "type": trigger.type, "enabled": True, **shown}


def render() -> str:
    """The text of prefect.yaml."""
    project = {
        "name": "gender-pipeline",
        "prefect-version": importlib.metadata.version("prefect"),
        "build": None,
        "push": None,
        # runs start in the repository; PIPELINE_ROOT is filled in when `prefect deploy` runs
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PIPELINE_ROOT }}"}}],
        "deployments": [
            {
                "name": d.name,
                "description": d.description,
                "entrypoint": d.entrypoint,
                "parameters": d.parameters,
                "tags": list(d.tags),
                "work_pool": {"name": WORK_POOL},
                "concurrency_limit": {"limit": d.concurrency_limit, "collision_strategy": COLLISION},
                "schedules": [{"cron": d.cron, "timezone": "UTC"}],
                **({"triggers": [_as_yaml(t) for t in d.made_triggers()]} if d.triggers else {}),
            }
            for d in DEPLOYMENTS
        ],
    }
    return HEADER + yaml.safe_dump(project, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> None:
    """Write prefect.yaml, or with ``--check`` say whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {PREFECT_YAML} is not the generated text")
    write_or_check(REPO / PREFECT_YAML, render(), parser.parse_args(argv).check, "make prefect-yaml")


if __name__ == "__main__":
    main()
