"""Fixtures shared with other folders: the Prefect server and repository copy of tests/flows (the killed-flow
test), and the trained tiny model of tests/model (the model and prediction faults)."""

from tests.flows.conftest import flow_repo, prefect_server  # noqa: F401
from tests.model.conftest import images, prepared, trained  # noqa: F401
