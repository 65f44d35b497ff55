"""Prediction with the exported model: ``python -m flows.predict PATH... [--model DIR] [--json]``.

The same code is the Prefect flow ``batch-predict`` (deployed by flows/serve.py and prefect.yaml).

PATH may be image files or folders (searched recursively for .jpg/.jpeg/.png). Each image is
decoded and resized by the same function as in training, and the model (rescaling inside) gives
the probabilities; labels come from the model's own class_names.json. A file that cannot be read
gets an error line and the rest are still predicted; the exit code is 1 if any file failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks import dataset, paths
from tasks.files import setup_logging
from tasks.inference import LoadedModel, load_model
from tasks.params import ValidateParams

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
INBOX = "data/inbox"  # where the scheduled batch-prediction deployment looks for images
PREDICTIONS_OUT = "data/predictions/latest.json"
MAX_PIXELS = ValidateParams().max_pixels  # the same decompression-bomb bound as validation
BATCH = 64


def expand(inputs: Iterable[Path]) -> list[Path]:
    """Files as given; folders replaced by the images inside them, sorted."""
    files: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()))
        else:
            files.append(p)
    return files


def _load_image(path: Path, image_size: int, max_pixels: int) -> Any:
    """Decode and resize like training; an image whose header declares too many pixels is refused."""
    import io

    import tensorflow as tf
    from PIL import Image, UnidentifiedImageError

    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise OSError(0, f"{img.width}x{img.height} exceeds {max_pixels} pixels; not decoded")
    except Image.DecompressionBombError as exc:
        raise OSError(0, f"refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        pass  # not an image Pillow knows: TensorFlow's decoder gives the error
    return dataset.decode_and_resize(tf.constant(data), image_size)


def predict_files(files: list[Path], model: LoadedModel, max_pixels: int = MAX_PIXELS) -> list[dict[str, Any]]:
    """One result per file: ``{path, label, probability, probabilities}`` or ``{path, error}``."""
    import numpy as np
    import tensorflow as tf

    results: list[dict[str, Any]] = [{"path": str(f)} for f in files]
    pending: list[tuple[int, Any]] = []

    def flush() -> None:
        if not pending:
            return
        probs = model.predict(np.stack([img for _, img in pending]))
        for (i, _), p in zip(pending, probs):
            k = int(p.argmax())
            results[i].update(label=model.class_names[k], probability=float(p[k]),
                              probabilities={n: float(v) for n, v in zip(model.class_names, p)})
        pending.clear()

    for i, path in enumerate(files):
        try:
            pending.append((i, _load_image(path, model.image_size, max_pixels).numpy()))
        except (OSError, tf.errors.OpError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", exc.message)
            results[i]["error"] = f"cannot read this image ({reason})"
        if len(pending) == BATCH:
            flush()
    flush()
    return results


@flow(name="batch-predict", log_prints=True)
def batch_predict(inputs: list[str], model: str = paths.MODEL_DIR, output: str = PREDICTIONS_OUT) -> dict[str, int]:
    """Predict every image under ``inputs`` and write the results as JSON to ``output``.

    The scheduled deployment points this at an inbox folder; an empty inbox is not an error.
    """
    files = expand(map(Path, inputs))
    if not files:
        print(f"no images in {', '.join(inputs)}; nothing to predict")
        return {"images": 0, "failed": 0}
    results = predict_files(files, load_model(Path(model)))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(out)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"{r['path']}: error: {r['error']}")
    counts: dict[str, int] = {}
    for r in results:
        counts[r.get("label", "error")] = counts.get(r.get("label", "error"), 0) + 1
    create_table_artifact(key="batch-predictions", table=[{"label": k, "images": v} for k, v in sorted(counts.items())],
                          description=f"Predictions written to {out}")
    print(f"{len(results) - len(failed)} predicted, {len(failed)} failed; results in {out}")
    return {"images": len(results), "failed": len(failed)}


def main(argv: list[str] | None = None) -> int:
    """Print one line per image (path, label, probability); return 1 if any file failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--model", type=Path, default=Path(paths.MODEL_DIR), help="exported model folder")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    args = parser.parse_args(argv)
    setup_logging()
    files = expand(args.inputs)
    if not files:
        print("error: no images found in " + ", ".join(map(str, args.inputs)), file=sys.stderr)
        return 1
    results = predict_files(files, load_model(args.model))
    if args.json:
        print(json.dumps(results, indent=2))
    for r in results:
        if "error" in r:
            print(f"{r['path']}: error: {r['error']}", file=sys.stderr)
        elif not args.json:
            print(f"{r['path']}\t{r['label']}\t{r['probability']:.4f}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    from tasks.cli import run_cli

    run_cli(lambda: sys.exit(main()))
