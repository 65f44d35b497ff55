"""Benchmark 1: our frozen phase (features once) versus the original notebook recipe.

The original recipe: ImageDataGenerator(rescale=1/255).flow_from_directory, a frozen backbone plus a
softmax head in one model, ``fit`` for 3 epochs with validation every epoch, so every Train and
Validation image is decoded, resized and passed through the backbone every epoch.
Ours: the tf.data input from TFRecord shards, backbone features computed once, the head trained on
the cached features. Same backbone (resnet50v2, random weights), same images, epochs and batch size.

With ``--mixed-precision`` both recipes also run under the graph rewrite that ``train.mixed_precision``
turns on (``tasks.precision``; bfloat16 on this CPU), interleaved with the float32 runs.

    python -m benchmarks.frozen_phase [--images 256 --val 64 --size 128 --epochs 3] [--mixed-precision] [--small]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save
from tests.helpers.repo import BACKBONES


def prepare(root: Path, n_train: int, n_val: int) -> tuple[Path, Path]:
    """JPEG folders for the original recipe and TFRecord shards of the same images for ours."""
    from tasks.params.config import Params
    from tasks.params.data import DataParams, SyntheticParams
    from tasks.params.preprocess import PreprocessParams
    from tasks.params.validate import ValidateParams
    from tasks.stages import run_through

    params = Params(
        data=DataParams(synthetic=SyntheticParams(train=n_train, validation=n_val, test=2)),
        validate=ValidateParams(min_per_class=1, workers=1),
        preprocess=PreprocessParams(shards_per_split=2),
    )
    run_through("preprocess", root, params)
    raw = root / "data" / "raw"
    import zipfile

    with zipfile.ZipFile(raw / "Dataset.zip") as zf:
        zf.extractall(root / "folders")
    return root / "folders" / "Dataset", root / "data" / "processed"


def original_recipe(folders: Path, handle: str, size: int, batch: int, epochs: int) -> tuple[float, float]:
    import tf_keras

    from tasks import backbones

    start = time.perf_counter()  # like ours: from loading the backbone to a trained head
    gen = tf_keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255.0)
    train = gen.flow_from_directory(str(folders / "Train"), target_size=(size, size), batch_size=batch, seed=0)
    val = gen.flow_from_directory(
        str(folders / "Validation"), target_size=(size, size), batch_size=batch, shuffle=False
    )
    model = tf_keras.Sequential(
        [
            tf_keras.Input((size, size, 3)),
            backbones.load_backbone(handle),
            tf_keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=0)
    return time.perf_counter() - start, history.history["val_accuracy"][-1]


def ours(processed: Path, handle: str, size: int, batch: int, epochs: int) -> tuple[float, float]:
    from tasks import backbones, dataset
    from tasks.features import build_extractor, extract
    from tasks.train import _compile, build_head

    start = time.perf_counter()  # the features stage's one pass, then the head
    extractor = build_extractor(backbones.load_backbone(handle), size)
    tr, val = (
        extract(extractor, dataset.make_dataset(dataset.shard_files(processed, split), size, batch, with_meta=True))
        for split in ("Train", "Validation")
    )
    x_tr, y_tr, x_val, y_val = tr.x, tr.y, val.x, val.y
    head = build_head(x_tr.shape[1], 2, 0.0)
    _compile(head, 1e-3)
    history = head.fit(x_tr, y_tr, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch, verbose=0)
    return time.perf_counter() - start, history.history["val_accuracy"][-1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backbone", default="resnet50v2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="a seconds-long check of the code path")
    parser.add_argument(
        "--mixed-precision", action="store_true", help="also both recipes under the reduced-precision rewrite"
    )
    parser.add_argument("--name", default="frozen_phase")
    args = parser.parse_args(argv)
    if args.small:
        args.images, args.val, args.size, args.backbone, args.repeats = 32, 16, 32, "small_cnn", 1
    from tasks import backbones, precision

    computes = [precision.FLOAT32]
    reduced, why = precision.choose(args.mixed_precision)
    if reduced != precision.FLOAT32:
        computes.append(reduced)
    elif args.mixed_precision:
        print(f"--mixed-precision: nothing to compare here ({why})")
    with tempfile.TemporaryDirectory() as tmp:
        folders, processed = prepare(Path(tmp), args.images, args.val)
        handle = str(backbones.export_builtin(args.backbone, args.size, 0, BACKBONES))
        runs: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.repeats):  # interleaved, so every variant sees the same machine load
            for compute in computes:
                suffix = "" if compute == precision.FLOAT32 else f"_{compute}"
                with precision.rewrite(compute):
                    runs.setdefault("original" + suffix, []).append(
                        original_recipe(folders, handle, args.size, args.batch, args.epochs)
                    )
                    runs.setdefault("ours" + suffix, []).append(
                        ours(processed, handle, args.size, args.batch, args.epochs)
                    )
    med = {k: float(np.median([t for t, _ in v])) for k, v in runs.items()}
    result = {
        "params": vars(args),
        "seconds_median": med,
        "speedup": med["original"] / med["ours"],
        "val_accuracy": {k: [round(a, 4) for _, a in v] for k, v in runs.items()},
        "goal": "speedup >= 4 with the same head accuracy within noise",
    }
    if len(computes) > 1:
        # the notebook as it ran (float32) against ours with the rewrite, and both with it
        result["speedup_ours_rewritten"] = med["original"] / med[f"ours_{reduced}"]
        result["speedup_both_rewritten"] = med[f"original_{reduced}"] / med[f"ours_{reduced}"]
    save(args.name, result, small=args.small)
    return result


if __name__ == "__main__":
    main()
