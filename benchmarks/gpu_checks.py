"""GPU checks (run by benchmarks/gpu.sh on a lent GPU machine; `--small` checks the code on a CPU).

1. ResNet50V2 training throughput, float32 versus mixed precision (mixed_float16), on in-memory tensors.
2. Input starvation: step time with the real tf.data input versus in-memory tensors, same model.
3. The frozen-phase ratio of benchmark 1 at 224 px (delegated to benchmarks.frozen_phase).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import save


def _model(size: int, policy: str):
    import tf_keras

    tf_keras.mixed_precision.set_global_policy(policy)
    base = tf_keras.applications.ResNet50V2(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    out = tf_keras.layers.Dense(2, activation="softmax", dtype="float32")(base.output)
    model = tf_keras.Model(base.input, out)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    return model


def throughput(model, data, steps: int, batch: int) -> float:
    """Images per second over ``steps`` training steps after a warm-up epoch."""
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def in_memory(size: int, batch: int):
    import tensorflow as tf

    x = tf.random.uniform((batch, size, size, 3), 0, 1)
    y = tf.zeros((batch,), tf.int64)
    return tf.data.Dataset.from_tensors((x, y)).repeat()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--images", type=int, default=20000, help="for the frozen-phase ratio")
    parser.add_argument("--small", action="store_true", help="tiny sizes, to check the code on a CPU")
    args = parser.parse_args(argv)
    if args.small:
        args.size, args.batch, args.steps, args.images = 64, 8, 2, 32
    import tensorflow as tf
    import tf_keras

    from benchmarks import frozen_phase
    from tasks import dataset

    gpus = tf.config.list_physical_devices("GPU")
    result: dict = {"params": vars(args), "gpus": [g.name for g in gpus]}
    rates = {}
    for policy in ("float32", "mixed_float16"):
        rates[policy] = throughput(_model(args.size, policy), in_memory(args.size, args.batch), args.steps, args.batch)
    result["resnet50v2_train_images_per_second"] = {k: round(v, 1) for k, v in rates.items()}
    result["mixed_over_fp32"] = rates["mixed_float16"] / rates["float32"]

    with tempfile.TemporaryDirectory() as tmp:
        n = max(args.batch * (args.steps + 2), 64)
        _, processed = frozen_phase.prepare(Path(tmp), n, 2)
        real = dataset.make_dataset(
            dataset.shard_files(processed, "Train"),
            args.size,
            args.batch,
            shuffle_seed=0,
            augmentation={"flip": True, "brightness": 0.1, "seed": 0},
        )
        real = real.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y)).repeat()
        model = _model(args.size, "mixed_float16" if gpus else "float32")
        step_real = args.batch / throughput(model, real, args.steps, args.batch)
        step_mem = args.batch / throughput(model, in_memory(args.size, args.batch), args.steps, args.batch)
    tf_keras.mixed_precision.set_global_policy("float32")
    result["step_seconds"] = {"real_input": step_real, "in_memory": step_mem}
    result["input_overhead"] = step_real / step_mem - 1
    frozen = frozen_phase.main(
        [
            "--images",
            str(args.images),
            "--val",
            str(max(args.images // 10, 16)),
            "--size",
            str(args.size),
            "--repeats",
            "1",
            "--name",
            "gpu_frozen_phase",
        ]
        + (["--small"] if args.small else [])
    )
    result["frozen_phase_speedup"] = frozen["speedup"]
    result["goals"] = {"mixed_over_fp32": ">= 1.8", "input_overhead": "<= 0.10"}
    save("gpu_checks" if not args.small else "smoke_gpu_checks", result)
    return result


if __name__ == "__main__":
    main()
