"""TensorFlow's C++ start-up lines are hidden unless the user asks (PIPELINE_VERBOSE=1 or --verbose)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TF_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers", "cuInit")
# a command line that parses its flags first and imports TensorFlow later, like every stage and flow
SCRIPT = """
import argparse, sys
from tasks.cli import setup
from tasks.errors import logger
from tasks.quiet import add_verbose_flag
parser = argparse.ArgumentParser()
add_verbose_flag(parser)
parser.parse_args(sys.argv[1:])
setup()  # as every command line does (tasks.run, the flows)
logger("train").info("the project's own line")
import tensorflow as tf
print(int(tf.constant(1) + 1))
"""


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PIPELINE_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def test_tensorflow_start_up_lines_are_hidden_by_default_and_own_lines_kept():
    done = _run()
    assert done.stdout.strip() == "2"
    assert "the project's own line" in done.stderr
    assert not [n for n in TF_NOISE if n in done.stderr], done.stderr


def test_verbose_flag_and_environment_variable_show_them():
    for done in (_run("--verbose"), _run(PIPELINE_VERBOSE="1")):
        assert "absl::InitializeLog" in done.stderr or "oneDNN custom operations" in done.stderr, done.stderr
        assert "the project's own line" in done.stderr


SPAWNING = """
import multiprocessing
import tasks.run  # noqa: F401  the main module of every stage's process (python -m tasks.run STAGE)


def child():
    import tensorflow as tf
    return int(tf.constant(1) + 1)


if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # as the built-in backbone's export runs
        print(pool.apply(child))
"""


def test_a_process_a_stage_spawns_starts_tensorflow_quiet_too(tmp_path):
    (tmp_path / "probe.py").write_text(SPAWNING)
    clean = {k: v for k, v in os.environ.items() if k not in ("PIPELINE_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "probe.py")],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip() == "2"
    assert not [n for n in TF_NOISE if n in done.stderr], done.stderr
