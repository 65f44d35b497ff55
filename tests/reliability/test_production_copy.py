"""The production model's local copy survives any interruption of its replacement (reliability rounds 2 and 4).

The registry itself is git tags (written atomically by git) naming bytes in DVC's content-addressed cache
and remote. What a kill could break is the local copy that predict, validate and the gate read:
``models/production``, replaced by ``tasks.registry.install`` when the registry names another version. A
child process installs one version over another and is killed: right after each filesystem step, and at
100+ random moments. At every instant ``models/production/model`` must be a complete model, and its pointer
must name it; after the recovery that the next sync performs, no leftovers remain.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import files, paths, registry
from tasks.files import tree_hash, write_json

ROOT = Path(__file__).resolve().parents[2]
CHILD = r"""
import os, shutil, sys
from pathlib import Path
from tasks import files, registry
mode, work = sys.argv[1], Path(sys.argv[2])
production = work / "models" / "production"

def put(name):
    def fill(tmp):
        shutil.copytree(work / "candidates" / name, tmp / "model")
        for report in ("evaluation.json", "source.json", "validation.json"):
            shutil.copy2(work / report, tmp / report)
    registry.install(production, fill, name, "c" * 40, None)

if mode == "loop":  # install A and B in turn until killed
    print("ready", flush=True)
    while True:
        put("A"); put("B")
count, stop = [0], int(sys.argv[3])
def after(fn):
    def step(*args, **kwargs):
        out = fn(*args, **kwargs)
        count[0] += 1
        if count[0] == stop:
            os._exit(9)  # as abrupt as SIGKILL: no cleanup runs
        return out
    return step
for module, name in ((os, "rename"), (os, "replace"), (os, "mkdir"), (os, "unlink"), (os, "rmdir"),
                     (shutil, "copyfile"), (shutil, "copystat"), (files, "write_json"), (files, "_exchange")):
    setattr(module, name, after(getattr(module, name)))
if mode == "steps-without-exchange":
    files._exchange = lambda a, b: False  # the two-rename fallback of other systems
put("B")
print(f"done after {count[0]} steps")
"""


def _model(folder: Path, seed: int) -> str:
    rng = random.Random(seed)
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(rng.randbytes(50_000))
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(rng.randbytes(2_000_000))
    (folder / "variables" / "variables.index").write_bytes(rng.randbytes(1_000))
    (folder / "class_names.json").write_text('["Female", "Male"]')
    fingerprint = tree_hash(folder)
    (folder.parent / f"{folder.name}.fingerprint").write_text(fingerprint)
    return fingerprint


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Two candidate models, their reports, and A already in production."""
    work = tmp_path_factory.mktemp("production")
    hashes = {name: _model(work / "candidates" / name, seed) for seed, name in enumerate("AB")}
    for report in ("evaluation.json", "source.json", "validation.json"):
        write_json(work / report, {"report": report})

    def fill(tmp: Path) -> None:
        shutil.copytree(work / "candidates" / "A", tmp / "model")
        for report in ("evaluation.json", "source.json", "validation.json"):
            shutil.copy2(work / report, tmp / report)

    registry.install(work / paths.PRODUCTION_DIR, fill, "A", "c" * 40, None)
    return work, hashes


def _copy(template, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work, hashes = template
    shutil.copytree(work, tmp_path / "work")
    return tmp_path / "work", hashes


def _whole(work: Path, hashes: dict[str, str]) -> str:
    """Which model is in the copy; fails unless the folder holds a complete model that its pointer names."""
    production = work / paths.PRODUCTION_DIR
    model = tree_hash(production / "model")
    pointer = registry.read_pointer(production)
    assert model in hashes.values(), (model, pointer)
    assert pointer is not None and pointer.fingerprint == model, (model, pointer)
    assert hashes[pointer.model_version] == model, (model, pointer)
    for report in ("evaluation.json", "source.json", "validation.json"):
        assert (production / report).is_file()
    return pointer.model_version


def _child(mode: str, work: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(work), *args], cwd=ROOT, text=True, stdout=subprocess.PIPE, **popen
    )


def _no_leftovers(work: Path) -> None:
    assert sorted(p.name for p in (work / "models").iterdir()) == ["production"]


@pytest.mark.parametrize("mode", ["steps", "steps-without-exchange"])
def test_a_kill_right_after_each_filesystem_step_leaves_a_whole_copy(mode, template, tmp_path):
    seen, step = set(), 0
    while True:
        step += 1
        work, hashes = _copy(template, tmp_path / str(step))
        child = _child(mode, work, str(step))
        out, _ = child.communicate(timeout=120)
        if mode == "steps":  # one atomic swap: whole at every instant, before any recovery
            seen.add(_whole(work, hashes))
        files.recover(work / paths.PRODUCTION_DIR)  # what the next run does first
        seen.add(_whole(work, hashes))
        _no_leftovers(work)
        if child.returncode == 0:
            assert out.startswith("done after"), out
            assert step > 10, out
            break
        assert child.returncode == 9
        shutil.rmtree(work)
    assert seen == {"A", "B"}  # killed both before and after the swap


def test_a_hundred_kills_at_random_moments_never_break_the_copy(template, tmp_path):
    work, hashes = _copy(template, tmp_path)
    rng, seen = random.Random(12), []
    for _ in range(110):
        child = _child("loop", work)
        assert child.stdout.readline() == "ready\n"
        with pytest.raises(subprocess.TimeoutExpired):  # installing in a loop, A then B then A ...
            child.wait(timeout=rng.uniform(0.0, 0.25))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        assert child.returncode == -signal.SIGKILL
        seen.append(_whole(work, hashes))  # whole at the moment of the kill, before any recovery
        files.recover(work / paths.PRODUCTION_DIR)
        _no_leftovers(work)
    assert set(seen) == {"A", "B"}
