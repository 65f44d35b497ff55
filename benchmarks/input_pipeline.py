"""Benchmark 2: our tf.data input versus ImageDataGenerator.flow_from_directory.

Both read the same synthetic 178x218 JPEGs and produce batches of 32 images at 224 px (ours from
the TFRecord shards preprocess writes, ImageDataGenerator from the folder). The bound is a bare
decode+resize loop (Pillow) over all cores in a process pool.

    python -m benchmarks.input_pipeline [--images 2000] [--small]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
from pathlib import Path

from benchmarks.common import median_time, save
from benchmarks.frozen_phase import prepare

SIZE, BATCH = 224, 32


def _decode_resize(path: str) -> int:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR).size[0]


def bare_loop(files: list[str]) -> int:
    with multiprocessing.get_context("spawn").Pool(os.cpu_count()) as pool:
        return len(pool.map(_decode_resize, files, chunksize=64))


def ours(processed: Path) -> int:
    from tasks import dataset

    n = 0
    for images, _ in dataset.make_dataset(dataset.shard_files(processed, "Train"), SIZE, BATCH):
        n += int(images.shape[0])
    return n


def image_data_generator(folder: Path, count: int) -> int:
    import tf_keras

    gen = tf_keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255.0)
    flow = gen.flow_from_directory(str(folder), target_size=(SIZE, SIZE), batch_size=BATCH, shuffle=False)
    n = 0
    for _ in range(len(flow)):
        n += len(next(flow)[0])
    assert n == count
    return n


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--name", default="input_pipeline")
    args = parser.parse_args(argv)
    if args.small:
        args.images, args.repeats = 64, 1
    with tempfile.TemporaryDirectory() as tmp:
        folders, processed = prepare(Path(tmp), args.images, 2)
        files = [str(p) for p in sorted((folders / "Train").rglob("*.jpg"))]
        ours(processed)  # warm-up: TensorFlow start-up is not input cost
        seconds = {}
        for _ in range(args.repeats):
            for name, fn in (
                ("ours_tf_data", lambda: ours(processed)),
                ("image_data_generator", lambda: image_data_generator(folders / "Train", args.images)),
                ("bare_decode_resize_all_cores", lambda: bare_loop(files)),
            ):
                t, n = median_time(fn, 1)
                assert n == args.images, (name, n)
                seconds.setdefault(name, []).append(t)
    import statistics

    rate = {k: args.images / statistics.median(v) for k, v in seconds.items()}
    result = {
        "params": vars(args),
        "images_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ours_vs_image_data_generator": rate["ours_tf_data"] / rate["image_data_generator"],
        "ours_share_of_bare_loop": rate["ours_tf_data"] / rate["bare_decode_resize_all_cores"],
        "goal": "on the CPU, ours not slower than ImageDataGenerator (ratio >= 1)",
    }
    save(args.name, result, small=args.small)
    return result


if __name__ == "__main__":
    main()
