"""Benchmark 10 (`make rehearse`): the real configuration rehearsed on the CPU, extrapolated to the Kaggle set.

``configs/kaggle.yaml`` as it is, except where its two hosts point: the Kaggle dataset comes from a
loopback fake of the Kaggle API through the real ``kaggle`` client (N synthetic 178x218 JPEGs in the
Kaggle layout, under the real slug), and the backbone is the built-in ``resnet50v2`` (the same
architecture as the Hub ResNet50 v2, random weights: the cost is the same, the accuracy is not),
served under the config's ``kaggle:`` handle by the same fake's Kaggle Models API to the real
``kagglehub`` (or, for a TF Hub URL handle, as a ``.tar.gz`` by a loopback Hub fake to tensorflow_hub's
real resolver); ``--small`` serves the demo's built-in ``small_cnn`` instead (a check of the code, in
a third of the time). Each rehearsal gives the clients a fresh cache, as a first real run has: the
handle names the real model, so a shared cache would hand it whatever an earlier rehearsal served.
One more change:
``validate.min_per_class: 1`` (the real floor of 1,000 per class needs the real set). Every stage runs
through ``dvc repro --single-item`` in a temporary copy of the repository; features, audit, train,
evaluate and the gate run once in float32 and once in the reduced precision ``tasks.precision`` picks
here (``train.mixed_precision`` and ``evaluate.mixed_precision`` true).

Each stage's time is divided by the images it handles and multiplied by the Kaggle set's counts:
download, validate, preprocess, features (every image through the backbone once) and the audit by
all images; train's phase 1 (the head's epochs on the features) and
phase 2 (fine-tuning epochs with a validation pass each) by Train + Validation, the rest of train
(start-up, backbone download, export) kept as measured; evaluate by Test + Validation; the gate by Test.
Start-up costs are scaled with the images, so the extrapolation errs high.

    python -m benchmarks.rehearsal [--images 2000] [--serve SAVEDMODEL_FOLDER] [--small]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from benchmarks.common import REPO, builtin_backbone, run_measured, save
from benchmarks.scale import DVC, local_zip, split_counts
from tasks import precision
from tasks.cli import setup
from tasks.params.model import KAGGLE_PREFIX
from tests.helpers import hub_fake, kaggle_fake
from tests.helpers.repo import BACKBONES, copy_repo

KAGGLE_CONFIG = REPO / "configs" / "kaggle.yaml"
WORK = ".rehearsal"  # the temporary copy of the repository, the fakes' files and fresh client caches
KAGGLE = {"Train": 160_000, "Validation": 22_598, "Test": 20_001}  # the real set's splits
DATA_STAGES = ("download", "validate", "preprocess")
MODEL_STAGES = ("features", "audit", "train", "evaluate", "gate")  # features runs in the precision asked
FAKE_CREDENTIALS = ("rehearsal", "a-key-only-the-fake-knows")  # no real credentials are read or sent
NOT_PASSED = (
    *("KAGGLE_API_TOKEN", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "TFHUB_CACHE_DIR", "KAGGLEHUB_CACHE"),
)
PROVES = (
    "configs/kaggle.yaml's stages end to end with `dvc repro`: its thresholds (but min_per_class), shards, epochs",
    "the download through the real kaggle client (under the real slug), to data/raw with its sha256",
    "the backbone through its real client (kagglehub for kaggle:, tensorflow_hub's resolver for a URL), cached, hashed",
    "two-phase training of the served backbone, its top 30 layers unfrozen, in float32 (and bfloat16 if any)",
    "time and peak memory per stage, extrapolated per image to the Kaggle set's size",
)
CANNOT = (
    "the accuracy: the served backbone is not the Hub's trained ResNet, and the faces are drawn, not photographed",
    "the GPU: its speed, memory and float16 rewrite (benchmarks/gpu.sh on a GPU machine)",
    "Kaggle's and Kaggle Models' own servers: your credentials, their rate limits, how long a signed URL lasts",
)


def image_size(small: bool) -> int:
    """The image side the rehearsal runs at: the real configuration's, or 64 px with ``--small``."""
    return 64 if small else yaml.safe_load(KAGGLE_CONFIG.read_text())["model"]["image_size"]


def images_handled(counts: dict[str, int]) -> dict[str, int]:
    """What each stage's (or phase's) time is divided by."""
    total = sum(counts.values())
    seen = counts["Train"] + counts["Validation"]
    return {
        "download": total,
        "validate": total,
        "preprocess": total,
        "features": total,
        "audit": total,
        "phase1": seen,
        "phase2": seen,
        "evaluate": counts["Test"] + counts["Validation"],
        "gate": counts["Test"],
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


def builtin_served(small: bool, image_size: int) -> tuple[str, str]:
    """The SavedModel folder served unless ``--serve`` names one, and what it is: resnet50v2 (random
    weights), or with ``--small`` the demo's pretrained small_cnn (one export for the demo, the suite and this)."""
    from tasks import backbones

    name, seed = builtin_backbone(small)
    what = f"built-in {name}" + ("" if small else " (random weights)")
    return str(backbones.export_builtin(name, image_size, seed, BACKBONES)), what


@contextlib.contextmanager
def fake_hosts(tmp: Path, params: dict, images: int, served: str) -> Iterator[tuple[dict[str, str], dict]]:
    """Serve the Kaggle set (``images`` synthetic JPEGs under ``params``' slug) and the backbone (the
    SavedModel folder ``served``) on loopback:
    a ``kaggle:`` handle from the same Kaggle fake (Kaggle Models, the handle unchanged), a URL from the
    Hub fake (``model.handle`` pointed at it). Yield the environment for the stages (the real clients
    pointed at their fakes, with the fake's credentials only, and fresh caches under ``tmp``) and the zip's size."""
    made = local_zip(images, tmp / "kaggle-layout.zip")
    handle = params["model"]["handle"]
    with contextlib.ExitStack() as hosts:
        kaggle = hosts.enter_context(
            kaggle_fake.serve(params["data"]["kaggle_dataset"], tmp / "kaggle-layout.zip", *FAKE_CREDENTIALS)
        )
        if handle.startswith(KAGGLE_PREFIX):
            kaggle.add_model(handle.removeprefix(KAGGLE_PREFIX), Path(served))
        else:
            params["model"]["handle"] = hosts.enter_context(hub_fake.serve(Path(served))).url
        env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
        env.update(kaggle_fake.client_env(kaggle, *FAKE_CREDENTIALS), KAGGLE_CONFIG_DIR=str(tmp / "kaggle-config"))
        env.update(KAGGLEHUB_CACHE=str(tmp / "kagglehub"), TFHUB_CACHE_DIR=str(tmp / "tfhub"))
        env.update(no_proxy="127.0.0.1", NO_PROXY="127.0.0.1")  # the Hub fake directly, Kaggle through its proxy
        yield env, made


def summary(result: dict) -> str:
    """Per stage: seconds and peak memory measured, and seconds at the Kaggle set's size (none for a smoke
    run: its few images say nothing of that); then what it proves."""
    images = sum(result["counts"].values())
    scaled = "kaggle_scale_seconds" in next(iter(result["measured"].values()))
    head = f"extrapolated to {sum(KAGGLE.values())}" if scaled else "a smoke run (--small): no extrapolation"
    lines = [f"rehearsal on {images} images, {head}:"]
    for compute, m in result["measured"].items():
        lines.append(f"  {compute}:")
        for stage, seconds in m["seconds"].items():
            peak = m["peak_rss_mib"].get(stage)
            at_scale = (
                f"  -> {m['kaggle_scale_seconds'].get(stage, 0) / 60:7.1f} min at the Kaggle size" if scaled else ""
            )
            lines.append(f"    {stage:<10} {seconds:8.1f} s{f'  {peak:6d} MiB' if peak else ' ' * 12}{at_scale}")
    lines += ["It ran:", *(f"  - {x}" for x in PROVES), "It cannot tell:", *(f"  - {x}" for x in CANNOT)]
    return "\n".join(lines)


@contextlib.contextmanager
def work_folder() -> Iterator[Path]:
    """The rehearsal's temporary folder (``.rehearsal/`` in the repository, git-ignored), removed on any exit:
    also on SIGTERM, and, after a SIGKILL, at the next start."""
    folder = REPO / WORK
    shutil.rmtree(folder, ignore_errors=True)  # what a killed rehearsal left
    folder.mkdir()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so that this cleans up
    try:
        yield folder
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(folder, ignore_errors=True)


def measure_both(repo: Path, env: dict, params: dict, reduced: str, counts: dict, small: bool) -> dict[str, dict]:
    """Each stage's time and peak memory through ``dvc repro`` in float32, then the model stages in ``reduced``
    precision (if any), with a line per stage as it starts and ends; extrapolated unless ``small``."""
    log, measured, shared = repo.parent / "stage.log", {}, {}
    handled = images_handled(counts)
    for compute, mixed in [(precision.FLOAT32, False)] + [(reduced, True)] * (reduced != precision.FLOAT32):
        params["train"]["mixed_precision"] = params["evaluate"]["mixed_precision"] = mixed
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        seconds, peaks = dict(shared), {}
        for stage in MODEL_STAGES if shared else DATA_STAGES + MODEL_STAGES:
            print(f"rehearsal: {stage} ({compute}) ...", flush=True)
            seconds[stage], peaks[stage] = run_measured([*DVC, "repro", "--single-item", stage], repo, env=env, log=log)
            print(f"rehearsal: {stage} ({compute}) {seconds[stage]:.1f} s, peak {peaks[stage]:.0f} MiB", flush=True)
            if stage == "train":
                seconds.update(phase_seconds(log.read_text()))
        seconds = {k: round(v, 1) for k, v in seconds.items()}  # what the extrapolation is computed from
        shared = {k: seconds[k] for k in DATA_STAGES}
        measured[compute] = {
            "seconds": seconds,
            "seconds_per_image": {k: round(seconds[k] / n, 5) for k, n in handled.items() if k in seconds},
            "peak_rss_mib": {k: round(v) for k, v in peaks.items()},
            **({} if small else {"kaggle_scale_seconds": extrapolate(seconds, counts)}),
        }
    return measured


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument(
        "--small", action="store_true", help="64 px, 60 images, 1 + 1 epochs, small_cnn served: a check of the code"
    )
    parser.add_argument(
        "--serve", help="a SavedModel folder for the Hub fake to serve (default: resnet50v2; small_cnn with --small)"
    )
    parser.add_argument("--name", default="rehearsal")
    args = parser.parse_args(argv)
    setup()  # TensorFlow's start-up lines silenced here too (the fakes export and serve a SavedModel)
    params = yaml.safe_load(KAGGLE_CONFIG.read_text())
    params["validate"]["min_per_class"] = 1
    params["model"]["image_size"] = image_size(args.small)
    if args.small:
        args.images = 60
        params["train"].update(epochs=1, fine_tune_epochs=1, batch_size=16)
        params["evaluate"]["bootstrap_samples"] = params["gate"]["bootstrap_samples"] = 100
    counts = split_counts(args.images)
    train_params = {k: v for k, v in params["train"].items() if k != "mixed_precision"}  # both are run
    reduced, why = precision.choose(True)
    served, what = (args.serve, args.serve) if args.serve else builtin_served(args.small, params["model"]["image_size"])
    with (
        work_folder() as tmp,
        fake_hosts(tmp, params, args.images, served) as (env, zip_made),
    ):
        measured = measure_both(copy_repo(tmp / "repo"), env, params, reduced, counts, args.small)
    result = {
        "params": {**vars(args), "image_size": params["model"]["image_size"], "train": train_params},
        "counts": counts,
        "kaggle_counts": KAGGLE,
        "served_zip": zip_made,
        "backbone": f"{what} served as {params['model']['handle']} on loopback",
        "reduced_precision": reduced,
        "why": why,
        "measured": measured,
    }
    if not args.small:
        f32, low = (measured[c]["kaggle_scale_seconds"] for c in (precision.FLOAT32, reduced))  # the same without bf16
        result["speedup_at_kaggle_scale"] = {k: round(f32[k] / low[k], 3) for k in ("features", "phase2", "evaluate")}
    save(args.name, result, small=args.small)
    print(summary(result))
    return result


if __name__ == "__main__":
    main()
