"""Benchmark 10: the real configuration rehearsed on the CPU, extrapolated to the Kaggle set.

``configs/kaggle.yaml`` as it is, except: ``model.handle: resnet50v2`` (the same architecture as the Hub
ResNet50 v2, random weights: the cost is the same, the accuracy is not), a local zip of N synthetic
178x218 JPEGs in the Kaggle layout instead of the Kaggle download, and ``validate.min_per_class: 1``
(the real floor of 1,000 per class needs the real set). Every stage runs through ``dvc repro
--single-item`` in a temporary copy of the repository; train, evaluate and promote run once in float32
and once in the reduced precision ``tasks.precision`` picks here (``train.mixed_precision`` and
``evaluate.mixed_precision`` true).

Each stage's time is divided by the images it handles and multiplied by the Kaggle set's counts:
download, validate and preprocess by all images; train's phase 1 (features once, head epochs) and
phase 2 (fine-tuning epochs with a validation pass each) by Train + Validation, the rest of train
(start-up, export) kept as measured; evaluate by Test + Validation; promote by Test. Start-up costs are
scaled with the images, so the extrapolation errs high.

    python -m benchmarks.rehearsal [--images 2000] [--small]
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import yaml

from benchmarks.common import REPO, run_measured, save
from benchmarks.scale import DVC, local_zip, split_counts
from tasks import precision
from tests.helpers.repo import copy_repo

KAGGLE = {"Train": 160_000, "Validation": 22_598, "Test": 20_001}  # the real set's splits
DATA_STAGES = ("download", "validate", "preprocess")
MODEL_STAGES = ("train", "evaluate", "promote")


def images_handled(counts: dict[str, int]) -> dict[str, int]:
    """What each stage's (or phase's) time is divided by."""
    total = sum(counts.values())
    seen = counts["Train"] + counts["Validation"]
    return {
        "download": total,
        "validate": total,
        "preprocess": total,
        "phase1": seen,
        "phase2": seen,
        "evaluate": counts["Test"] + counts["Validation"],
        "promote": counts["Test"],
    }


def phase_seconds(log: str) -> dict[str, float]:
    """The train stage's own timing of its phases ("phase 1 took 12.3 s")."""
    found = {f"phase{n}": float(s) for n, s in re.findall(r"phase (\d) took ([\d.]+) s", log)}
    return {"phase1": found["phase1"], "phase2": found.get("phase2", 0.0)}


def extrapolate(seconds: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
    """Seconds per stage at the Kaggle set's size; ``train`` = phase1 + phase2 + the unscaled rest."""
    ours, real = images_handled(counts), images_handled(KAGGLE)
    out = {k: seconds[k] / ours[k] * real[k] for k in seconds if k in ours}
    if "train" in seconds:
        out["train"] = out["phase1"] + out["phase2"] + seconds["train"] - seconds["phase1"] - seconds["phase2"]
    return {k: round(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--small", action="store_true", help="64 px, 60 images, 1 + 1 epochs: a check of the code")
    parser.add_argument("--name", default="rehearsal")
    args = parser.parse_args(argv)
    params = yaml.safe_load((REPO / "configs" / "kaggle.yaml").read_text())
    params["model"]["handle"] = "resnet50v2"
    params["validate"]["min_per_class"] = 1
    if args.small:
        args.images = 60
        params["model"]["image_size"] = 64
        params["train"].update(epochs=1, fine_tune_epochs=1, batch_size=16)
        params["evaluate"]["bootstrap_samples"] = params["promote"]["bootstrap_samples"] = 100
    counts = split_counts(args.images)
    train_params = {k: v for k, v in params["train"].items() if k != "mixed_precision"}  # both are run
    reduced, why = precision.choose(True)
    measured: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        params["data"].update(source="local", path=str(Path(tmp) / "kaggle-layout.zip"))
        zip_made = local_zip(args.images, Path(params["data"]["path"]))
        log = Path(tmp) / "stage.log"
        shared: dict[str, float] = {}
        for compute, mixed in [(precision.FLOAT32, False)] + [(reduced, True)] * (reduced != precision.FLOAT32):
            params["train"]["mixed_precision"] = params["evaluate"]["mixed_precision"] = mixed
            (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            seconds, peaks = dict(shared), {}
            for stage in MODEL_STAGES if shared else DATA_STAGES + MODEL_STAGES:
                seconds[stage], peaks[stage] = run_measured([*DVC, "repro", "--single-item", stage], repo, log=log)
                if stage == "train":
                    seconds.update(phase_seconds(log.read_text()))
            seconds = {k: round(v, 1) for k, v in seconds.items()}  # what the extrapolation is computed from
            shared = {k: seconds[k] for k in DATA_STAGES}
            measured[compute] = {
                "seconds": seconds,
                "seconds_per_image": {
                    k: round(seconds[k] / n, 5) for k, n in images_handled(counts).items() if k in seconds
                },
                "peak_rss_mib": {k: round(v) for k, v in peaks.items()},
                "kaggle_scale_seconds": extrapolate(seconds, counts),
            }
    f32, low = (measured[c]["kaggle_scale_seconds"] for c in (precision.FLOAT32, reduced))  # the same without bf16
    result = {
        "params": {**vars(args), "image_size": params["model"]["image_size"], "train": train_params},
        "counts": counts,
        "kaggle_counts": KAGGLE,
        "local_zip": zip_made,
        "reduced_precision": reduced,
        "why": why,
        "measured": measured,
        "speedup_at_kaggle_scale": {k: round(f32[k] / low[k], 3) for k in ("phase1", "phase2", "evaluate")},
    }
    save(args.name, result)
    return result


if __name__ == "__main__":
    main()
