"""The validate stage: the GX suite passes on clean data and names the file for each fault.

Each fault test states the intent of the expectation it exercises.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from PIL import Image

from tasks.errors import StageError
from tests.helpers.data import jpeg, run_stage


def _run(make_raw, folder, params, tmp_path):
    make_raw(folder)
    return run_stage("validate", tmp_path, validate=params)


def test_clean_data_passes_and_writes_report_manifest_and_data_docs(
    dataset_folder, make_raw, tiny_validate_params, tmp_path, capsys
):
    result = _run(make_raw, dataset_folder, tiny_validate_params, tmp_path)
    out = tmp_path / "data" / "validation"
    report = json.loads((out / "report.json").read_text())
    assert report == asdict(result.report)  # the returned report is the one on disk
    assert report["success"]
    assert report["kept"] == 24
    assert len(report["expectations"]) >= 11
    assert not report["failed"]
    assert report["counts"]["Train/Male"] == 5
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0].startswith("split,label,path,format,width,height,mode,brightness,bytes,sha256,phash,decodes")
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
    assert not row["decodes"]
    assert "exceeds validate.max_pixels" in row["error"]
    assert (row["width"], row["height"]) == (3000, 3000)


@pytest.mark.parametrize("packed", ["zip", "folder"])
def test_junk_files_are_skipped_and_counted(packed, dataset_folder, make_raw, tiny_validate_params, tmp_path):
    """What macOS and Windows leave in zips and folders is skipped, counted, and never fails validation."""
    import zipfile

    from tasks.archive import pack_folder

    junk = {"__MACOSX/Dataset/._000001.jpg", "Dataset/Train/Male/Thumbs.db", "Dataset/.DS_Store"}
    if packed == "zip":
        source = tmp_path / "with-junk.zip"
        pack_folder(dataset_folder, source)
        with zipfile.ZipFile(source, "a") as zf:
            for name in sorted(junk):
                zf.writestr(name, b"junk")
    else:
        source = dataset_folder
        for name in junk:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(b"junk")
    result = _run(make_raw, source, tiny_validate_params, tmp_path)
    assert result.report.kept == 24
    assert result.report.skipped_junk_files == (3 if packed == "zip" else 0)  # pack_folder leaves it out
