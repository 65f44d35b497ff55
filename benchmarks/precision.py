"""Reduced precision (TensorFlow's graph rewrite) against float32, side by side in one process.

On ``resnet50v2`` (random weights, loaded through ``backbones.load_backbone`` like a Hub handle) at
224 px, batch 32, three measurements per precision, interleaved (float32, reduced, float32, ...):

* feature extraction: the frozen backbone's forward pass (phase 1, and what evaluate and predict run);
* a phase-2 training step: backbone unfrozen + softmax head, one optimizer step per batch;
* prediction with the exported-model path: backbone + head forward (evaluate, flows.predict).

The reduced precision is what ``tasks.precision.choose(True)`` picks here (bfloat16 on a CPU with
bfloat16 instructions, float16 on a GPU). Each function is traced afresh inside its precision's
rewrite, warmed up once, then timed.

    python -m benchmarks.precision [--size 224 --batches 3] [--handle FOLDER] [--small]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save
from tasks import backbones, precision


def rates(handle: str, size: int, batch: int, batches: int, compute: str) -> dict[str, float]:
    """Images per second of each workload in ``compute`` precision."""
    import tensorflow as tf
    import tf_keras

    images = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3)).astype("float32")
    labels = np.arange(batch) % 2
    out = {}
    with precision.rewrite(compute):
        frozen = backbones.load_backbone(handle)
        extract = tf.function(lambda x: frozen(x, training=False))
        tunable = backbones.load_backbone(handle, trainable_top=0)
        model = tf_keras.Sequential([tf_keras.Input((size, size, 3)), tunable, tf_keras.layers.Dense(2, "softmax")])
        optimizer = tf_keras.optimizers.Adam(1e-5)
        if compute == precision.FLOAT16:
            optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        predict = tf.function(lambda x: model(x, training=False))
        for name, step in (
            ("feature_extraction", lambda: extract(images).numpy()),
            ("phase2_train_step", lambda: model.train_on_batch(images, labels)),
            ("prediction", lambda: predict(images).numpy()),
        ):
            step()  # trace and warm up
            start = time.perf_counter()
            for _ in range(batches):
                step()
            out[name] = batches * batch / (time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--handle", default="resnet50v2", help="built-in (exported at --size) or a folder")
    parser.add_argument("--small", action="store_true", help="64 px, batch 8, 1 batch, 1 repeat (a smoke test)")
    parser.add_argument("--name", default="precision")
    args = parser.parse_args(argv)
    if args.small:
        args.size, args.batch, args.batches, args.repeats = 64, 8, 1, 1
    reduced, why = precision.choose(True)
    with tempfile.TemporaryDirectory() as tmp:
        handle = backbones.resolve(args.handle, args.size, 0, Path(tmp))
        runs: dict[str, list[dict[str, float]]] = {precision.FLOAT32: [], reduced: []}
        for _ in range(args.repeats):
            for compute in runs:  # interleaved
                runs[compute].append(rates(handle, args.size, args.batch, args.batches, compute))
    medians = {c: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]} for c, rs in runs.items()}
    result = {
        "params": vars(args),
        "reduced_precision": reduced,
        "why": why,
        "images_per_second_median": medians,
        "speedup": {
            k: round(medians[reduced][k] / medians[precision.FLOAT32][k], 3) for k in medians[precision.FLOAT32]
        },
    }
    save(args.name, result, small=args.small)
    return result


if __name__ == "__main__":
    main()
