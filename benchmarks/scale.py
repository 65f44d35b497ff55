"""Benchmarks 3, 4, 6 and 9: validation throughput, `dvc repro` with nothing to do, peak memory per stage.

Runs the real pipeline (`dvc repro --single-item <stage>`, stage by stage) in a temporary copy of the
repository on N synthetic images, measuring each stage's wall time and the peak RSS of its largest
process; then times a no-op `dvc repro` (warm) and `dvc status` with DVC's hash cache removed (the
first-run hashing cost). Training uses 1 frozen epoch and no fine-tuning, so the run measures
the pipeline's data handling at scale rather than epochs.

With ``--data-half`` (benchmark 9) it runs only download, validate and preprocess, at the Kaggle set's
size by default, from a local zip in the Kaggle layout (as ``data.source: local`` reads one), and
records the disk used.

    python -m benchmarks.scale [--images 20000 --also 10000] [--small]
    python -m benchmarks.scale --data-half [--images 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import run_measured, save
from tasks import archive, paths, synthetic
from tasks.stages import BY_NAME as STAGES
from tests.helpers.repo import copy_repo

DVC = [sys.executable, "-m", "dvc"]


def split_counts(n: int) -> dict[str, int]:
    return {"Train": int(n * 0.8), "Validation": n // 10, "Test": n - int(n * 0.8) - n // 10}


def local_zip(n: int, path: Path) -> dict:
    """Write ``n`` synthetic 178x218 JPEGs as a Kaggle-layout zip; time it (on every core)."""
    start = time.perf_counter()
    with archive.ArchiveWriter(path) as writer:
        for split, label, data in synthetic.generate(split_counts(n), 0.42, 0, workers=os.cpu_count() or 1):
            writer.add(split, label, data)
    return {"seconds": round(time.perf_counter() - start, 1), "mib": round(path.stat().st_size / 2**20)}


def disk_mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20)


def pipeline_at(
    n: int, tmp: Path, stages: tuple[str, ...] = tuple(STAGES), zip_path: Path | None = None, *, noop_runs: int
) -> dict:
    """Run ``stages`` one by one on ``n`` images (synthetic, or the local zip ``zip_path``), then ``noop_runs``
    no-op ``dvc repro`` (their median is reported; see :func:`noop_runs`)."""
    repo = copy_repo(tmp / f"repo-{n}")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    counts = split_counts(n)
    params["data"]["synthetic"].update(train=counts["Train"], validation=counts["Validation"], test=counts["Test"])
    if zip_path is not None:
        params["data"].update(source="local", path=str(zip_path))
        params["validate"]["max_near_duplicates"] = n
    params["train"].update(epochs=1, fine_tune_epochs=0)
    params["validate"]["min_per_class"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    site_cache = tmp / f"dvc-site-{n}"
    run_measured([*DVC, "config", "--local", "core.site_cache_dir", str(site_cache)], repo)
    measured = {}
    for stage in stages:
        seconds, peak = run_measured([*DVC, "repro", "--single-item", stage], repo)
        measured[stage] = {"seconds": round(seconds, 2), "peak_rss_mib": round(peak)}
    full = sum(s["seconds"] for s in measured.values())
    noop = [run_measured([*DVC, "repro", stages[-1]], repo)[0] for _ in range(noop_runs)]
    shutil.rmtree(site_cache, ignore_errors=True)
    cold_status, _ = run_measured([*DVC, "status", stages[-1]], repo)
    return {
        "images": n,
        "stages": measured,
        "full_run_seconds": round(full, 1),
        "validate_images_per_second": round(n / measured["validate"]["seconds"], 1),
        "noop_repro_seconds_median": round(statistics.median(noop), 2),
        "noop_share_of_full_run": statistics.median(noop) / full,
        "first_run_hashing_seconds (dvc status, hash cache removed)": round(cold_status, 2),
        "disk_mib": {"data": disk_mib(repo / "data"), "dvc_cache": disk_mib(repo / ".dvc" / "cache")},
    }


def noop_runs(args: argparse.Namespace) -> int:
    """Five no-op runs for a median, or one with ``--small`` (a check of the code, not a measurement)."""
    return 1 if args.small else 5


def data_half(args: argparse.Namespace) -> dict:
    """Benchmark 9: download (local zip), validate and preprocess at the Kaggle set's size.

    Near-duplicates are counted, not refused, so that the run measures the cost whatever it finds.
    """
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(args.zip) if args.zip else Path(tmp) / "kaggle-layout.zip"
        made = {"reused": str(zip_path)} if zip_path.exists() else local_zip(args.images, zip_path)
        stages = ("download", "validate", "preprocess")
        run = pipeline_at(args.images, Path(tmp), stages, zip_path, noop_runs=noop_runs(args))
        report = json.loads((Path(tmp) / f"repo-{args.images}" / paths.VALIDATION_REPORT).read_text())
    return {
        "params": vars(args),
        "local_zip": made,
        "run": run,
        "near_duplicates_found": {**report["near_duplicates"], "first": report["near_duplicates"]["first"][:10]},
        "goals": {"full_run_seconds": "<= 600 on 2 cores", "peak_rss_mib": "<= 4096", "noop_repro_seconds": "<= 3"},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="default 20,000 (200,000 with --data-half)")
    parser.add_argument("--also", type=int, default=10000, help="a second size, for the per-image memory slope")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--data-half", action="store_true", help="download, validate, preprocess of a local zip")
    parser.add_argument("--zip", help="--data-half: the local zip to use (written first when it does not exist)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.data_half:
        args.images = 200 if args.small else args.images or 200_000
        result = data_half(args)
        save(args.name or "data_half", result, small=args.small)
        return result
    args.images, args.also = (200, 100) if args.small else (args.images or 20_000, args.also)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [pipeline_at(n, Path(tmp), noop_runs=noop_runs(args)) for n in (args.also, args.images)]
    small, big = runs
    slope = (big["stages"]["train"]["peak_rss_mib"] - small["stages"]["train"]["peak_rss_mib"]) / (
        big["images"] - small["images"]
    )
    # The real run caches 2048 float32 ResNet features per Train+Validation image instead of small_cnn's 128.
    real_feature_mib = (160_000 + 22_598) * 2048 * 4 / 2**20
    estimate = big["stages"]["train"]["peak_rss_mib"] + slope * (160_000 - big["images"]) + real_feature_mib
    result = {
        "params": vars(args),
        "runs": runs,
        "train_peak_rss_mib_per_image": slope,
        "train_peak_at_160k_estimate_mib": round(estimate),
        "estimate_method": "measured train peak at the larger size + measured per-image slope x (160,000 - N) "
        "+ the ResNet50 v2 feature cache (182,598 x 2048 float32)",
        "bench_seconds": round(time.perf_counter() - start),
        "goals": {
            "validate_images_per_second": ">= 1000 on 2 cores",
            "noop_repro_seconds": "<= 3 and <= 5% of a full run",
            "train_peak_at_160k": "<= 16 GiB of host memory",
        },
    }
    save(args.name or "scale", result, small=args.small)
    return result


if __name__ == "__main__":
    main()
