"""The registry's plumbing on small git repositories: the record commit, the copy's life cycle, an unreachable
remote, and GTO kept out of the process (importing it reconfigures the process's logging)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from ops.record import record
from tasks import paths, registry
from tasks.errors import StageError


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    return tmp_path


def test_the_record_is_head_when_nothing_changed_and_one_commit_on_top_of_it_otherwise(repo):
    head = git(repo, "rev-parse", "HEAD")
    assert record(repo) == head
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    first, second = record(repo), record(repo)
    assert first == second != head  # the same record on the same HEAD: the same commit
    assert git(repo, "rev-parse", f"{first}^") == head
    assert git(repo, "show", f"{first}:dvc.lock") == (repo / "dvc.lock").read_text().strip()
    assert git(repo, "rev-parse", "HEAD") == head  # no branch moved
    assert git(repo, "diff", "--name-only", "HEAD") == "dvc.lock"  # the working tree as it was


def test_without_an_assignment_the_copy_goes_and_outside_git_it_stays(repo, tmp_path_factory):
    copy = repo / paths.PRODUCTION_DIR
    copy.mkdir(parents=True)
    (copy / "stale").write_text("a copy of a model the registry no longer assigns")
    assert registry.sync(repo) is None
    assert not copy.exists()

    plain = tmp_path_factory.mktemp("no-git")
    (plain / paths.PRODUCTION_DIR).mkdir(parents=True)
    (plain / paths.PRODUCTION_DIR / "kept").write_text("x")
    assert registry.sync(plain) is None
    assert (plain / paths.PRODUCTION_DIR / "kept").is_file()
    with pytest.raises(registry.NoRegistry, match="not a git repository"):
        registry.assigned(plain)


def test_an_unreachable_remote_endpoint_is_one_line_naming_the_remote_and_the_endpoint(repo):
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "team", "s3://bucket/path"], cwd=repo, check=True)
    registry.check_remote(repo)  # no endpointurl: the cloud's own endpoint, left to DVC
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    subprocess.run([*dvc, "remote", "modify", "team", "endpointurl", f"http://127.0.0.1:{port}"], cwd=repo, check=True)
    with pytest.raises(StageError) as err:
        registry.check_remote(repo)
    assert str(err.value) == (
        f"DVC remote 'team' (s3://bucket/path, endpoint http://127.0.0.1:{port}) is unreachable: Connection refused; "
        "check the endpoint and the network (dvc remote modify NAME endpointurl URL)"
    )


CHILD = """
import json, logging, sys
from pathlib import Path

class Watched(logging.Handler):  # as pytest's capture handler and Prefect's API handler: closing one ends it
    closed = False
    def close(self):
        self.closed = True
        super().close()

handler = Watched()
logging.getLogger().addHandler(handler)
from tasks import registry
found = registry.assigned(Path(sys.argv[1]))
print(json.dumps({"found": found, "gto_imported": "gto" in sys.modules, "handler_closed": handler.closed}))
"""


def test_reading_the_registry_leaves_the_process_logging_alone(repo):
    """`import gto` runs logging.config.dictConfig, which closes every handler (Prefect's, pytest's): never here."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(repo)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"found": None, "gto_imported": False, "handler_closed": False}


def test_a_stage_worker_at_another_commit_than_its_parent_refuses_in_one_line(repo):
    from flows.team import pipeline_stage

    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(StageError) as err:
        pipeline_stage.fn("train", "0" * 40, str(repo))
    assert str(err.value) == (
        f"train: this worker's clone is at {head[:8]} and the parent flow at 00000000; not running other code: "
        "push the parent's commit to the branch that this pool's deployment clones"
    )


def test_a_parent_with_uncommitted_code_does_not_send_a_stage_to_another_pool(repo):
    from flows.pipeline import on_pool

    (repo / "code.py").write_text("x = 2\n")
    (repo / "dvc.lock").write_text("this run's to write\n")
    with pytest.raises(StageError, match=r"^train: code.py differ from the commit that pool gpu's worker runs; commit"):
        on_pool("train", repo, "gpu")
