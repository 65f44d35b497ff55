"""Evaluate's quality report, the gate against the blessed model, and promotion (tiny trained model)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tasks import paths
from tasks.evaluate import evaluate
from tasks.files import StageError, read_json, tree_hash, write_json
from tasks.promote import promote

from .conftest import tiny_params

pytestmark = pytest.mark.slow


def _stage_root(tmp_path: Path, prepared_root: Path, model_dir: Path) -> Path:
    """A repository root holding the prepared data and ``model_dir`` as models/model."""
    root = tmp_path / "repo"
    for rel in (paths.RAW_DIR, paths.VALIDATION_DIR, paths.PROCESSED_DIR):
        shutil.copytree(prepared_root / rel, root / rel)
    shutil.copytree(model_dir, root / paths.MODEL_DIR)
    return root


def _run(root: Path, **evaluate_params) -> dict:
    params = replace(tiny_params().evaluate, **evaluate_params)
    return evaluate(root / paths.PROCESSED_DIR, root / paths.MODEL_DIR, root, params).metrics


def _promote(root: Path):
    return promote(root / paths.METRICS, root / paths.MODEL_DIR, root / paths.BLESSED_DIR)


@pytest.fixture(scope="module")
def worse_model(prepared, tmp_path_factory) -> Path:
    """A clearly worse model of the same task: 1 epoch of the head on random backbone features."""
    from tasks.train import train

    root, params = prepared
    other = tmp_path_factory.mktemp("worse")
    shutil.copytree(root / paths.PROCESSED_DIR, other / paths.PROCESSED_DIR)
    weak = replace(params, train=replace(params.train, epochs=1, fine_tune_epochs=0, learning_rate=1e-4))
    train(other / paths.PROCESSED_DIR, other, weak)
    return other / paths.MODEL_DIR


def test_report_holds_intervals_calibration_slices_behaviour_and_a_card(trained, tmp_path):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    m = _run(root)
    n = m["images"]
    assert m["accuracy_ci95"][0] <= m["accuracy"] <= m["accuracy_ci95"][1]
    for c in m["per_class"].values():
        assert c["recall_ci95"][0] <= c["recall"] <= c["recall_ci95"][1]
    assert 0 <= m["calibration"]["ece"] <= 1 and sum(b["images"] for b in m["calibration"]["bins"]) == n
    ts = m["calibration"]["temperature_scaling"]
    assert ts["temperature"] > 0 and ts["validation_images"] == 100 and ts["test_ece_before"] == m["calibration"]["ece"]
    for kind in ("class", "brightness", "jpeg_size"):
        rows = [r for r in m["slices"] if r["slice"] == kind]
        assert sum(r["images"] for r in rows) == n, kind
        assert sum(r["images"] * r["accuracy"] for r in rows) == pytest.approx(m["accuracy"] * n), kind
    assert 0 <= m["behaviour"]["flip_changed"] <= 1 and len(m["behaviour"]["blank"]) == 3
    assert m["model"]["fingerprint"] == tree_hash(root / paths.MODEL_DIR) and m["model"]["handle"] == "small_cnn"
    assert m["gate"]["baseline"] is None and [c["name"] for c in m["gate"]["checks"]] == ["accuracy"]
    assert (root / paths.FIGURES_DIR / "reliability.png").stat().st_size > 1000

    card = (root / paths.MODEL_CARD).read_text()
    for figure in (
        f"{100 * m['accuracy']:.2f}%",
        f"{100 * m['accuracy_ci95'][0]:.2f}%",
        f"{m['calibration']['ece']:.4f}",
        f"{ts['temperature']:.3f}",
        "`small_cnn`",
    ):
        assert figure in card
    source = read_json(root / paths.SOURCE_FILE, "download")
    assert source["sha256"] in card and "synthetic face set (seed 11)" in card
    for heading in (
        "## Data",
        "## Metrics",
        "## Slices",
        "## Behaviour checks",
        "## Quality gate",
        "## Intended use",
        "## Limitations",
        "## Licence",
    ):
        assert heading in card
    assert "not for any decision about a person" in card.lower() and "1-2%" in card
    assert "| brightness |" in card and "| jpeg_size |" in card


def test_gate_compares_with_the_blessed_model_and_only_a_pass_is_promoted(trained, worse_model, tmp_path):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)

    first = _run(root, min_accuracy=0.6)  # no blessed model yet: the floor only
    assert first["gate"]["passed"] and first["gate"]["baseline"] is None
    assert _promote(root).promoted
    blessed = root / paths.BLESSED_MODEL
    pointer = read_json(root / paths.BLESSED_POINTER, "promote")
    assert pointer["fingerprint"] == tree_hash(blessed) == first["model"]["fingerprint"]
    assert read_json(root / paths.BLESSED_METRICS, "promote") == first

    # The worse candidate passes the floor (0) but falls more than max_regression below the blessed model.
    shutil.rmtree(root / paths.MODEL_DIR)
    shutil.copytree(worse_model, root / paths.MODEL_DIR)
    second = _run(root, min_accuracy=0.0, max_regression=0.01)
    base = second["gate"]["baseline"]
    assert base["comparable"] and base["fingerprint"] == pointer["fingerprint"]
    assert base["accuracy"] == pytest.approx(first["accuracy"])  # re-evaluated on the same Test images
    assert second["accuracy"] < first["accuracy"] - 0.01, "the weak model should be clearly worse"
    failed = {c["name"] for c in second["gate"]["checks"] if not c["passed"]}
    assert "accuracy vs blessed" in failed and not second["gate"]["passed"]
    before = {p.relative_to(root): p.read_bytes() for p in (root / paths.BLESSED_DIR).rglob("*") if p.is_file()}
    outcome = _promote(root)
    assert not outcome.promoted and any("accuracy vs blessed" in r for r in outcome.reasons)
    after = {p.relative_to(root): p.read_bytes() for p in (root / paths.BLESSED_DIR).rglob("*") if p.is_file()}
    assert after == before, "a failing gate must leave the blessed model untouched"
    assert "**failed**" in (root / paths.MODEL_CARD).read_text()


def test_first_failing_gate_writes_an_empty_pointer(prepared, worse_model, tmp_path):
    root = _stage_root(tmp_path, prepared[0], worse_model)
    metrics = _run(root, min_accuracy=0.9)
    assert metrics["accuracy"] < 0.9 and not metrics["gate"]["passed"]
    outcome = _promote(root)
    assert not outcome.promoted and outcome.reasons == [f"accuracy {metrics['accuracy']:.4f} < 0.9000"]
    assert json.loads((root / paths.BLESSED_POINTER).read_text())["blessed"] is False
    assert not (root / paths.BLESSED_MODEL).exists()


def test_promote_refuses_metrics_of_another_model(trained, tmp_path):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    _run(root)
    metrics = read_json(root / paths.METRICS, "evaluate")
    metrics["model"]["fingerprint"] = "0" * 64
    write_json(root / paths.METRICS, metrics)
    with pytest.raises(StageError, match="evaluated another model.*dvc repro evaluate"):
        _promote(root)
    assert not (root / paths.BLESSED_DIR).exists()
