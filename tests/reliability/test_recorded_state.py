"""dvc.lock records only what ran: params or code edited while a stage runs are never recorded as its inputs.

Each test edits a file at a known moment inside the run: ``dvc repro`` runs the stage in another
process, so that edit comes from a ``sitecustomize`` module on PYTHONPATH (run after the stage has
read params.yaml); the flow runs in this process, so there the stage's own function is wrapped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import download
from tasks.errors import StageError
from tests.helpers.repo import TINY_PARAMS, dvc, set_params

pytestmark = pytest.mark.slow

EDIT_AFTER_READING = """
import json, os
import yaml
import tasks.params.config as config

parse = config.parse


def parse_then_edit(*args, **kwargs):  # the stage has its params: now the user edits the file
    parsed = parse(*args, **kwargs)
    section, key, value = json.loads(os.environ["EDIT_PARAMS"])
    params = yaml.safe_load(open("params.yaml"))
    params[section][key] = value
    open("params.yaml", "w").write(yaml.safe_dump(params, sort_keys=False))
    return parsed


config.parse = parse_then_edit
"""


@pytest.fixture
def tiny_repo(repo_copy, monkeypatch) -> Path:
    set_params(repo_copy, TINY_PARAMS)
    monkeypatch.chdir(repo_copy)  # DVC's Repo works from its root (the flow's CLI runs there too)
    return repo_copy


def test_params_edited_while_dvc_repro_runs_a_stage_are_not_recorded(tiny_repo, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(EDIT_AFTER_READING)
    lock = (tiny_repo / "dvc.lock").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "-s", "download"],
        cwd=tiny_repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(hook), "EDIT_PARAMS": json.dumps(["data", "max_archive_mb", 4000])},
    )
    assert done.returncode != 0
    assert (
        "error: params.yaml changed while download ran (data.max_archive_mb): nothing recorded; run dvc repro again"
        in done.stderr
    )
    assert (tiny_repo / "dvc.lock").read_text() == lock
    assert "download" in json.loads(dvc(tiny_repo, "status", "download", "--json"))


def _flow_stops_unrecorded(repo: Path, monkeypatch, edit, message: str) -> None:
    """Run the flow with ``edit()`` made inside download; it stops with ``message`` and records nothing."""
    from flows.pipeline import gender_pipeline

    make = download.make_synthetic

    def make_then_edit(params, dest):
        edit()
        return make(params, dest)

    monkeypatch.setattr(download, "make_synthetic", make_then_edit)
    lock = (repo / "dvc.lock").read_text()
    with pytest.raises(StageError, match=message):
        gender_pipeline.fn(root=str(repo))
    assert (repo / "dvc.lock").read_text() == lock
    assert "download" in json.loads(dvc(repo, "status", "download", "--json"))


def test_params_edited_while_the_flow_runs_a_stage_are_not_recorded(tiny_repo, monkeypatch):
    _flow_stops_unrecorded(
        tiny_repo,
        monkeypatch,
        lambda: set_params(tiny_repo, {"data": {"max_archive_mb": 4000}}),
        r"params.yaml changed while download ran \(data.max_archive_mb\): nothing",
    )


def test_code_edited_during_a_flow_run_is_not_recorded_as_what_ran(tiny_repo, monkeypatch):
    def append_a_line():
        with (tiny_repo / "tasks" / "synthetic.py").open("a") as fh:
            fh.write("# edited while the flow runs the code it imported before\n")

    _flow_stops_unrecorded(
        tiny_repo, monkeypatch, append_a_line, r"tasks/synthetic.py changed since the flow started .*: nothing recorded"
    )
