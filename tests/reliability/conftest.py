"""The Prefect server and repository-copy fixtures of tests/flows, for the killed-flow test."""

from tests.flows.conftest import flow_repo, prefect_server  # noqa: F401
