"""The validate stage: the GX suite passes on clean data and names the file for each fault.

Each fault test states the intent of the expectation it exercises.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from PIL import Image

from tasks.files import StageError
from tests.conftest import jpeg, run_stage


def _run(make_raw, folder, params, tmp_path):
    make_raw(folder)
    return run_stage("validate", tmp_path, validate=params)


def test_clean_data_passes_and_writes_report_manifest_and_data_docs(
    dataset_folder, make_raw, tiny_validate_params, tmp_path, capsys
):
    result = _run(make_raw, dataset_folder, tiny_validate_params, tmp_path)
    out = tmp_path / "data" / "validation"
    report = json.loads((out / "report.json").read_text())
    assert result.success and report["success"] and report["kept"] == 24
    assert len(report["expectations"]) >= 11 and not report["failed"]
    assert report["counts"]["Train/Male"] == 5
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0].startswith("split,label,path,format,width,height,mode,bytes,sha256,decodes")
    assert len(manifest) == 25
    html = (out / "data_docs" / "index.html").read_text()
    assert "dataset_files" in html  # the suite's validation result is in the Data Docs
    assert (out / "gx" / "great_expectations.yml").is_file()  # a real File Data Context
    assert "Train/Female" in capsys.readouterr().out  # the summary table


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
