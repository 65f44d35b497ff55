"""DVC's own state files left broken by a killed run: the doctor finds and repairs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tasks import doctor
from tests.helpers.repo import TINY_PARAMS, dvc, set_params

pytestmark = pytest.mark.slow


def _doctor(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasks.doctor", *args], cwd=repo, capture_output=True, text=True, timeout=120
    )


def test_a_truncated_dvc_lock_and_rwlock_are_found_and_repaired(repo_copy):
    set_params(repo_copy, TINY_PARAMS)
    dvc(repo_copy, "repro", "validate")
    lock, kept = repo_copy / doctor.LOCKFILE, repo_copy / doctor.LAST_GOOD
    # each stage keeps dvc.lock as the stages before it left it: with this download, the old validate
    before, after = yaml.safe_load(kept.read_text())["stages"], yaml.safe_load(lock.read_text())["stages"]
    assert before["download"] == after["download"]
    assert before["validate"] != after["validate"]

    lock.write_text("")  # what a kill while DVC writes it leaves
    broken = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=repo_copy, capture_output=True, text=True)
    assert broken.returncode != 0
    assert "dvc.lock' validation failed" in broken.stdout + broken.stderr
    check = _doctor(repo_copy, "--check")
    assert check.returncode == 1
    assert "dvc.lock: empty; run `make doctor`" in check.stderr

    from flows.pipeline import gender_pipeline
    from tasks.errors import StageError

    with pytest.raises(StageError, match="dvc.lock: empty; run `make doctor`"):
        gender_pipeline.fn(root=str(repo_copy))  # the flow stops before touching DVC, pointing at the doctor

    fixed = _doctor(repo_copy)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"repaired: dvc.lock: restored the last good copy ({doctor.LAST_GOOD})" in fixed.stdout
    assert "dvc status" in fixed.stdout
    assert "dvc repro" in fixed.stdout  # what to run next
    stale = dvc(repo_copy, "status", "validate")
    assert "validate:" in stale
    assert "download:" not in stale  # only what the copy did not record
    dvc(repo_copy, "repro", "validate")  # (DVC's run cache restores it without running)
    assert yaml.safe_load(lock.read_text())["stages"] == after

    rwlock = repo_copy / doctor.RWLOCK
    rwlock.write_text("")
    assert "rwlock: empty" in _doctor(repo_copy, "--check").stderr
    assert "removed the broken file" in _doctor(repo_copy).stdout
    assert "up to date" in dvc(repo_copy, "status", "validate")
    assert _doctor(repo_copy, "--check").stdout.strip() == "DVC state files: OK"


def test_without_a_good_copy_the_committed_lock_or_nothing(tmp_path):
    root = tmp_path / "repo"
    (root / ".dvc" / "tmp").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    good = "schema: '2.0'\nstages: {}\n"
    (root / doctor.LOCKFILE).write_text(good)
    doctor.keep_last_good(root)
    assert (root / doctor.LAST_GOOD).read_text() == good
    (root / doctor.LOCKFILE).write_text("schema: '2.0'\nstages:\n  train:\n    cmd: [")  # cut short
    assert doctor.problems(root)[0].startswith("dvc.lock: not YAML")
    doctor.keep_last_good(root)  # a broken lock never replaces the good copy
    assert (root / doctor.LAST_GOOD).read_text() == good

    (root / doctor.LAST_GOOD).unlink()
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"],
        cwd=root,
        check=True,
    )
    assert doctor.repair(root) == [
        f"{doctor.LOCKFILE}: no good copy anywhere; set the broken file aside as "
        + next(root.glob("dvc.lock.broken-*")).name
    ]
    assert not (root / doctor.LOCKFILE).exists()
    assert not doctor.problems(root)
