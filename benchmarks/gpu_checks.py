"""GPU checks (run by benchmarks/gpu.sh on a lent GPU machine; `--small` checks the code on a CPU).

1. The float16 graph rewrite (``train.mixed_precision`` on a GPU) against float32 on ``resnet50v2``
   (``small_cnn`` with ``--small``) loaded through ``backbones.load_backbone`` like a Hub handle: feature
   extraction, a phase-2 training step and prediction (delegated to benchmarks.precision).
2. Input starvation: phase-2 step time with the real tf.data input versus in-memory tensors, same model,
   in the chosen precision.
3. The real configuration's train stage (and the rest of the pipeline) on 20,000 synthetic images, in
   both precisions (delegated to benchmarks.rehearsal).
4. The frozen-phase ratio of benchmark 1 at 224 px (delegated to benchmarks.frozen_phase).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import builtin_backbone, save, untrained_classifier
from tests.helpers.repo import BACKBONES


def _model(handle: str, size: int, compute: str):
    """The phase-2 model as train builds it: the top 30 variable groups trainable, uint8 images in."""
    from tasks import backbones, precision
    from tasks.train import _compile

    model = untrained_classifier(backbones.load_backbone(handle, trainable_top=30), size)
    _compile(model, 1e-5, loss_scaling=compute == precision.FLOAT16)
    return model


def throughput(model, data, steps: int, batch: int) -> float:
    """Images per second over ``steps`` training steps after a warm-up epoch."""
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def in_memory(size: int, batch: int):
    import tensorflow as tf

    x = tf.cast(tf.random.uniform((batch, size, size, 3), 0, 256, tf.int32), tf.uint8)
    y = tf.zeros((batch,), tf.int64)
    return tf.data.Dataset.from_tensors((x, y)).repeat()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--images", type=int, default=20000, help="for the rehearsal and the frozen-phase ratio")
    parser.add_argument("--small", action="store_true", help="tiny sizes and small_cnn: a check of the code on a CPU")
    args = parser.parse_args(argv)
    if args.small:
        args.size, args.batch, args.steps, args.images = 64, 8, 2, 32
    import tensorflow as tf

    from benchmarks import frozen_phase, rehearsal
    from benchmarks import precision as precision_bench
    from tasks import backbones, dataset, precision

    small = ["--small"] if args.small else []
    prefix = "smoke_" if args.small else ""  # a --small run never stands in for a GPU figure
    gpus = tf.config.list_physical_devices("GPU")
    compute, why = precision.choose(True)
    result: dict = {"params": vars(args), "gpus": [g.name for g in gpus], "precision": compute, "why": why}
    size, batch = str(args.size), str(args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        # one export at --size (data/backbones) for the checks here (and the full-size rehearsal)
        name, seed = builtin_backbone(args.small)
        handle = backbones.resolve(name, args.size, seed, BACKBONES)
        rates = precision_bench.main(
            ["--size", size, "--batch", batch, "--batches", "20", "--handle", handle]
            + ["--name", prefix + "gpu_precision"]
            + small
        )
        result["rewrite_over_fp32"] = rates["speedup"]
        n = max(args.batch * (args.steps + 2), 64)
        _, processed = frozen_phase.prepare(Path(tmp), n, 2)
        real = dataset.make_dataset(
            dataset.shard_files(processed, "Train"),
            args.size,
            args.batch,
            shuffle_seed=0,
            augmentation={"flip": True, "brightness": 0.1, "seed": 0},
        ).repeat()
        with precision.rewrite(compute):
            model = _model(handle, args.size, compute)
            step_real = args.batch / throughput(model, real, args.steps, args.batch)
            step_mem = args.batch / throughput(model, in_memory(args.size, args.batch), args.steps, args.batch)
        result["step_seconds"] = {"real_input": step_real, "in_memory": step_mem}
        result["input_overhead"] = step_real / step_mem - 1
        serve = ["--serve", handle] if not args.small and args.size == rehearsal.image_size(False) else []
        staged = rehearsal.main(
            (small or ["--images", str(args.images)]) + serve + ["--name", prefix + "gpu_rehearsal"]
        )
    result["train_stage_seconds"] = {c: m["seconds"]["train"] for c, m in staged["measured"].items()}
    frozen = frozen_phase.main(
        ["--images", str(args.images), "--val", str(max(args.images // 10, 16)), "--size", size]
        + ["--repeats", "1", "--mixed-precision", "--name", prefix + "gpu_frozen_phase"]
        + small
    )
    result["frozen_phase_speedup"] = frozen["speedup"]
    result["goals"] = {"rewrite_over_fp32": ">= 1.8 (phase-2 step and feature extraction)", "input_overhead": "<= 0.10"}
    save(prefix + "gpu_checks", result)
    return result


if __name__ == "__main__":
    main()
