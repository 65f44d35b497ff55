"""``python -m flows.team REPOSITORY [--branch B] [--pool P]`` (``make deploy-team``): a retrain from nothing.

The deployment ``team-retrain`` keeps no checkout on any machine. Its pull step is Prefect's ``git_clone``: a
worker of the pool clones REPOSITORY at the branch into its own working folder, then the flow

1. pulls what the DVC remote holds (``pull=True``), so stages that are up to date only check out their outputs;
2. reruns what is stale through ``dvc repro``; train on a worker of the ``gpu`` pool (``pools``): that worker
   clones the same branch, refuses to run when its clone is not at the parent's commit, pulls the stage's
   inputs, runs it, pushes its outputs with DVC's run-cache, and the parent records the stage from that
   run-cache (``flows.pipeline.on_pool``): the same bytes, and the child run linked to the parent in the UI;
3. promotes a model the gate passed (``promote=True``, ``ops.promote``: pushes, then tags, then pushes the tags);
4. publishes the run (``publish=True``, ``ops.publish``): the outputs into the DVC remote, then the run's record
   to origin as the branch ``runs/<flow run name>``, which a teammate fetches and ``dvc pull``s.

The DVC remote must be one every machine reaches (an S3 remote: docs/scaling.md), the worker needs the
repository's push rights and the AWS variables, and ``PIPELINE_PYTHON`` names the interpreter that has the
project installed (``bin/stage-python``: a fresh clone has no ``.venv``). One run at a time (the deployment's
concurrency limit), so two workers never publish the same retrain twice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow

from flows.deployments import COLLISION
from flows.pipeline import STAGE_FLOW, dvc_streamed
from ops.record import git
from tasks.errors import StageError

NAME = "team-retrain"
GPU_POOL = "gpu"
PARAMETERS = {"root": ".", "pull": True, "promote": True, "publish": True, "pools": {"train": GPU_POOL}}


@flow(name=STAGE_FLOW, log_prints=True)
def pipeline_stage(stage: str, commit: str, root: str = ".") -> str:
    """One stage for a parent flow, on this worker's clone: pull its inputs, run it, push its outputs and run-cache.

    Raises:
        StageError: when this clone is not at the parent's commit (it would run other code), in one line.
    """
    where = Path(root).resolve()
    head = git(where, "rev-parse", "HEAD")
    if head != commit:
        raise StageError(
            f"{stage}: this worker's clone is at {head[:8]} and the parent flow at {commit[:8]}; not running other "
            "code: push the parent's commit to the branch that this pool's deployment clones"
        )
    dvc_streamed(where, "pull", "pull", "--allow-missing", "--with-deps", stage)
    dvc_streamed(where, stage, "repro", "--single-item", stage)
    dvc_streamed(where, "push", "push", "--run-cache", stage)
    return f"{stage}: ran at {commit[:8]} on this worker; its outputs and run-cache are in the DVC remote"


def deploy(repository: str, branch: str, pool: str, gpu_pool: str = GPU_POOL, cron: str | None = "0 3 * * 1") -> str:
    """Create or update ``team-retrain`` on ``pool`` and ``pipeline-stage/<gpu_pool>`` on ``gpu_pool``; a line."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.runner.storage import GitRepository

    from flows.pipeline import gender_pipeline

    source = GitRepository(url=repository, branch=branch)
    retrain = gender_pipeline.from_source(source=source, entrypoint="flows/pipeline.py:gender_pipeline").deploy(
        name=NAME,
        work_pool_name=pool,
        parameters={**PARAMETERS, "pools": {"train": gpu_pool}},
        cron=cron,
        tags=["retrain", "team"],
        description=f"Clone {repository}@{branch}, pull, rerun what is stale (train on {gpu_pool}), promote, publish",
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=COLLISION),
        print_next_steps=False,
    )
    stage = pipeline_stage.from_source(source=source, entrypoint="flows/team.py:pipeline_stage").deploy(
        name=gpu_pool,
        work_pool_name=gpu_pool,
        tags=["team", "stage"],
        description=f"One stage of a parent flow, in a clone of {repository}@{branch} at the parent's commit",
        print_next_steps=False,
    )
    return (
        f"{NAME}: deployment {retrain} on pool {pool}; {STAGE_FLOW}/{gpu_pool}: deployment {stage} on pool {gpu_pool}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("repository", help="a git URL (or path) every worker can clone and push to")
    parser.add_argument("--branch", default="main", help="the branch to run (default: %(default)s)")
    parser.add_argument("--pool", default="team", help="the flow's work pool (default: %(default)s)")
    parser.add_argument("--gpu-pool", default=GPU_POOL, help="the work pool that trains (default: %(default)s)")
    args = parser.parse_args(argv)
    print(deploy(args.repository, args.branch, args.pool, args.gpu_pool))


if __name__ == "__main__":
    main()
