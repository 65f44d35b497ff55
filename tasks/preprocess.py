"""Stage ``preprocess``: validated images -> a few TFRecord shards per split + class_names.json.

Images are stored as their original bytes (compact); decoding and resizing happen in the one
input function (tasks/dataset.py). Files that validation dropped are skipped and counted.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from tasks import archive, dataset, images, paths, reports
from tasks.contract import Stage, StageResult
from tasks.errors import StageError, logger
from tasks.files import atomic_dir, write_json
from tasks.params.preprocess import PreprocessParams
from tasks.reports.validation import ValidationReport

log = logger("preprocess")


@dataclass(frozen=True)
class PreprocessResult(StageResult):
    """Images written per split, and how many were skipped."""

    counts: dict[str, int]
    skipped: int
    class_names: list[str]


def to_rgb_jpeg(data: bytes) -> bytes:
    """Re-encode an image that validation let through in another mode or format as RGB JPEG."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        images.as_rgb(img).save(out, "JPEG", quality=95)
        return out.getvalue()


def read_manifest(report_file: Path, manifest_file: Path) -> tuple[list[dict[str, str]], list[str], int]:
    """The manifest rows that validate kept, the class names, and how many it dropped (a passing report's)."""
    report = reports.read(report_file, ValidationReport, "validate")
    if not report.success:
        raise StageError(f"{report_file}: validation failed; fix the data and rerun validate")
    with manifest_file.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    dropped = {d.path for d in report.dropped}  # the report names them: no reading of how pandas writes booleans
    kept = [r for r in rows if r["path"] not in dropped]
    if len(rows) - len(kept) != len(report.dropped):
        raise StageError(f"{manifest_file}: does not match {report_file}; rerun validate (dvc repro -f -s validate)")
    return kept, report.class_names, len(report.dropped)


def preprocess(
    raw_dir: Path, report_file: Path, manifest_file: Path, out_dir: Path, params: PreprocessParams
) -> PreprocessResult:
    """Write ``<split>-NNNNN-of-NNNNN.tfrecord`` shards and ``class_names.json`` to ``out_dir``.

    The same inputs give byte-identical shards (fixed order, deterministic serialization), so a
    rerun of this stage leaves ``train`` up to date.
    """
    import tensorflow as tf

    kept, class_names, skipped = read_manifest(report_file, manifest_file)
    index = {name: i for i, name in enumerate(class_names)}
    counts: dict[str, int] = {}
    converted = 0
    with archive.open_archive(raw_dir / paths.RAW_ARCHIVE_NAME) as zf, atomic_dir(out_dir) as tmp:
        for split in paths.SPLITS:
            split_rows = [r for r in kept if r["split"] == split]
            random.Random(split).shuffle(split_rows)  # mix the classes across shards, reproducibly
            n = params.shards_per_split
            writers = [tf.io.TFRecordWriter(str(tmp / f"{split}-{i:05d}-of-{n:05d}.tfrecord")) for i in range(n)]
            for i, row in enumerate(split_rows):
                data = zf.read(archive.member_name(row["path"]))
                if (row["format"], row["mode"]) != ("JPEG", "RGB"):  # allowed by validate.allowed_modes/formats
                    data, converted = to_rgb_jpeg(data), converted + 1
                writers[i % n].write(dataset.encode_example(data, index[row["label"]], row["path"]))
            for w in writers:
                w.close()
            counts[split] = len(split_rows)
            log.info("%s: %d images in %d shards", split, len(split_rows), n)
        summary = {
            "counts": counts,
            "skipped": skipped,
            "converted_to_rgb_jpeg": converted,
            "class_names": class_names,
        }
        if converted:
            log.info("converted %d images to RGB JPEG", converted)
        write_json(tmp / paths.CLASS_NAMES_NAME, class_names)
        write_json(tmp / paths.PREPROCESS_SUMMARY_NAME, summary)
    return PreprocessResult(counts=counts, skipped=skipped, class_names=class_names)


STAGE = Stage(
    "preprocess",
    preprocess,
    deps={"raw_dir": paths.RAW_DIR, "report_file": paths.VALIDATION_REPORT, "manifest_file": paths.MANIFEST},
    outs={"out_dir": paths.PROCESSED_DIR},
    params={"params": "preprocess"},
)
