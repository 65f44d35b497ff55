"""``python -m flows.team REPOSITORY [--branch B] [--pool P]`` (``make deploy-team``): a retrain from nothing.

The deployment ``team-retrain`` keeps no checkout on any machine. Its pull step is Prefect's ``git_clone``: a
worker of the pool clones REPOSITORY at the branch into its own working folder, then the flow

1. pulls what the DVC remote holds (``pull=True``), so stages that are up to date only check out their outputs;
2. reruns what is stale through ``dvc repro``;
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

from flows.deployments import COLLISION

NAME = "team-retrain"
PARAMETERS = {"root": ".", "pull": True, "promote": True, "publish": True}


def deploy(repository: str, branch: str, pool: str, cron: str | None = "0 3 * * 1") -> str:
    """Create or update the ``team-retrain`` deployment on ``pool``; its id."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.runner.storage import GitRepository

    from flows.pipeline import gender_pipeline

    source = gender_pipeline.from_source(
        source=GitRepository(url=repository, branch=branch), entrypoint="flows/pipeline.py:gender_pipeline"
    )
    deployment_id = source.deploy(
        name=NAME,
        work_pool_name=pool,
        parameters=PARAMETERS,
        cron=cron,
        tags=["retrain", "team"],
        description=f"Clone {repository}@{branch}, pull, rerun what is stale, promote, publish runs/<run>",
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=COLLISION),
        print_next_steps=False,
    )
    return str(deployment_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("repository", help="a git URL (or path) every worker can clone and push to")
    parser.add_argument("--branch", default="main", help="the branch to run (default: %(default)s)")
    parser.add_argument("--pool", default="team", help="the work pool (default: %(default)s)")
    args = parser.parse_args(argv)
    print(f"{NAME}: deployment {deploy(args.repository, args.branch, args.pool)} on pool {args.pool}")


if __name__ == "__main__":
    main()
