"""Every benchmark runs (at its --small size): they are code, and must not rot between measurements."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.common import REPO, RESULTS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("module", "keys"),
    [
        ("benchmarks.frozen_phase", ["speedup", "seconds_median", "val_accuracy"]),
        ("benchmarks.input_pipeline", ["images_per_second", "ours_vs_image_data_generator", "ours_share_of_bare_loop"]),
        ("benchmarks.scale", ["runs", "train_peak_at_160k_estimate_mib"]),
        ("benchmarks.predict", ["models"]),
        ("benchmarks.gpu_checks", ["mixed_over_fp32", "input_overhead", "frozen_phase_speedup"]),
    ],
)
def test_benchmark_runs_small(module, keys):
    name = "smoke_" + module.split(".")[1]
    args = ["--small"] + (["--name", name] if module != "benchmarks.gpu_checks" else [])
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((RESULTS / f"{name}.json").read_text())
    assert set(keys) <= set(result) and result["machine"]["cpus"] >= 1
