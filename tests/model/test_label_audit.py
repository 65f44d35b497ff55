"""The label audit: planted flips are found, clean labels are left alone, and train can leave the flagged out."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

from tasks import dataset, paths, reports
from tasks.reports import label_audit
from tasks.reports.label_audit import LabelAudit
from tasks.reports.training import TrainingInfo
from tasks.stages import BY_NAME
from tests.helpers.data import run_stage
from tests.helpers.tiny_model import prepare, tiny_params, train_at

pytestmark = pytest.mark.slow
# On 5% planted flips of the tiny set (480 / 100 / 100 at 48 px; 2026-12-03: precision 0.69, recall 0.97). The
# issue's goal, 0.8 for both, is for the demo-sized set: benchmarks/label_audit.py, BENCHMARKS.md row 12.
MIN_PRECISION, MIN_RECALL = 0.6, 0.8
MAX_CLEAN_SHARE = 0.02  # with no planted flips, at most this share of the labels is flagged (2026-12-03: 7 of 680)


def _flags(root) -> list[dict[str, str]]:
    with (root / paths.LABEL_ISSUES).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_with_no_planted_flips_almost_nothing_is_flagged(prepared):
    root, _ = prepared
    audit = reports.read(root / paths.LABEL_AUDIT, LabelAudit, "audit")
    assert audit.images == {"Train": 480, "Validation": 100, "Test": 100}
    flagged = sum(audit.total(split) for split in paths.SPLITS)
    assert flagged == len(_flags(root)) <= MAX_CLEAN_SHARE * 680
    assert (root / paths.LABEL_ISSUES_GRID).stat().st_size > 1000


def test_planted_flips_are_found_with_their_split_and_suggested_label(tmp_path):
    params = tiny_params()
    params = replace(params, data=replace(params.data, synthetic=replace(params.data.synthetic, label_noise=0.05)))
    prepare(tmp_path, params)
    with (tmp_path / paths.RAW_DIR / paths.NOISE_KEY_NAME).open(newline="", encoding="utf-8") as fh:
        planted = {r["path"].split("/", 1)[1]: r for r in csv.DictReader(fh)}
    assert len(planted) == 24 + 5 + 5
    flags = _flags(tmp_path)
    hits = [f for f in flags if f["path"] in planted]
    precision, recall = len(hits) / len(flags), len(hits) / len(planted)
    assert precision >= MIN_PRECISION, (precision, len(flags))
    assert recall >= MIN_RECALL, (recall, len(flags))
    for f in hits:  # the suggestion is the true label; the split is the file's
        assert (f["suggested_label"], f["split"]) == (planted[f["path"]]["true_label"], f["path"].split("/")[0])
    probabilities = [float(f["given_label_probability"]) for f in flags]
    assert probabilities == sorted(probabilities)  # most suspect first
    assert {f["split"] for f in hits} == {"Train", "Validation", "Test"}


def test_excluding_label_issues_leaves_the_flagged_train_images_out_of_both_phases(prepared, tmp_path):
    root, params = prepared
    issues = root / paths.LABEL_ISSUES
    flagged = label_audit.label_issue_paths(issues, "Train")
    assert flagged, "the tiny set has no flagged Train image to leave out"
    train_files = dataset.shard_files(root / paths.PROCESSED_DIR, "Train")
    seen = [
        p.decode()
        for _, _, names, _ in dataset.make_dataset(train_files, 16, 64, with_meta=True, exclude=frozenset(flagged))
        for p in names.numpy()
    ]
    assert len(seen) == 480 - len(flagged) and not flagged & set(seen)  # phase 2's input
    tuned = replace(params, train=replace(params.train, exclude_label_issues=True, epochs=1, fine_tune_epochs=1))
    result = train_at(tmp_path, root, tuned)
    info = reports.read(result.model_dir / paths.TRAINING_INFO_NAME, TrainingInfo, "train")
    assert info.train_images == 480 - len(flagged)  # phase 1's input
    assert np.isfinite(result.history[-1]["val_loss"])


def test_a_suspect_reviewed_and_kept_is_no_longer_listed(prepared, tmp_path):
    """data/reviewed_labels.csv (in git, a dep of audit) is how a person marks a suspect as correctly labelled."""
    root, params = prepared
    flagged = _flags(root)
    assert flagged, "the tiny set has no suspect to review"
    for rel in BY_NAME["audit"].deps.values():  # the audit's inputs, linked; its outputs its own
        if (root / rel).exists():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).symlink_to(root / rel)
    (tmp_path / paths.REVIEWED_LABELS).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / paths.REVIEWED_LABELS).write_text(f"path,note\n{flagged[0]['path']},checked by hand: right\n")
    run_stage("audit", tmp_path, audit=params.audit)
    assert [f["path"] for f in _flags(tmp_path)] == [f["path"] for f in flagged[1:]]
    summary = reports.read(tmp_path / paths.LABEL_AUDIT, LabelAudit, "audit")
    assert sum(summary.total(split) for split in paths.SPLITS) == len(flagged) - 1
