"""Data drift: validate compares a new dataset with the data the production model was trained on."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tasks import drift, paths
from tasks.errors import StageError
from tasks.params.data import DataParams
from tasks.reports.validation import FeatureProfile
from tests.helpers.data import TINY, jpeg, run_stage, write_folder

MORE = {"Train": 60, "Validation": 20, "Test": 20}


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift():
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0
    # (0.2 - 0.5) ln(0.2/0.5) + (0.8 - 0.5) ln(0.8/0.5)
    assert drift.psi([0.5, 0.5], [0.2, 0.8]) == pytest.approx(0.3 * np.log(2.5) + 0.3 * np.log(1.6))
    assert drift.psi([0.5, 0.5], [0.45, 0.55]) < drift.psi([0.5, 0.5], [0.3, 0.7])
    assert np.isfinite(drift.psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))  # an empty reference bin stays finite


def test_profile_bins_a_dataset_by_its_deciles_and_compare_puts_another_in_them():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "label": ["Male"] * 400 + ["Female"] * 600,
            "width": 178,
            "height": 218,
            "brightness": rng.normal(120, 20, 1000),
            "bytes": rng.normal(10_000, 1_000, 1000),
        }
    )
    prof = drift.profile(reference, ["Female", "Male"])
    assert prof.class_shares == {"Female": 0.6, "Male": 0.4}
    assert prof.features["width"] == FeatureProfile(cuts=[178.0], shares=[1.0, 0.0])  # one value: one bin used
    assert len(prof.features["brightness"].shares) == 10
    assert all(abs(s - 0.1) < 0.002 for s in prof.features["brightness"].shares)
    same = {r.feature: r.psi for r in drift.compare(reference, ["Female", "Male"], prof)}
    assert same == dict.fromkeys(["class shares", "width", "height", "brightness", "jpeg_kb"], 0.0)
    brighter = reference.assign(brightness=reference["brightness"] + 40, label=["Male"] * 700 + ["Female"] * 300)
    moved = {r.feature: r.psi for r in drift.compare(brighter, ["Female", "Male"], prof)}
    assert moved["brightness"] > 1.0
    assert moved["class shares"] > 0.25
    assert moved["jpeg_kb"] == 0.0


def _brighten(folder: Path, by: int) -> Path:
    for path in folder.rglob("*.jpg"):
        with Image.open(path) as img:
            path.write_bytes(jpeg(img.point(lambda v: min(255, v + by))))
    return folder


def _validate(root: Path, folder: Path, tiny_validate_params):
    shutil.rmtree(root / paths.RAW_DIR, ignore_errors=True)
    run_stage("download", root, data=DataParams(source="local", path=str(folder)))
    return run_stage("validate", root, validate=tiny_validate_params)


def _promote_current_data(root: Path) -> None:
    """What the registry's copy holds for the drift check: the production model's data's validation report."""
    (root / paths.PRODUCTION_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copy(root / paths.VALIDATION_REPORT, root / paths.PRODUCTION_VALIDATION)


def test_validate_checks_drift_against_the_production_models_data(tmp_path, tiny_validate_params, capsys):
    root = tmp_path / "repo"
    first = write_folder(tmp_path / "first", MORE)
    _validate(root, first, tiny_validate_params)
    record = json.loads((root / paths.DRIFT).read_text())
    assert record["scope"].startswith("no reference: ")
    assert "no model in production yet" in record["scope"]
    assert record["rows"] == []
    assert "drift no reference" in capsys.readouterr().out

    _promote_current_data(root)
    same = write_folder(tmp_path / "same", MORE, seed=8)  # new images drawn the same way
    _validate(root, same, tiny_validate_params)
    record = json.loads((root / paths.DRIFT).read_text())
    assert record["passed"]
    assert record["scope"].startswith("against the data of the production model")
    assert {r["feature"] for r in record["rows"]} == {"class shares", "width", "height", "brightness", "jpeg_kb"}
    assert max(r["psi"] for r in record["rows"]) < 0.25, record["rows"]
    assert "dataset_drift" in (root / paths.DATA_DOCS / "index.html").read_text()  # shown in Data Docs

    brighter = _brighten(write_folder(tmp_path / "brighter", MORE, seed=9), 90)
    with pytest.raises(StageError) as err:
        _validate(root, brighter, tiny_validate_params)
    message = str(err.value)
    assert "data drift against the data of the production model" in message
    assert "brightness PSI" in message
    assert "above validate.max_drift_psi=0.25" in message
    assert "raise validate.max_drift_psi" in message
    record = json.loads((root / paths.DRIFT).read_text())
    psi = {r["feature"]: r["psi"] for r in record["rows"]}
    assert not record["passed"]
    assert psi["brightness"] > 0.25
    assert f"brightness PSI {psi['brightness']:.3f}" in message
    # the report itself (read by preprocess) does not depend on what is in production: it says the data is fine
    assert json.loads((root / paths.VALIDATION_REPORT).read_text())["success"]
    _validate(root, brighter, replace(tiny_validate_params, max_drift_psi=100.0))  # a deliberate change


def test_a_production_report_of_an_older_version_is_no_reference(tmp_path, tiny_validate_params):
    root = tmp_path / "repo"
    folder = write_folder(tmp_path / "data", TINY)
    (root / paths.PRODUCTION_DIR).mkdir(parents=True)
    (root / paths.PRODUCTION_VALIDATION).write_text(json.dumps({"success": True}))
    _validate(root, folder, tiny_validate_params)
    record = json.loads((root / paths.DRIFT).read_text())
    assert "no reference: " in record["scope"]
    assert "version None of the ValidationReport report, and this code reads version 1" in record["scope"]
    assert record["passed"]
