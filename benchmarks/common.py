"""Shared helpers for the benchmarks: timing, synthetic inputs, repository copies, results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def builtin_backbone(small: bool) -> tuple[str, int]:
    """The built-in backbone and seed a benchmark runs: resnet50v2 (random weights: the Hub ResNet's
    architecture and cost), or with ``--small`` the demo's small_cnn and seed (pretrained once, in
    ``data/backbones``, for the demo, the suite and every smoke run)."""
    from tasks.params.train import TrainParams

    return ("small_cnn", TrainParams().seed) if small else ("resnet50v2", 0)


def untrained_classifier(backbone: Any, size: int) -> Any:
    """The train stage's classifier around a loaded ``backbone`` (uint8 images in), with an untrained
    two-class head sized by one forward pass of the backbone."""
    import numpy as np

    from tasks.train import build_classifier, build_head

    features = int(backbone(np.zeros((1, size, size, 3), "float32"), training=False).shape[-1])
    return build_classifier(backbone, build_head(features, 2, 0.2), size)


def median_time(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Median wall time of ``fn()`` over ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    gpus = []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
        )
        gpus = out.stdout.split("\n")[:-1] if out.returncode == 0 else []
    except FileNotFoundError:
        pass
    return {
        "date": date.today().isoformat(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gpus": gpus,
    }


def save(name: str, result: dict[str, Any], small: bool = False) -> Path:
    """Write ``benchmarks/results/<name>.json`` and print it; a ``--small`` run's name starts with ``smoke_``,
    so that a smoke run never overwrites a committed result (``smoke_*.json`` are git-ignored)."""
    if small and not name.startswith("smoke_"):
        name = f"smoke_{name}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return out


def synthetic_folder(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` synthetic 178x218 JPEGs in the Kaggle layout under ``root/Dataset/Train``."""
    from tasks import synthetic

    seq: dict[str, int] = {}
    for _, label, data in synthetic.generate({"Train": count}, 0.42, seed):
        seq[label] = seq.get(label, 0) + 1
        path = root / "Dataset" / "Train" / label / f"{seq[label]:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def run_measured(cmd: list[str], cwd: Path, env: dict | None = None, log: Path | None = None) -> tuple[float, float]:
    """Run ``cmd`` in a fresh child; return (wall seconds, peak RSS in MiB of its largest process).

    With ``log``, the command's stderr (where the stages log) is written there.
    """
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "rc = subprocess.run(sys.argv[1:]).returncode; dt = time.perf_counter() - t; "
        "print('MEASURED', dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *cmd], cwd=cwd, env=env or os.environ.copy(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{done.stderr[-3000:]}")
    if log is not None:
        log.write_text(done.stderr)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("MEASURED"))
    _, seconds, kib = line.split()
    return float(seconds), int(kib) / 1024
