"""Bad files in a dataset: each is refused with the file named (or handled, where params allow).

Behaviour, case by case (validate stage unless said otherwise):
  * truncated JPEG, zero-byte file, text named .jpg: refused ("decodes"), or dropped and reported
    when ``validate.max_dropped`` allows;
  * PNG named .jpg: refused ("format") unless PNG is in ``validate.allowed_formats``, then converted
    to RGB JPEG by preprocess;
  * greyscale, RGBA, CMYK: refused ("mode") unless the mode is in ``validate.allowed_modes``, then
    converted to RGB JPEG by preprocess;
  * Thumbs.db, .DS_Store, __MACOSX/: skipped and counted (``skipped_junk_files``);
  * the same image in two splits: refused ("data leak");
  * the same image under two classes: refused, naming both files ("label conflict");
  * an exact copy within a split: refused above ``validate.max_duplicates``, listed either way;
  * a re-encoded, resized, mirrored, upside-down, greyscale, recoloured, brighter, lower-contrast, cropped,
    shifted or rotated copy in another split (a near-duplicate: ``CHANGED_COPIES``, one of each planted):
    refused above ``validate.max_near_duplicates``, listed either way, with the orientation and the pixel
    check that matched;
  * an image whose header declares more than ``validate.max_pixels``: refused without decoding;
  * a missing split or class folder, or an empty split: refused ("count"); an extra class folder:
    refused ("label").
Nothing but the stage's own output folder is written, and the raw archive is left as it was.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from tasks import near_duplicates, paths, synthetic
from tasks.errors import StageError
from tasks.files import sha256_file
from tests.helpers.data import jpeg, run_stage


def _first_image(folder: Path, split: str = "Train", label: str = "Male") -> Path:
    return sorted((folder / "Dataset" / split / label).glob("*.jpg"))[0]


FIRST = "Train/Male/000001.jpg"


def corrupt(folder):  # a truncated JPEG
    path = _first_image(folder)
    path.write_bytes(path.read_bytes()[:400])
    return FIRST, "decodes"


def zero_bytes(folder):
    _first_image(folder).write_bytes(b"")
    return FIRST, "decodes"


def not_an_image(folder):  # text named .jpg
    _first_image(folder).write_text("this is not a picture\n")
    return FIRST, "decodes"


def png_named_jpg(folder):
    path = _first_image(folder)
    path.write_bytes(jpeg(Image.open(path), "PNG"))
    return FIRST, "format"


def _mode(mode):
    def fault(folder):
        path = _first_image(folder)
        img = Image.open(path).convert(mode)
        path.write_bytes(jpeg(img, "PNG" if mode == "RGBA" else "JPEG"))
        return FIRST, "mode"

    fault.__name__ = f"mode_{mode}"
    return fault


def sixteen_bit_png(folder):  # a 16-bit grey PNG (Pillow opens it as mode I;16)
    path = _first_image(folder)
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.uint16) * 257
    path.write_bytes(jpeg(Image.fromarray(grey), "PNG"))
    return FIRST, "mode"


def webp_named_jpg(folder):
    path = _first_image(folder)
    path.write_bytes(jpeg(Image.open(path), "WEBP"))
    return FIRST, "format"


def too_small(folder):
    path = _first_image(folder)
    path.write_bytes(jpeg(Image.open(path).resize((20, 20))))
    return FIRST, "width"


def bomb(folder):  # a JPEG whose header declares 30000x30000 pixels
    path = _first_image(folder)
    path.write_bytes(declare_size(path.read_bytes(), 30000, 30000))
    return FIRST, "decodes"


def declare_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite a baseline JPEG's SOF0 header to declare another size (the pixels stay small)."""
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1), then height, width
    return data[:at] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 4 :]


def leak(folder):  # the same image in Train and Test
    shutil.copy(_first_image(folder), folder / "Dataset" / "Test" / "Male" / "leaked.jpg")
    return "Test/Male/leaked.jpg", "splits_with_same_content"


def label_conflict(folder):  # the same bytes as Male and as Female
    shutil.copy(_first_image(folder), folder / "Dataset" / "Train" / "Female" / "conflict.jpg")
    return "Train/Female/conflict.jpg", "labels_with_same_content"


def duplicate_in_split(folder):
    shutil.copy(_first_image(folder), folder / "Dataset" / "Train" / "Male" / "copy.jpg")
    return "Train/Male/copy.jpg", "copies_in_split"


def near_duplicate(folder):  # Train's first image, resized to 3/4 and saved again at JPEG quality 60, in Test
    with Image.open(_first_image(folder)) as img:
        smaller = img.resize((img.width * 3 // 4, img.height * 3 // 4))
    smaller.save(folder / "Dataset" / "Test" / "Male" / "near.jpg", quality=60)
    return "Test/Male/near.jpg", "near_duplicates_in_other_splits"


def _changed_copy(folder, split: str, change, quality: int) -> str:
    """Train's first image changed by ``change`` (PIL image -> PIL image), saved in ``split`` at ``quality``."""
    with Image.open(_first_image(folder)) as img:
        change(img.convert("RGB")).save(folder / "Dataset" / split / "Male" / "changed.jpg", quality=quality)
    return f"{split}/Male/changed.jpg"


def _hue_turned(img: Image.Image, degrees: int = 40) -> Image.Image:
    h, s, v = img.convert("HSV").split()
    return Image.merge("HSV", (h.point(lambda x: (x + degrees * 256 // 360) % 256), s, v)).convert("RGB")


def _cropped(img: Image.Image, left: int, top: int, right: int, bottom: int) -> Image.Image:
    """``img`` less so many pixels on each side, resized back to its size."""
    return img.crop((left, top, img.width - right, img.height - bottom)).resize(img.size)


# each kind of copy that the check finds (the share of 200 faces found: BENCHMARKS.md row 7)
CHANGED_COPIES = {
    "mirrored, JPEG q30": ("Validation", lambda i: i.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 30),
    "upside down": ("Test", lambda i: i.transpose(Image.Transpose.FLIP_TOP_BOTTOM), 90),
    "greyscale": ("Test", lambda i: i.convert("L").convert("RGB"), 90),
    "red-blue swap": ("Validation", lambda i: Image.merge("RGB", i.split()[::-1]), 90),
    "hue +40 degrees": ("Test", _hue_turned, 90),
    "brightness +20%": ("Validation", lambda i: ImageEnhance.Brightness(i).enhance(1.2), 90),
    "contrast -30%": ("Test", lambda i: ImageEnhance.Contrast(i).enhance(0.7), 90),
    "JPEG q10": ("Validation", lambda i: i, 10),
    "cropped 10% per side": ("Test", lambda i: _cropped(i, 18, 22, 18, 22), 90),
    "cropped 10% on one side": ("Validation", lambda i: _cropped(i, 18, 0, 0, 0), 90),
    "shifted 5 px": ("Test", lambda i: i.transform(i.size, Image.Transform.AFFINE, (1, 0, -5, 0, 1, -5)), 90),
    "rotated 2 degrees": ("Validation", lambda i: i.rotate(2, Image.Resampling.BILINEAR), 90),
    "rotated 10 degrees": ("Test", lambda i: i.rotate(10, Image.Resampling.BILINEAR), 90),
}


def _near_duplicate_fault(kind: str):
    def fault(folder):
        return _changed_copy(folder, *CHANGED_COPIES[kind]), "near_duplicates_in_other_splits"

    fault.__name__ = f"near_duplicate_{kind}"
    return fault


def extra_class(folder):
    target = folder / "Dataset" / "Train" / "Unknown"
    target.mkdir()
    shutil.copy(_first_image(folder), target / "x.jpg")
    return "Train/Unknown/x.jpg", "label"


def missing_split(folder):
    shutil.rmtree(folder / "Dataset" / "Validation")
    return "Validation/Female", "count"


def missing_class(folder):
    shutil.rmtree(folder / "Dataset" / "Test" / "Male")
    return "Test/Male", "count"


def empty_split(folder):
    for f in (folder / "Dataset" / "Test").rglob("*.jpg"):
        f.unlink()
    return "Test/Female", "count"


FAULTS = [
    corrupt,
    zero_bytes,
    not_an_image,
    png_named_jpg,
    _mode("L"),
    _mode("RGBA"),
    _mode("CMYK"),
    sixteen_bit_png,
    webp_named_jpg,
    too_small,
    bomb,
    leak,
    label_conflict,
    duplicate_in_split,
    near_duplicate,
    *(_near_duplicate_fault(kind) for kind in CHANGED_COPIES),
    extra_class,
    missing_split,
    missing_class,
    empty_split,
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.__name__ for f in FAULTS])
def test_each_fault_is_refused_naming_the_file(fault, dataset_folder, make_raw, tiny_validate_params, tmp_path):
    offender, column = fault(dataset_folder)
    raw = make_raw(dataset_folder)
    before = sha256_file(raw / paths.RAW_ARCHIVE_NAME)
    with pytest.raises(StageError) as err:
        run_stage("validate", tmp_path, validate=tiny_validate_params)
    message = str(err.value)
    assert "data validation failed" in message
    assert offender in message
    assert f"({column})" in message
    assert "Fix or remove these files" in message  # what to do
    report = json.loads((tmp_path / "data" / "validation" / "report.json").read_text())
    assert any(offender in f["offenders"] and f["column"] == column for f in report["failed"])
    # nothing else written, nothing lost
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["raw", "validation"]
    assert sha256_file(raw / paths.RAW_ARCHIVE_NAME) == before


def test_a_bomb_is_never_decoded(dataset_folder, make_raw, tiny_validate_params, tmp_path, monkeypatch):
    bomb(dataset_folder)
    make_raw(dataset_folder)
    loads = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self.size) or real_load(self))
    with pytest.raises(StageError, match="Train/Male/000001.jpg"):
        run_stage("validate", tmp_path, validate=tiny_validate_params)
    assert (30000, 30000) not in loads
    report = json.loads((tmp_path / "data" / "validation" / "report.json").read_text())
    manifest = (tmp_path / "data" / "validation" / "manifest.csv").read_text()
    assert "DecompressionBombError" in manifest  # Pillow's guard, set to validate.max_pixels
    assert not report["success"]


def test_an_image_just_over_max_pixels_is_refused_before_decoding(
    dataset_folder, make_raw, tiny_validate_params, tmp_path
):
    path = _first_image(dataset_folder)
    path.write_bytes(declare_size(path.read_bytes(), 300, 300))  # 90,000 pixels declared
    make_raw(dataset_folder)
    with pytest.raises(StageError, match=FIRST):
        run_stage("validate", tmp_path, validate=replace(tiny_validate_params, max_pixels=60_000))
    assert (
        "300x300 exceeds validate.max_pixels=60000" in (tmp_path / "data" / "validation" / "manifest.csv").read_text()
    )


@pytest.mark.parametrize(
    "fault", [_mode("L"), _mode("RGBA"), _mode("CMYK"), png_named_jpg], ids=["L", "RGBA", "CMYK", "PNG"]
)
def test_allowed_modes_and_formats_are_converted_to_rgb_jpeg(
    fault, dataset_folder, make_raw, tiny_validate_params, tmp_path
):
    import tensorflow as tf

    from tasks.params.preprocess import PreprocessParams

    fault(dataset_folder)
    params = replace(tiny_validate_params, allowed_modes=["RGB", "L", "RGBA", "CMYK"], allowed_formats=["JPEG", "PNG"])
    make_raw(dataset_folder)
    run_stage("validate", tmp_path, validate=params)
    result = run_stage("preprocess", tmp_path, preprocess=PreprocessParams())
    summary = json.loads((tmp_path / "data" / "processed" / paths.PREPROCESS_SUMMARY_NAME).read_text())
    assert summary["converted_to_rgb_jpeg"] == 1
    assert result.counts["Train"] == 12
    for shard in (tmp_path / "data" / "processed").glob("Train-*.tfrecord"):
        for record in tf.data.TFRecordDataset(str(shard)):
            ex = tf.train.Example.FromString(record.numpy())
            if ex.features.feature["path"].bytes_list.value[0] == FIRST.encode():
                data = ex.features.feature["image"].bytes_list.value[0]
                assert data[:2] == b"\xff\xd8"  # JPEG
                assert tf.io.decode_jpeg(data).shape[-1] == 3


def test_undecodable_files_within_the_limit_are_dropped_and_reported(
    dataset_folder, make_raw, tiny_validate_params, tmp_path
):
    corrupt(dataset_folder)
    zero_bytes_path = _first_image(dataset_folder, "Train", "Female")
    zero_bytes_path.write_bytes(b"")
    make_raw(dataset_folder)
    result = run_stage("validate", tmp_path, validate=replace(tiny_validate_params, max_dropped=2))
    assert sorted(d.path for d in result.report.dropped) == ["Train/Female/000001.jpg", FIRST]
    # one more than the limit: refused, nothing dropped silently
    make_raw(dataset_folder)
    with pytest.raises(StageError, match="decodes"):
        run_stage("validate", tmp_path, validate=replace(tiny_validate_params, max_dropped=1))


def test_a_label_conflict_names_both_files(dataset_folder, make_raw, tiny_validate_params, tmp_path):
    label_conflict(dataset_folder)
    make_raw(dataset_folder)
    with pytest.raises(StageError) as err:
        run_stage("validate", tmp_path, validate=tiny_validate_params)
    line = next(x for x in str(err.value).splitlines() if "(labels_with_same_content)" in x)
    assert "label conflict" in line
    assert FIRST in line
    assert "Train/Female/conflict.jpg" in line


def test_duplicates_within_the_limits_pass_and_are_listed(dataset_folder, make_raw, tiny_validate_params, tmp_path):
    duplicate_in_split(dataset_folder)
    near_duplicate(dataset_folder)
    make_raw(dataset_folder)
    # Train has 000001.jpg and its exact copy; Test has a resized copy of both (two near-duplicate pairs)
    params = replace(tiny_validate_params, max_duplicates=2, max_near_duplicates=3)
    report = run_stage("validate", tmp_path, validate=params).report
    checks = {e.column: e for e in report.expectations}
    assert checks["copies_in_split"].success
    assert checks["copies_in_split"].unexpected_count == 2
    assert set(checks["copies_in_split"].offenders) == {FIRST, "Train/Male/copy.jpg"}
    near = checks["near_duplicates_in_other_splits"]
    assert near.success
    assert set(near.offenders) == {FIRST, "Train/Male/copy.jpg", "Test/Male/near.jpg"}
    assert report.near_duplicates.pairs == 2
    assert {(p.a, p.b) for p in report.near_duplicates.first} == {
        (FIRST, "Test/Male/near.jpg"),
        ("Train/Male/copy.jpg", "Test/Male/near.jpg"),
    }
    assert all(p.distance <= 24 for p in report.near_duplicates.first)
    assert all(p.correlation >= 0.99 for p in report.near_duplicates.first)
    assert {p.orientation for p in report.near_duplicates.first} == {"as is"}
    # one more than allowed fails
    with pytest.raises(StageError, match="near_duplicates_in_other_splits") as failed:
        run_stage("validate", tmp_path, validate=replace(params, max_near_duplicates=2))
    # the message names the pairs, each with which file is the copy of which and how it was matched
    line = next(x for x in str(failed.value).splitlines() if "near_duplicates_in_other_splits" in x)
    assert f"first pairs: {FIRST} ≈ Test/Male/near.jpg (as is, colour 1.00)" in line
    assert "Train/Male/copy.jpg ≈ Test/Male/near.jpg (as is, colour 1.00)" in line


@pytest.mark.parametrize(
    ("turn", "orientation"),
    [
        (Image.Transpose.FLIP_LEFT_RIGHT, "mirrored"),
        (Image.Transpose.FLIP_TOP_BOTTOM, "upside down"),
        (Image.Transpose.ROTATE_180, "turned 180 degrees"),
    ],
)
def test_a_turned_copy_is_listed_with_its_orientation(
    turn, orientation, dataset_folder, make_raw, tiny_validate_params, tmp_path
):
    # training flips images at random: a mirrored Test image in Train is a perfect leak
    copy = _changed_copy(dataset_folder, "Test", lambda i: i.transpose(turn), 90)
    make_raw(dataset_folder)
    params = replace(tiny_validate_params, max_near_duplicates=2)
    (pair,) = run_stage("validate", tmp_path, validate=params).report.near_duplicates.first
    assert (pair.a, pair.b) == (FIRST, copy)
    assert pair.orientation == orientation
    assert pair.correlation >= 0.99


@pytest.mark.parametrize(
    "change",
    [
        lambda i: i.convert("L").convert("RGB"),  # greyscale
        lambda i: Image.merge("YCbCr", (lambda y, cb, cr: (y, cr, cb))(*i.convert("YCbCr").split())).convert("RGB"),
        lambda i: Image.merge("RGB", i.split()[::-1]),  # red and blue swapped
        _hue_turned,
    ],
    ids=["greyscale", "chroma swapped", "red-blue swap", "hue turned"],
)
def test_a_recoloured_copy_is_found_by_its_detail_not_its_colours(
    change, dataset_folder, make_raw, tiny_validate_params, tmp_path
):
    # Aligned faces look alike in grey at low resolution (22 pairs of different synthetic faces among 200,000
    # correlated above 0.99 as 32x32 grey thumbnails), so a recoloured copy is confirmed by its fine detail.
    copy = _changed_copy(dataset_folder, "Test", change, 90)
    with Image.open(_first_image(dataset_folder)) as img, Image.open(dataset_folder / "Dataset" / copy) as changed:
        original, recoloured = near_duplicates.views(img), near_duplicates.views(changed)
    assert near_duplicates.best_orientation(original["colour"], recoloured["colour"])[1] < 0.99  # colours differ
    make_raw(dataset_folder)
    params = replace(tiny_validate_params, max_near_duplicates=2)
    (pair,) = run_stage("validate", tmp_path, validate=params).report.near_duplicates.first
    assert (pair.a, pair.b, pair.orientation) == (FIRST, copy, "as is")
    assert pair.check in ("luma detail", "brightest-channel detail")
    assert pair.correlation >= near_duplicates.MIN_DETAIL


@pytest.mark.parametrize(
    ("change", "orientation"),
    [
        (CHANGED_COPIES["cropped 10% per side"][1], "as is"),
        (CHANGED_COPIES["rotated 10 degrees"][1], "as is"),
        (lambda i: _cropped(i.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 18, 22, 18, 22), "mirrored"),
    ],
    ids=["cropped", "rotated", "mirrored and cropped"],
)
def test_a_cropped_or_rotated_copy_is_found_by_its_colours_and_aligned_detail(
    change, orientation, dataset_folder, make_raw, tiny_validate_params, tmp_path
):
    # every pixel has moved, so neither the hashes nor the fixed pixel checks see it: the colours make it a
    # candidate, and the detail matches once the copy is aligned onto the original (turned back first)
    copy = _changed_copy(dataset_folder, "Test", change, 90)
    make_raw(dataset_folder)
    params = replace(tiny_validate_params, max_near_duplicates=2)
    (pair,) = run_stage("validate", tmp_path, validate=params).report.near_duplicates.first
    assert (pair.a, pair.b) == (FIRST, copy)
    assert (pair.check, pair.orientation) == ("aligned detail", orientation)
    assert pair.correlation >= near_duplicates.MIN_ALIGNED_DETAIL
    # the Data Docs page of the files' suite counts them by check and orientation
    suite_page = tmp_path / "data" / "validation" / "data_docs" / "expectations" / "dataset_files.html"
    kinds = f"by the check that matched and orientation: aligned detail, {orientation} 1"
    assert f"1 near-duplicate pairs across splits; {kinds}" in suite_page.read_text()


def test_two_different_faces_of_the_same_pose_are_not_a_near_duplicate():
    # Found by the tiny model set (seed 11): hashes 22 bits apart in the brightest-channel view, detail
    # correlating at 0.84 when compared at 64x78 with a 2 px blur (their outlines coincide).
    names = {("Train", 186), ("Validation", 5)}
    faces, seen = {}, {}
    for split, label, data in synthetic.generate({"Train": 480, "Validation": 100, "Test": 100}, 0.42, 11):
        seen[split, label] = seen.get((split, label), 0) + 1
        if label == "Female" and (split, seen[split, label]) in names:
            faces[split] = Image.open(io.BytesIO(data)).convert("RGB")
    prints = {split: near_duplicates.fingerprints(img) for split, img in faces.items()}
    (pair,) = near_duplicates.candidates([prints["Train"]], [prints["Validation"]])  # a candidate by its hashes ...
    assert pair.distance <= near_duplicates.MAX_DISTANCE
    assert not pair.colours  # ... not its colours, so it is not aligned (an affine map can fit one face onto another)
    views = [near_duplicates.views(faces[split]) for split in ("Train", "Validation")]
    assert near_duplicates.confirm(*views, aligned=pair.colours) is None


@pytest.mark.parametrize(
    ("fault", "found"), [(sixteen_bit_png, "I;16"), (webp_named_jpg, "WEBP"), (png_named_jpg, "PNG")]
)
def test_a_refused_format_or_mode_is_named(fault, found, dataset_folder, make_raw, tiny_validate_params, tmp_path):
    fault(dataset_folder)
    make_raw(dataset_folder)
    with pytest.raises(StageError, match=f"1 bad \\(found: {found}\\); first: {FIRST}"):
        run_stage("validate", tmp_path, validate=tiny_validate_params)


def test_an_allowed_16_bit_png_is_converted_to_the_same_greys_not_white(
    dataset_folder, make_raw, tiny_validate_params, tmp_path
):
    import tensorflow as tf

    from tasks.params.preprocess import PreprocessParams

    original = np.asarray(Image.open(_first_image(dataset_folder)).convert("L"), dtype=float)
    sixteen_bit_png(dataset_folder)
    make_raw(dataset_folder)
    params = replace(tiny_validate_params, allowed_modes=["RGB", "I;16", "I"], allowed_formats=["JPEG", "PNG"])
    run_stage("validate", tmp_path, validate=params)
    run_stage("preprocess", tmp_path, preprocess=PreprocessParams())
    for shard in (tmp_path / "data" / "processed").glob("Train-*.tfrecord"):
        for record in tf.data.TFRecordDataset(str(shard)):
            ex = tf.train.Example.FromString(record.numpy())
            if ex.features.feature["path"].bytes_list.value[0] == FIRST.encode():
                converted = tf.io.decode_jpeg(ex.features.feature["image"].bytes_list.value[0]).numpy().mean(-1)
    assert abs(converted.mean() - original.mean()) < 2, (converted.mean(), original.mean())  # was ~255: white
