"""Benchmark 5: prediction throughput of flows.predict over a folder of images.

Two models: the demo model (small_cnn at the demo size) and a resnet50v2 classifier at 224 px (random
weights; the cost is what matters), the latter also with ``--mixed-precision`` (the reduced precision
``tasks.precision`` picks here, when there is one). Reported: the whole command (start-up and model load included)
and the in-process prediction rate. Also ``--detect-faces`` on 640x480 photos with one pasted face
each (the demo model): in-process photos per second, against plain prediction of the same photos.
``--small`` (40 images) runs the second model on small_cnn at 64 px too: a check of the code.

    python -m benchmarks.predict [--images 1000] [--small]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, builtin_backbone, run_measured, save, synthetic_folder, untrained_classifier
from tasks.params.model import ModelParams
from tests.helpers.repo import BACKBONES


def export_untrained(backbone: str, size: int, seed: int, out: Path) -> Path:
    """A classifier with ``backbone`` (built-in, at ``size`` px and ``seed``) exported exactly as the train stage
    exports one; its head is untrained."""
    from tasks import backbones
    from tasks.train import export

    layer = backbones.load_backbone(str(backbones.export_builtin(backbone, size, seed, BACKBONES)))
    export(untrained_classifier(layer, size), size, ["Female", "Male"], out)
    return out


def face_detection(model_dir: Path, folder: Path, count: int) -> dict:
    """Photos per second with and without ``--detect-faces`` (same photos, same model, in process)."""
    from flows.predict import predict_files
    from tasks import synthetic
    from tasks.inference import load_model

    folder.mkdir()
    files = []
    for k, (photo, _, _) in enumerate(synthetic.photos(count, seed=7)):
        files.append(folder / f"{k:04d}.jpg")
        photo.save(files[-1], quality=90)
    model = load_model(model_dir)
    seconds = {}
    for detect in (False, True, False, True):  # interleaved; the second of each is kept (warm)
        start = time.perf_counter()
        out = predict_files(files, model, detect_faces=detect)
        seconds[detect] = time.perf_counter() - start
    found = sum(len(r["faces"]) for r in out)
    return {
        "photos": count,
        "photo_size": "640x480",
        "faces_found": found,
        "detect_faces_photos_per_second": round(count / seconds[True], 1),
        "whole_photo_photos_per_second": round(count / seconds[False], 1),
        "detection_cost_ratio": round(seconds[True] / seconds[False], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--name", default="predict")
    args = parser.parse_args(argv)
    if args.small:
        args.images = 40
    from flows.predict import expand, predict_files
    from tasks import precision
    from tasks.inference import load_model

    reduced, _ = precision.choose(True)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic_folder(Path(tmp) / "in", args.images)
        # params.yaml's size (tests/code/test_params.py holds it equal) and builtin_backbone's demo seed:
        # the demo's pretrained backbone
        (demo_backbone, demo_seed), demo_size = builtin_backbone(small=True), ModelParams().image_size
        demo = f"demo {demo_backbone} {demo_size}px"
        (backbone, seed), size = builtin_backbone(args.small), 64 if args.small else 224
        big = f"{backbone} {size}px"
        models = {
            demo: export_untrained(demo_backbone, demo_size, demo_seed, Path(tmp) / "m1"),
            big: export_untrained(backbone, size, seed, Path(tmp) / "m2"),
        }
        runs = [(name, model_dir, precision.FLOAT32) for name, model_dir in models.items()]
        if reduced != precision.FLOAT32:  # the second classifier again, with --mixed-precision
            runs.append((f"{big} {reduced}", models[big], reduced))
        for name, model_dir, compute in runs:
            flag = ["--mixed-precision"] if compute != precision.FLOAT32 else []
            wall, peak = run_measured(
                [sys.executable, "-m", "flows.predict", str(folder), "--model", str(model_dir), *flag], REPO
            )
            files = expand([folder])
            with precision.rewrite(compute):  # as flows.predict --mixed-precision runs it
                model = load_model(model_dir)
                start = time.perf_counter()
                out = predict_files(files, model)
                seconds = time.perf_counter() - start
            assert len(out) == args.images and not any("error" in r for r in out)
            results[name] = {
                "command_seconds": round(wall, 2),
                "command_images_per_second": round(args.images / wall, 1),
                "in_process_images_per_second": round(args.images / seconds, 1),
                "peak_rss_mib": round(peak),
            }
        results["face detection"] = face_detection(models[demo], Path(tmp) / "photos", max(10, args.images // 10))
    result = {"params": vars(args), "models": results}
    save(args.name, result, small=args.small)
    return result


if __name__ == "__main__":
    main()
