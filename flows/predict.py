"""Prediction with the production model: ``python -m flows.predict PATH... [--model DIR] [--detect-faces] [--json]``.

The same code is the Prefect flow ``batch-predict`` (deployed by flows/serve.py and prefect.yaml).

PATH may be image files or folders (searched recursively for .jpg/.jpeg/.png). Each image is
decoded and resized by the same function as in training, and the model (rescaling inside) gives
the probabilities; labels come from the model's own class_names.json. A file that cannot be read,
or a blank image (one colour), gets an error line and the rest are still predicted; the exit code
is 1 if any file failed. The model is the production one (``models/production/model``: the registry's
``model`` at stage ``prod``, fetched through DVC when the registry changed; ``tasks.registry``) unless
``--model`` names another export.

It names the model it used on stderr (its folder and export hash), and prints tab-separated lines under a
header (``path``, ``label``, ``probability`` of that label; with faces, ``face`` too), or JSON with ``--json``.

The model expects aligned face crops like its training images. For whole photos,
``--detect-faces`` finds the faces (tasks/faces.py), cuts each with the training margins and
prints one line per face with its box; a photo without a face says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow
from prefect.artifacts import create_table_artifact

from tasks import dataset, faces, images, paths, precision, quiet, registry
from tasks.cli import run_cli, setup
from tasks.errors import StageError, shown
from tasks.faces import Face
from tasks.files import tree_hash
from tasks.inference import LoadedModel, load_model
from tasks.params import config
from tasks.params.validate import ValidateParams
from tasks.quiet import add_verbose_flag

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
BLANK_STD = 2.0  # an image whose pixels vary less than this (0-255 scale) is blank: refused
BATCH = 64


def project_limits(params_file: Path = Path(paths.PARAMS_FILE)) -> ValidateParams:
    """The ``validate`` section (its ``max_pixels`` and ``max_file_mb`` bound what predict reads).

    In the repository (where ``params.yaml`` is) the project's values apply; elsewhere the defaults.
    """
    return config.load(params_file).validate if params_file.is_file() else ValidateParams()


def expand(inputs: Iterable[Path]) -> list[Path]:
    """Files as given; folders replaced by the images inside them, sorted."""
    files: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()))
        else:
            files.append(p)
    return files


def _read_image(path: Path, limits: ValidateParams) -> Any:
    """The whole image as 8-bit RGB, decoded as training decodes it, turned upright as EXIF says.

    Only regular files are read (a FIFO would block, ``/dev/zero`` never ends), at most
    ``validate.max_file_mb`` of them; an image whose header declares more than ``validate.max_pixels``
    pixels is refused before it is decoded.
    """
    import io

    import tensorflow as tf
    from PIL import Image, UnidentifiedImageError

    max_bytes = limits.max_file_mb * 2**20
    if not stat.S_ISREG(path.stat().st_mode):
        raise OSError(0, "not a regular file (a FIFO, device or socket); not read")
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)  # bounded even if the file grows meanwhile
    if len(data) > max_bytes:
        raise OSError(0, f"larger than validate.max_file_mb={limits.max_file_mb}; not read")
    turn = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of corrupt EXIF; the file still gets its one line
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > limits.max_pixels:
                    raise OSError(0, f"{img.width}x{img.height} exceeds {limits.max_pixels} pixels; not decoded")
                turn = _orientation(img)
    except Image.DecompressionBombError as exc:
        raise OSError(0, f"refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        pass  # not an image Pillow knows: TensorFlow's decoder gives the error
    # TensorFlow's decoder, as in training (16-bit images are scaled to 8 bits, not clipped)
    return images.upright(tf.io.decode_image(data, channels=3, expand_animations=False).numpy(), turn)


def _orientation(img: Any) -> int:
    """The EXIF orientation, or 1 (as stored) when the EXIF block cannot be read."""
    try:
        return images.orientation(img)
    except Exception:  # Pillow raises many kinds for odd EXIF (struct.error, ValueError, ...)
        return 1


def failure(exc: Exception) -> str:
    """Why a file could not be read, on one line: any decoder's exception (Pillow's, TensorFlow's, ours)."""
    import tensorflow as tf

    if isinstance(exc, tf.errors.OpError):
        text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", exc.message)
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


def is_blank(image: Any) -> bool:
    """A single colour (any colour, not only grey): every channel varies less than ``BLANK_STD``.

    OpenCV's per-channel standard deviation: the same figure as NumPy's, about 250 times faster on a
    640x480 photo (NumPy's float64 pass took two thirds of the whole prediction).
    """
    import cv2

    return bool(cv2.meanStdDev(np.ascontiguousarray(image))[1].max() < BLANK_STD)


def model_inputs(
    path: Path, image_size: int, limits: ValidateParams, detect_faces: bool
) -> list[tuple[Face | None, Any]]:
    """What the model sees for one file: the whole image, or each detected face cut like the training crops.

    Raises:
        OSError: for an unreadable image, or a blank one (a single colour) when faces are not detected.
    """
    import tensorflow as tf

    image = _read_image(path, limits)
    if detect_faces:
        crops = [(face, faces.cut(image, face.crop)) for face in faces.detect(image)]
    elif is_blank(image):
        raise OSError(0, "blank image (a single colour): nothing to classify")
    else:
        crops = [(None, image)]
    return [(face, dataset.resize(tf.constant(crop), image_size).numpy()) for face, crop in crops]


def predict_files(
    files: list[Path], model: LoadedModel, limits: ValidateParams | None = None, detect_faces: bool = False
) -> list[dict[str, Any]]:
    """One result per file: ``{path, label, probability, probabilities}`` or ``{path, error}``.

    With ``detect_faces`` the result holds ``faces``: one ``{box, crop, label, probability,
    probabilities}`` per face found (boxes are x, y, width, height in the photo's pixels).
    ``limits`` default to the project's ``validate`` section (:func:`project_limits`). A file that
    cannot be read gets an error and never stops the others.
    """
    limits = project_limits() if limits is None else limits

    results: list[dict[str, Any]] = [{"path": str(f)} for f in files]
    pending: list[tuple[int, Face | None, Any]] = []

    def flush() -> None:
        if not pending:
            return
        probs = model.predict(np.stack([img for _, _, img in pending]))
        for (i, face, _), p in zip(pending, probs):
            k = int(p.argmax())
            answer = {
                "label": model.class_names[k],
                "probability": float(p[k]),
                "probabilities": {n: float(v) for n, v in zip(model.class_names, p)},
            }
            if face is None:
                results[i].update(answer)
            else:
                results[i]["faces"].append({"box": list(face.box), "crop": list(face.crop), **answer})
        pending.clear()

    for i, path in enumerate(files):
        try:
            inputs = model_inputs(path, model.image_size, limits, detect_faces)
        except Exception as exc:  # any decoder's fault is this file's line; the others are still predicted
            results[i]["error"] = f"cannot read this image ({failure(exc)})"
            continue
        if detect_faces:
            results[i]["faces"] = []
        for face, img in inputs:
            pending.append((i, face, img))
            if len(pending) >= BATCH:
                flush()
    flush()
    return results


def answers(result: dict[str, Any]) -> list[str]:
    """One line per answer for a file: its label, each face's label and box, no face, or the error."""
    path = shown(result["path"])
    if "error" in result:
        return [f"{path}: error: {result['error']}"]
    if "faces" not in result:
        return [f"{path}\t{result['label']}\t{result['probability']:.4f}"]
    if not result["faces"]:
        return [f"{path}\tno face found"]
    return [
        f"{path}\tface {n} at x={f['box'][0]} y={f['box'][1]} w={f['box'][2]} h={f['box'][3]}\t"
        f"{f['label']}\t{f['probability']:.4f}"
        for n, f in enumerate(result["faces"], start=1)
    ]


def labels(results: list[dict[str, Any]]) -> dict[str, int]:
    """How many answers got each label (faces counted one by one), plus "no face" and "error"."""
    counts: dict[str, int] = {}
    for r in results:
        if "error" in r:
            names = ["error"]
        elif "faces" in r:
            names = [f["label"] for f in r["faces"]] or ["no face"]
        else:
            names = [r["label"]]
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return counts


def open_model(model: Path) -> tuple[LoadedModel, str]:
    """The model to predict with, and its name; the production model is first brought up to date from the registry."""
    model = Path(model)
    name = f"{model} (sha256 of the export {{}})"
    if model.as_posix().endswith(paths.PRODUCTION_MODEL):
        production = registry.sync(model.parents[2])  # models/production/model -> the repository
        if production is None:
            raise StageError(
                f"{paths.PRODUCTION_MODEL}: no model in production yet; run make demo, or make promote after a "
                f"passing gate, or pass --model {paths.MODEL_DIR} for the last trained one"
            )
        name = f"{registry.ARTIFACT}@{production.model_version} at {model} (sha256 of the export {{}})"
    loaded = load_model(model)
    return loaded, name.format(tree_hash(model)[:12])


@flow(name="batch-predict", log_prints=True)
def batch_predict(
    inputs: list[str],
    model: str = paths.PRODUCTION_MODEL,
    output: str = paths.PREDICTIONS_OUT,
    detect_faces: bool = False,
) -> dict[str, int]:
    """Predict every image under ``inputs`` and write the results as JSON to ``output``.

    The scheduled deployment points this at an inbox folder; an empty inbox is not an error.
    """
    quiet.install()  # before TensorFlow loads (a worker imports this flow without main())
    files = expand(map(Path, inputs))
    if not files:
        print(f"no images in {', '.join(inputs)}; nothing to predict")
        return {"images": 0, "failed": 0}
    loaded, name = open_model(Path(model))
    print(f"model: {name}")
    results = predict_files(files, loaded, detect_faces=detect_faces)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")  # runs at once never share it
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(results, indent=2))
    os.replace(tmp, out)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(answers(r)[0])
    create_table_artifact(
        key="batch-predictions",
        table=[{"label": k, "answers": v} for k, v in sorted(labels(results).items())],
        description=f"Predictions written to {out}",
    )
    print(f"{len(results) - len(failed)} predicted, {len(failed)} failed; results in {out}")
    return {"images": len(results), "failed": len(failed)}


def main(argv: list[str] | None = None) -> int:
    """Print one line per image (or per face); return 1 if any file failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    parser.add_argument(
        "--model",
        type=Path,
        default=Path(paths.PRODUCTION_MODEL),
        help=f"exported model folder (default: the production model, {paths.PRODUCTION_MODEL})",
    )
    parser.add_argument(
        "--detect-faces",
        action="store_true",
        help="find faces in whole photos and predict each, cropped like the training images",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of lines")
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="run the model in reduced precision (float16 on a GPU, bfloat16 on a CPU that has it)",
    )
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    setup()
    files = expand(args.inputs)
    if not files:
        print("error: no images found in " + ", ".join(map(str, args.inputs)), file=sys.stderr)
        return 1
    chosen, why = precision.choose(args.mixed_precision)
    if args.mixed_precision:
        print(f"precision: {chosen} ({why})", file=sys.stderr)
    with precision.rewrite(chosen):
        model, name = open_model(args.model)
        print(f"model: {name}", file=sys.stderr)
        results = predict_files(files, model, detect_faces=args.detect_faces)
    if args.json:
        print(json.dumps(results, indent=2))
    else:  # tab-separated, under a header that names the columns
        print("path\tface\tlabel\tprobability" if args.detect_faces else "path\tlabel\tprobability")
    for r in results:
        if "error" in r:
            print(answers(r)[0], file=sys.stderr)
        elif not args.json:
            print("\n".join(answers(r)))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    run_cli(lambda: sys.exit(main()))
