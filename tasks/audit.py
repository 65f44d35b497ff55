"""Stage ``audit``: the images whose given label the data itself contradicts (confident learning).

A light head (a standardised logistic regression) on the features stage's vectors is fitted K
times on Train + Validation, each time predicting the fold it did not see, so every image gets an
out-of-sample probability of each class. ``cleanlab.filter.find_label_issues`` then estimates the
joint distribution of given and true labels from those probabilities and flags the images most
likely to be labelled wrong, ranked by the probability of their given label. Test is audited too,
with a head fitted on all of Train + Validation, and is reported only: no stage trains on it, and
the model card says how many Test labels are suspect (they distort the gate's accuracy).

On real data, human review confirmed about half of confident learning's flags (Northcutt et al.,
NeurIPS 2021): the flags are suspects to look at, not verdicts. ``train.exclude_label_issues``
leaves the flagged Train images out of training when set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks import dataset, paths, reports
from tasks.contract import Output, Stage, StageResult
from tasks.errors import StageError, logger
from tasks.feature_files import SplitFeatures, load
from tasks.files import atomic_outputs, read_json, write_csv
from tasks.params.audit import AuditParams
from tasks.reports import label_audit
from tasks.reports.label_audit import LabelAudit

log = logger("audit")


@dataclass(frozen=True)
class Suspect:
    """One flagged image."""

    path: str
    split: str
    given: int
    suggested: int
    probability: float  # the out-of-sample probability of the given label


@dataclass(frozen=True)
class AuditResult(StageResult):
    """What the audit found."""

    report: LabelAudit


def _head(regularization: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=2000, random_state=seed))


def out_of_sample(x: np.ndarray, y: np.ndarray, params: AuditParams, class_names: list[str]) -> np.ndarray:
    """Class probabilities of each row from a head fitted on the other folds (stratified, seeded)."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=len(class_names))  # every class, also one with no image at all
    smallest = int(counts.argmin())
    if counts[smallest] < params.folds:
        raise StageError(
            f"audit.folds: {params.folds} folds need at least that many images of each class in Train + "
            f"Validation; {class_names[smallest]} has {counts[smallest]}. Lower audit.folds, or add images"
        )
    probs = np.zeros((len(y), len(class_names)))
    for fit_rows, held_out in StratifiedKFold(params.folds, shuffle=True, random_state=params.seed).split(x, y):
        probs[held_out] = (
            _head(params.regularization, params.seed).fit(x[fit_rows], y[fit_rows]).predict_proba(x[held_out])
        )
    return probs


def flagged(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Indices of the rows whose given label ``y`` the probabilities contradict, most suspect first."""
    from cleanlab.filter import find_label_issues

    if len(np.unique(y)) < probs.shape[1]:  # confident learning needs every class among the given labels
        return np.array([], dtype=int)
    return find_label_issues(y, probs, return_indices_ranked_by="self_confidence", n_jobs=1)


def suspects(rows: SplitFeatures, splits: list[str], probs: np.ndarray) -> list[Suspect]:
    """The flagged rows of ``rows`` (whose split names are ``splits``), most suspect first."""
    return [
        Suspect(rows.paths[i], splits[i], int(rows.y[i]), int(probs[i].argmax()), float(probs[i, rows.y[i]]))
        for i in flagged(rows.y, probs)
    ]


def _concat(parts: list[SplitFeatures]) -> SplitFeatures:
    return SplitFeatures(
        np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), [n for p in parts for n in p.paths]
    )


def audit_splits(by_split: dict[str, SplitFeatures], params: AuditParams, class_names: list[str]) -> list[Suspect]:
    """Every split's suspects: Train and Validation by cross-validation, Test by a head on both."""
    fitted = [s for s in paths.SPLITS if s != "Test"]
    both = _concat([by_split[s] for s in fitted])
    names = [s for s in fitted for _ in by_split[s].paths]
    found = suspects(both, names, out_of_sample(both.x, both.y, params, class_names))
    test = by_split["Test"]
    test_probs = _head(params.regularization, params.seed).fit(both.x, both.y).predict_proba(test.x)
    found += suspects(test, ["Test"] * len(test.paths), test_probs)
    return sorted(found, key=lambda s: (s.probability, s.path))


def grid(images: list[tuple[np.ndarray, str]], out: Path) -> None:
    """The top suspects in a grid, each captioned with its given and suggested label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(8, max(1, len(images)))
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (image, caption) in zip(axes.flat, images):
        ax.imshow(image)
        ax.set_title(caption, fontsize=7)
    if not images:
        axes[0, 0].text(0.5, 0.5, "no label issues found", ha="center", va="center")
    fig.suptitle("Label suspects: given label, suggested label, P(given)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def _images_of(processed: Path, wanted: list[Suspect]) -> dict[str, np.ndarray]:
    """The decoded images of the wanted suspects, read from the shards."""
    where = {s.path: s.split for s in wanted}
    found: dict[str, np.ndarray] = {}
    for split in sorted(set(where.values())):
        files = dataset.shard_files(processed, split)
        for images, _, names, _ in dataset.make_dataset(files, 128, 64, with_meta=True):
            for image, name in zip(images.numpy(), names.numpy()):
                if name.decode() in where:
                    found[name.decode()] = image
    return found


def audit(
    features_dir: Path,
    processed: Path,
    reviewed: Path,
    label_issues: Path,
    summary: Path,
    picture: Path,
    params: AuditParams,
) -> AuditResult:
    """Flag the suspect labels of every split and write the list, the counts and the picture.

    Args:
        features_dir: the features stage's output.
        processed: the preprocess output (class names; the suspects' images for the picture).
        reviewed: ``data/reviewed_labels.csv``: suspects a person checked and kept, left out of the list.
        label_issues, summary, picture: the outputs (``reports/label_issues.csv``, ``label_audit.json``,
            ``label_issues.png``), replaced together.
        params: the ``audit`` section.
    """
    class_names = read_json(processed / paths.CLASS_NAMES_NAME, "preprocess")
    by_split = {split: load(features_dir, split) for split in paths.SPLITS}
    found = audit_splits(by_split, params, class_names)
    kept = label_audit.reviewed_paths(reviewed)
    if kept:
        log.info("%d suspects reviewed and kept in %s are not listed", sum(s.path in kept for s in found), reviewed)
        found = [s for s in found if s.path not in kept]
    counts = {
        split: {name: sum(1 for s in found if s.split == split and s.given == k) for k, name in enumerate(class_names)}
        for split in paths.SPLITS
    }
    report = LabelAudit(
        images={split: len(f.paths) for split, f in by_split.items()},
        flagged=counts,
        folds=params.folds,
    )
    top = found[: params.grid_images]
    pictures = _images_of(processed, top) if top else {}
    outputs = [label_issues, summary, picture]
    with atomic_outputs(outputs) as tmp:
        write_csv(
            tmp / label_issues.name,
            label_audit.LABEL_ISSUE_COLUMNS,
            ([s.path, s.split, class_names[s.given], class_names[s.suggested], f"{s.probability:.6f}"] for s in found),
        )
        reports.write(tmp / summary.name, report)
        captions = [  # given -> suggested label, and the probability of the given one
            (
                pictures[s.path],
                f"{s.split}: {class_names[s.given]} -> {class_names[s.suggested]}\n{s.probability:.2f}",
            )
            for s in top
        ]
        grid(captions, tmp / picture.name)
    for split in paths.SPLITS:
        log.info(
            "%s: %d of %d labels flagged %s", split, sum(counts[split].values()), report.images[split], counts[split]
        )
    return AuditResult(report=report)


STAGE = Stage(
    "audit",
    audit,
    deps={"features_dir": paths.FEATURES_DIR, "processed": paths.PROCESSED_DIR, "reviewed": paths.REVIEWED_LABELS},
    outs={
        "label_issues": Output(paths.LABEL_ISSUES),
        "summary": Output(paths.LABEL_AUDIT),
        "picture": Output(paths.LABEL_ISSUES_GRID),
    },
    params={"params": "audit"},
)
