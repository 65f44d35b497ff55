"""The audit stage's reports: ``reports/label_audit.json`` and the columns of ``reports/label_issues.csv``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.errors import StageError


@dataclass(frozen=True)
class LabelAudit:
    """What the label audit found: images and flagged labels per split (and given class)."""

    images: dict[str, int]
    flagged: dict[str, dict[str, int]]  # split -> given class -> labels flagged
    folds: int
    method: str = "cleanlab.filter.find_label_issues on out-of-sample probabilities of a logistic regression"
    version: int = 1

    def total(self, split: str) -> int:
        """Labels flagged in ``split``."""
        return sum(self.flagged.get(split, {}).values())


# reports/label_issues.csv, most suspect first
LABEL_ISSUE_COLUMNS = ["path", "split", "given_label", "suggested_label", "given_label_probability"]


def label_issue_paths(path: Path, split: str) -> set[str]:
    """The dataset paths of ``split``'s flagged images in the audit's ``label_issues.csv``."""
    import csv

    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != LABEL_ISSUE_COLUMNS:
                raise StageError(f"{path}: columns {reader.fieldnames}, expected {LABEL_ISSUE_COLUMNS}; rerun audit")
            return {row["path"] for row in reader if row["split"] == split}
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run the audit stage first (dvc repro audit)") from None


# data/reviewed_labels.csv (in git): the suspects a person looked at and found correctly labelled
REVIEWED_COLUMNS = ["path", "note"]


def reviewed_paths(path: Path) -> set[str]:
    """The dataset paths in the reviewed-labels file, which the audit no longer lists (none without the file)."""
    import csv

    if not Path(path).is_file():
        return set()
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or reader.fieldnames[0] != "path":
            raise StageError(f"{path}: the first column must be 'path' (columns: {', '.join(REVIEWED_COLUMNS)})")
        return {row["path"] for row in reader if row["path"]}
