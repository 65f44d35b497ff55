"""dvc.lock records only what ran: params or code edited while a stage runs are never recorded as its inputs.

Each test edits a file at a known moment inside the run: the stage runs in its own process (under
``dvc repro``, whether a person or the flow started it), so that edit comes from a ``sitecustomize``
module on PYTHONPATH, run after the stage has read params.yaml.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.prefect_server import without_prefect_settings
from tests.helpers.repo import TINY_PARAMS, dvc, set_params

pytestmark = pytest.mark.slow

EDIT_AFTER_READING = """
import json, os, sys
import yaml
import tasks.params.config as config

parse = config.parse


def parse_then_edit(*args, **kwargs):  # the stage has its params: now the user edits a file
    parsed = parse(*args, **kwargs)
    if getattr(sys.modules["__main__"].__spec__, "name", "") != "tasks.run":  # the flow reads params too
        return parsed
    if "EDIT_PARAMS" in os.environ:
        section, key, value = json.loads(os.environ["EDIT_PARAMS"])
        params = yaml.safe_load(open("params.yaml"))
        params[section][key] = value
        open("params.yaml", "w").write(yaml.safe_dump(params, sort_keys=False))
    if "EDIT_CODE" in os.environ:
        with open(os.environ["EDIT_CODE"], "a") as fh:
            fh.write("# edited while the stage runs\\n")
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


def _flow_stops_unrecorded(repo: Path, tmp_path: Path, edit: dict[str, str], message: str) -> None:
    """Run the flow with ``edit`` (EDIT_PARAMS or EDIT_CODE) made inside download; it stops with ``message``
    and records nothing."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(EDIT_AFTER_READING)
    lock = (repo / "dvc.lock").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", "--root", str(repo)],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**without_prefect_settings(), "PYTHONPATH": str(hook), **edit},
    )
    assert done.returncode != 0
    assert re.search(message, done.stdout + done.stderr), done.stderr[-3000:]
    assert (repo / "dvc.lock").read_text() == lock
    assert "download" in json.loads(dvc(repo, "status", "download", "--json"))


def test_params_edited_while_the_flow_runs_a_stage_are_not_recorded(tiny_repo, tmp_path):
    _flow_stops_unrecorded(
        tiny_repo,
        tmp_path,
        {"EDIT_PARAMS": json.dumps(["data", "max_archive_mb", 4000])},
        r"params.yaml changed while download ran \(data.max_archive_mb\): nothing recorded",
    )


def test_code_edited_during_a_flow_run_is_not_recorded_as_what_ran(tiny_repo, tmp_path):
    _flow_stops_unrecorded(
        tiny_repo,
        tmp_path,
        {"EDIT_CODE": str(tiny_repo / "tasks" / "synthetic.py")},
        r"tasks/synthetic.py changed while download ran: nothing recorded",
    )
