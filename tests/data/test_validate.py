"""The validate stage: the GX suite passes on clean data and names the file for each fault.

Each fault test states the intent of the expectation it exercises.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from tasks import paths
from tasks.files import StageError
from tasks.validate import validate
from tests.conftest import jpeg


def _run(make_raw, folder, params, tmp_path):
    raw = make_raw(folder)
    return validate(raw, tmp_path / "data" / "validation", params)


def test_clean_data_passes_and_writes_report_manifest_and_data_docs(dataset_folder, make_raw, tiny_validate_params, tmp_path, capsys):
    result = _run(make_raw, dataset_folder, tiny_validate_params, tmp_path)
    out = tmp_path / "data" / "validation"
    report = json.loads((out / paths.REPORT_NAME).read_text())
    assert result.success and report["success"] and report["kept"] == 24
    assert len(report["expectations"]) >= 11 and not report["failed"]
    assert report["counts"]["Train/Male"] == 5
    manifest = (out / paths.MANIFEST_NAME).read_text().splitlines()
    assert manifest[0].startswith("split,label,path,format,width,height,mode,bytes,sha256,decodes")
    assert len(manifest) == 25
    html = (out / paths.DATA_DOCS_NAME / "index.html").read_text()
    assert "dataset_files" in html  # the suite's validation result is in the Data Docs
    assert (out / "gx" / "great_expectations.yml").is_file()  # a real File Data Context
    assert "Train/Female" in capsys.readouterr().out  # the summary table


def _first_image(folder: Path, split: str = "Train", label: str = "Male") -> Path:
    return sorted((folder / "Dataset" / split / label).glob("*.jpg"))[0]


def corrupt(folder):  # every file is a decodable image: a truncated JPEG
    path = _first_image(folder)
    path.write_bytes(path.read_bytes()[:400])
    return "Train/Male/000001.jpg", "decodes"


def not_an_image(folder):  # every file is a decodable image: text named .jpg
    _first_image(folder).write_text("this is not a picture\n")
    return "Train/Male/000001.jpg", "decodes"


def grayscale(folder):  # colour mode: RGB only
    path = _first_image(folder)
    path.write_bytes(jpeg(Image.open(path).convert("L")))
    return "Train/Male/000001.jpg", "mode"


def too_small(folder):  # size bounds
    path = _first_image(folder)
    path.write_bytes(jpeg(Image.open(path).resize((20, 20))))
    return "Train/Male/000001.jpg", "width"


def leak(folder):  # data leak: the same image in Train and Test
    shutil.copy(_first_image(folder), folder / "Dataset" / "Test" / "Male" / "leaked.jpg")
    return "Test/Male/leaked.jpg", "splits_with_same_content"


def png_named_jpg(folder):  # schema: image format
    path = _first_image(folder)
    path.write_bytes(jpeg(Image.open(path), "PNG"))
    return "Train/Male/000001.jpg", "format"


def extra_class(folder):  # label set: an unknown class folder
    target = folder / "Dataset" / "Train" / "Unknown"
    target.mkdir()
    shutil.copy(_first_image(folder), target / "x.jpg")
    return "Train/Unknown/x.jpg", "label"


def empty_split(folder):  # enough images per split and class
    shutil.rmtree(folder / "Dataset" / "Validation")
    return "Validation/Female", "count"


@pytest.mark.parametrize("fault", [corrupt, not_an_image, grayscale, too_small, leak, png_named_jpg, extra_class, empty_split])
def test_each_fault_fails_the_suite_and_names_the_file(fault, dataset_folder, make_raw, tiny_validate_params, tmp_path):
    offender, column = fault(dataset_folder)
    with pytest.raises(StageError) as err:
        _run(make_raw, dataset_folder, tiny_validate_params, tmp_path)
    message = str(err.value)
    assert "data validation failed" in message and offender in message and f"({column})" in message
    report = json.loads((tmp_path / "data" / "validation" / paths.REPORT_NAME).read_text())
    assert not report["success"]
    assert any(offender in f["offenders"] and f["column"] == column for f in report["failed"])


def test_undecodable_files_within_the_limit_are_dropped_and_reported(dataset_folder, make_raw, tiny_validate_params, tmp_path):
    corrupt(dataset_folder)
    result = _run(make_raw, dataset_folder, replace(tiny_validate_params, max_dropped=1), tmp_path)
    assert result.success
    assert [d["path"] for d in result.report["dropped"]] == ["Train/Male/000001.jpg"]
    assert result.report["kept"] == 23 and result.report["images"] == 24


def test_class_share_out_of_bounds_fails(dataset_folder, make_raw, tiny_validate_params, tmp_path):
    # class balance: Train is 5 Male / 7 Female = 0.42; demand at least 0.45 of each class
    with pytest.raises(StageError, match=r"\(share\).*Train/Male"):
        _run(make_raw, dataset_folder, replace(tiny_validate_params, min_class_share=0.45), tmp_path)


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    from tasks.validate import inspect_image

    huge = jpeg(Image.new("RGB", (3000, 3000)))
    row = inspect_image(huge, max_pixels=1_000_000)
    assert not row["decodes"] and "exceeds validate.max_pixels" in row["error"]
    assert (row["width"], row["height"]) == (3000, 3000)


def test_junk_files_are_skipped_and_counted(dataset_folder, make_raw, tiny_validate_params, tmp_path):
    import zipfile

    from tasks.archive import pack_folder

    zipped = tmp_path / "with-junk.zip"
    pack_folder(dataset_folder, zipped)
    with zipfile.ZipFile(zipped, "a") as zf:  # what macOS and Windows leave in zips
        zf.writestr("__MACOSX/Dataset/._000001.jpg", b"junk")
        zf.writestr("Dataset/Train/Male/Thumbs.db", b"junk")
        zf.writestr("Dataset/.DS_Store", b"junk")
    result = _run(make_raw, zipped, tiny_validate_params, tmp_path)
    assert result.success and result.report["kept"] == 24
    assert result.report["skipped_junk_files"] == 3
