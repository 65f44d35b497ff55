"""Safe defaults: loopback-only server, bomb limits from params, no shell, no pickles."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
import yaml

from flows.pipeline import STAGE_NAMES
from tests.helpers.prefect_server import without_prefect_settings
from tests.helpers.processes import kill_when
from tests.helpers.repo import REPO, dvc

CODE = sorted(p for d in ("tasks", "flows", "benchmarks") for p in (REPO / d).rglob("*.py"))


def _calls(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def test_the_prefect_server_binds_to_loopback_by_default():
    env = without_prefect_settings()
    code = "from prefect.settings import get_current_settings as g; s = g(); print(s.server.api.host)"
    host = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    ).stdout.strip()
    assert host == "127.0.0.1"
    makefile = (REPO / "Makefile").read_text()
    assert "server start --host 127.0.0.1" in makefile
    assert "0.0.0.0" not in makefile
    assert "0.0.0.0" not in (REPO / "flows" / "serve.py").read_text()


def test_pillow_bomb_limit_comes_from_params(tmp_path):
    from PIL import Image

    from tasks.archive import ArchiveWriter
    from tasks.validate import _init_worker

    with ArchiveWriter(tmp_path / "a.zip"):
        pass
    before = Image.MAX_IMAGE_PIXELS
    try:
        _init_worker(str(tmp_path / "a.zip"), 1234, max_file_mb=50)
        assert Image.MAX_IMAGE_PIXELS == 1234
    finally:
        Image.MAX_IMAGE_PIXELS = before


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(REPO)))
def test_no_shell_true_and_no_pickles(path):
    tree = ast.parse(path.read_text())
    for call in _calls(tree):
        for kw in call.keywords:
            assert not (kw.arg == "shell" and getattr(kw.value, "value", None) is True), f"{path}: shell=True"
            assert not (kw.arg == "allow_pickle" and getattr(kw.value, "value", None) is True), f"{path}: allow_pickle"
        name = ast.unparse(call.func)
        assert not name.endswith(("models.load_model", "pickle.load", "pickle.loads")), f"{path}: {name}"
    imports = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not ({"pickle", "cloudpickle", "dill"} & (imports | modules)), path


def test_models_are_loaded_with_tf_saved_model_load_only():
    source = (REPO / "tasks" / "inference.py").read_text()
    assert "tf.saved_model.load(" in source
    assert "load_model(" not in source.replace("def load_model(", "")


@pytest.mark.slow
def test_a_flow_killed_between_stages_restarts_at_the_right_stage(flow_repo, prefect_server):
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.pipeline", "--root", str(flow_repo)],
        cwd=flow_repo,
        env=prefect_server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # killed with the dvc repro it runs, as a stopped worker's run is
    )

    def validate_entry() -> dict:
        """The validate entry once dvc.lock is whole again (DVC rewrites the file in place)."""
        try:
            stages = yaml.safe_load((flow_repo / "dvc.lock").read_text())["stages"]
        except (yaml.YAMLError, KeyError, TypeError):
            return before
        whole = set(stages) == set(STAGE_NAMES) and all("outs" in entry for entry in stages.values())
        return stages["validate"] if whole else before

    before = yaml.safe_load((flow_repo / "dvc.lock").read_text())["stages"]["validate"]  # for other params
    kill_when(proc, lambda: validate_entry() != before)  # right after the flow recorded validate

    done = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", "--root", str(flow_repo)],
        cwd=flow_repo,
        env=prefect_server.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    latest = prefect_server.flow_runs()[0]
    states = [(t["name"], t["state"]["name"]) for t in prefect_server.task_runs(latest["id"])]
    assert [s for s, _ in states] == list(STAGE_NAMES)
    assert states[:2] == [("download", "Skipped"), ("validate", "Skipped")]
    assert ("evaluate", "Completed") in states
    assert "up to date" in dvc(flow_repo, "status")
    assert not list((flow_repo / "data").glob(".*.tmp-*"))  # no litter from the killed run
