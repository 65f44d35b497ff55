"""Evaluate's quality report and the gate against the production model (tiny trained model)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from tasks import dataset, metrics, paths
from tasks.errors import StageError
from tasks.files import read_json, tree_hash, write_json
from tasks.inference import load_model, predict_split
from tasks.params.gate import GateParams
from tests.helpers.data import run_stage
from tests.helpers.production import put_in_production
from tests.helpers.repo import share_backbones
from tests.helpers.tiny_model import tiny_params

pytestmark = pytest.mark.slow


def _stage_root(tmp_path: Path, prepared_root: Path, model_dir: Path) -> Path:
    """A repository root holding the prepared data, its label audit and ``model_dir`` as models/model."""
    root = tmp_path / "repo"
    for rel in (paths.RAW_DIR, paths.VALIDATION_DIR, paths.PROCESSED_DIR, paths.FEATURES_DIR):
        shutil.copytree(prepared_root / rel, root / rel)
    (root / paths.LABEL_AUDIT).parent.mkdir(parents=True)
    shutil.copy2(prepared_root / paths.LABEL_AUDIT, root / paths.LABEL_AUDIT)
    shutil.copytree(model_dir, root / paths.MODEL_DIR)
    return root


def _run(root: Path) -> dict:
    return asdict(run_stage("evaluate", root, evaluate=tiny_params().evaluate).evaluation)


def _judge(root: Path, **gate_params):
    return run_stage("gate", root, gate=replace(GateParams(), **gate_params))


def _gate(root: Path) -> dict:
    return read_json(root / paths.GATE, "gate")


@pytest.fixture(scope="module")
def worse_model(prepared, tmp_path_factory) -> Path:
    """A clearly worse model of the same task: 1 epoch of the head at a tiny learning rate, no fine-tuning."""
    root, params = prepared
    other = tmp_path_factory.mktemp("worse")
    share_backbones(other)
    for rel in (paths.PROCESSED_DIR, paths.FEATURES_DIR):
        shutil.copytree(root / rel, other / rel)
    weak = replace(params, train=replace(params.train, epochs=1, fine_tune_epochs=0, learning_rate=1e-4))
    from tasks.train import STAGE

    STAGE.run(other, weak)
    return other / paths.MODEL_DIR


def _probabilities_of(rows: list[list[str]], positive: str) -> tuple:
    """True labels (1 = positive) and P(positive) from predictions.csv rows of a two-class model."""
    y = [int(r[1] == positive) for r in rows]
    p = [float(r[3]) if r[2] == positive else 1 - float(r[3]) for r in rows]
    return np.array(y), np.array(p)


def test_report_holds_intervals_calibration_slices_behaviour_and_a_card(trained, tmp_path):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    m = _run(root)
    _judge(root, min_accuracy=0.0)
    n = m["images"]
    assert m["accuracy_ci95"][0] <= m["accuracy"] <= m["accuracy_ci95"][1]
    for c in m["per_class"].values():
        assert c["recall_ci95"][0] <= c["recall"] <= c["recall_ci95"][1]
    # ECE and its bins, recomputed from predictions.csv (another output of the same pass)
    rows = [line.split(",") for line in (root / paths.PREDICTIONS).read_text().splitlines()[1:]]
    y, p_male = _probabilities_of(rows, "Male")
    ece, bins = metrics.calibration(y, np.stack([1 - p_male, p_male], axis=1), 10, positive=1)
    assert m["calibration"]["ece"] == pytest.approx(ece, abs=1e-5)
    assert [b["images"] for b in m["calibration"]["bins"]] == [b.images for b in bins]
    ts = m["calibration"]["temperature_scaling"]
    assert ts["validation_images"] == 100
    assert ts["test_ece_before"] == m["calibration"]["ece"]
    # the fitted temperature minimises Validation log loss: 10% either way is worse
    val = predict_split(
        load_model(root / paths.MODEL_DIR), dataset.shard_files(root / paths.PROCESSED_DIR, "Validation"), 64
    )

    def loss(t: float) -> float:
        return metrics.log_loss(val.y_true, metrics.apply_temperature(val.probs, t))

    t = ts["temperature"]
    assert loss(t) <= min(loss(t * 1.1), loss(t / 1.1))
    for kind in ("class", "brightness", "jpeg_size"):
        rows = [r for r in m["slices"] if r["slice"] == kind]
        assert sum(r["images"] for r in rows) == n, kind
        assert sum(r["images"] * r["accuracy"] for r in rows) == pytest.approx(m["accuracy"] * n), kind
    assert [b["colour"] for b in m["behaviour"]["blank"]] == ["black", "grey", "white", "red", "skin tone", "blue"]
    assert m["model"]["fingerprint"] == tree_hash(root / paths.MODEL_DIR)
    assert m["model"]["handle"] == "small_cnn"
    gate = _gate(root)
    assert gate["baseline"] is None
    assert [c["name"] for c in gate["checks"]] == ["accuracy"]
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
    assert source["sha256"] in card
    assert "synthetic face set (seed 11)" in card
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
    assert "not for any decision about a person" in card.lower()
    limitations = card.split("## Limitations")[1].split("## Licence")[0]
    assert "synthetic faces" in limitations and "not real people" in limitations  # the data it was trained on ...
    assert "CelebA" not in limitations and "celebrit" not in limitations  # ... not the Kaggle set's
    assert "| brightness |" in card
    assert "| jpeg_size |" in card


def test_gate_compares_with_the_production_model_and_never_changes_it(trained, worse_model, tmp_path):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)

    first = _run(root)
    assert _judge(root, min_accuracy=0.6).passed  # no model in production yet: the floor only
    assert _gate(root)["passed"]
    assert _gate(root)["baseline"] is None
    assert not (root / paths.PRODUCTION_DIR).exists()  # the gate never promotes
    # the DVC metrics file holds the headline numbers and the verdict only (one dvc exp show column each)
    slim = read_json(root / paths.METRICS, "gate")
    low, high = first["accuracy_ci95"]
    assert slim == {
        "acc": round(first["accuracy"], 4),
        "acc_lo": round(low, 4),
        "acc_hi": round(high, 4),
        "auc": round(first["roc_auc"], 4),
        "ece": round(first["calibration"]["ece"], 4),
        "gate": True,
        "logloss": round(first["log_loss"], 4),
        "recall": {name: round(m["recall"], 4) for name, m in first["per_class"].items()},
    }
    pointer = put_in_production(root)  # what make promote leaves

    # The worse candidate passes the floor (0) but falls more than max_regression below the production model.
    shutil.rmtree(root / paths.MODEL_DIR)
    shutil.copytree(worse_model, root / paths.MODEL_DIR)
    second = _run(root)
    before = {p.relative_to(root): p.read_bytes() for p in (root / paths.PRODUCTION_DIR).rglob("*") if p.is_file()}
    outcome = _judge(root, min_accuracy=0.0, max_regression=0.01)
    base = _gate(root)["baseline"]
    assert base["gating"]
    assert base["reason"] is None
    assert base["model"] == "model@v0.0.1"
    assert base["fingerprint"] == pointer.fingerprint == first["model"]["fingerprint"]
    assert base["trained_on"]["config"]["handle"] == "small_cnn"
    assert base["accuracy"] == pytest.approx(first["accuracy"])  # re-evaluated on the same Test images
    assert second["accuracy"] < first["accuracy"] - 0.01, "the weak model should be clearly worse"
    failed = {c["name"] for c in _gate(root)["checks"] if not c["passed"]}
    assert "accuracy vs production" in failed
    assert not _gate(root)["passed"]
    assert not outcome.passed
    assert any("accuracy vs production" in r for r in outcome.reasons)
    after = {p.relative_to(root): p.read_bytes() for p in (root / paths.PRODUCTION_DIR).rglob("*") if p.is_file()}
    assert after == before, "the gate must leave the production model untouched"
    assert "**failed**" in (root / paths.MODEL_CARD).read_text()


def test_a_production_model_from_another_dataset_does_not_gate_unless_the_policy_says_always(
    trained, worse_model, tmp_path
):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    _run(root)
    put_in_production(root)
    shutil.rmtree(root / paths.MODEL_DIR)
    shutil.copytree(worse_model, root / paths.MODEL_DIR)
    source = read_json(root / paths.SOURCE_FILE, "download")
    write_json(root / paths.SOURCE_FILE, {**source, "sha256": "f" * 64})  # the candidate's data is another dataset
    _run(root)

    assert not _judge(root, min_accuracy=0.0, baseline="always").passed  # the comparison decides
    assert "accuracy vs production" in {c["name"] for c in _gate(root)["checks"] if not c["passed"]}
    base = _gate(root)["baseline"]
    assert base["gating"]
    assert base["reason"].startswith("the production model was trained on another dataset")

    outcome = _judge(root, min_accuracy=0.0)  # same_data, the default: only the floor decides
    gate = _gate(root)
    assert outcome.passed
    assert gate["passed"]
    assert not gate["baseline"]["gating"]
    assert gate["baseline"]["reason"].startswith("the production model was trained on another dataset")
    shown = {c["name"]: c for c in gate["checks"] if c["difference"] is not None}
    assert not shown["accuracy vs production"]["passed"]
    assert shown["accuracy vs production"]["difference"] < -0.01
    card = (root / paths.MODEL_CARD).read_text()
    assert "Only the absolute floor decided: the production model was trained on another dataset" in card
    assert "FAIL (shown only)" in card


def test_a_production_model_on_another_backbone_download_does_not_gate(trained, worse_model, tmp_path):
    """The same URL handle serving other files later (a republished model) is another configuration."""
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    _run(root)
    put_in_production(root)
    shutil.rmtree(root / paths.MODEL_DIR)
    shutil.copytree(worse_model, root / paths.MODEL_DIR)
    info = root / paths.MODEL_DIR / paths.TRAINING_INFO_NAME
    write_json(info, {**read_json(info, "train"), "backbone_sha256": "e" * 64})
    _run(root)

    outcome = _judge(root, min_accuracy=0.0)
    gate = _gate(root)
    assert outcome.passed and gate["passed"]  # the floor decided
    assert not gate["baseline"]["gating"]
    assert gate["baseline"]["trained_on"]["config"]["backbone_sha256"] is None  # built-in
    assert (
        gate["baseline"]["reason"]
        == f"the production model has another configuration: backbone_sha256 None → {'e' * 64!r}"
    )
    assert "FAIL (shown only)" in (root / paths.MODEL_CARD).read_text()
    assert f"`{'e' * 64}`" in (root / paths.MODEL_CARD).read_text()


def test_a_failing_gate_says_why(prepared, worse_model, tmp_path):
    root = _stage_root(tmp_path, prepared[0], worse_model)
    metrics = _run(root)
    outcome = _judge(root, min_accuracy=0.9)
    assert metrics["accuracy"] < 0.9
    assert not _gate(root)["passed"]
    assert not outcome.passed
    assert outcome.reasons == [f"accuracy {metrics['accuracy']:.4f} < 0.9000"]
    assert not (root / paths.PRODUCTION_DIR).exists()


def test_a_changed_production_copy_is_refused_not_ignored(trained, tmp_path):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    _run(root)
    put_in_production(root)
    (root / paths.PRODUCTION_MODEL / "saved_model.pb").write_bytes(b"changed")
    with pytest.raises(StageError, match="not a whole copy .*not those of v0.0.1.*fetches it again from the registry"):
        _judge(root)


def test_the_gate_refuses_metrics_of_another_model(trained, tmp_path):
    prepared_root, _, result = trained
    root = _stage_root(tmp_path, prepared_root, result.model_dir)
    _run(root)
    metrics = read_json(root / paths.EVALUATION, "evaluate")
    metrics["model"]["fingerprint"] = "0" * 64
    write_json(root / paths.EVALUATION, metrics)
    with pytest.raises(StageError, match="evaluated another model.*dvc repro evaluate"):
        _judge(root)
    assert not (root / paths.GATE).exists()
