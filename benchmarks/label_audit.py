"""Label audit: precision and recall of the flags against the synthetic set's answer key, and what excluding them does.

For each ``data.synthetic.label_noise`` (0, 2% and 5% of every split given the other label), the
pipeline runs from download to the audit on the demo-sized set (2,400 / 400 / 400, the pretrained
``small_cnn``), and the flags in ``reports/label_issues.csv`` are compared with
``data/raw/label_noise_key.csv``, which no stage reads. At 5% the model is then trained and
evaluated twice, with ``train.exclude_label_issues`` false and true, and each Test accuracy is
measured on the true labels (the answer key undoes the flips in Test).

``--kaggle-scale`` times the audit alone at the real configuration's size instead: 182,598 Train +
Validation and 20,001 Test vectors of 2,048 floats (ResNet50 v2's feature size) drawn with a linear
class signal, 5 folds: what the audit adds to a real run, since its features are the ones phase 1
needs anyway.

``python -m benchmarks.label_audit`` (about 5 minutes on 2 cores); ``--small`` is a smoke test.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import save
from tasks import paths
from tasks.params.config import Params, load
from tasks.stages import BY_NAME, run_through
from tests.helpers.repo import share_backbones

NOISE = (0.0, 0.02, 0.05)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def score(root: Path) -> dict:
    """Precision and recall of the audit's flags against the answer key, over all splits and per split."""
    key_file = root / paths.RAW_DIR / paths.NOISE_KEY_NAME
    truth = {r["path"].split("/", 1)[1] for r in _rows(key_file)} if key_file.exists() else set()
    flags = {r["path"]: r["split"] for r in _rows(root / paths.LABEL_ISSUES)}

    def pr(split: str | None) -> dict:
        found = {p for p, s in flags.items() if split in (None, s)}
        planted = {p for p in truth if split in (None, p.split("/")[0])}
        hits = len(found & planted)
        return {
            "flagged": len(found),
            "planted": len(planted),
            "true_flags": hits,
            "precision": round(hits / len(found), 3) if found and planted else None,
            "recall": round(hits / len(planted), 3) if planted else None,
        }

    return {"all": pr(None), **{split: pr(split) for split in paths.SPLITS}}


def true_test_accuracy(root: Path) -> float:
    """Test accuracy of the evaluated model on the true labels (the key's flips in Test undone)."""
    key_file = root / paths.RAW_DIR / paths.NOISE_KEY_NAME
    truth = {r["path"].split("/", 1)[1]: r["true_label"] for r in _rows(key_file)} if key_file.exists() else {}
    rows = _rows(root / paths.PREDICTIONS)
    right = sum(r["predicted_label"] == truth.get(r["path"], r["true_label"]) for r in rows)
    return round(right / len(rows), 4)


def run(params: Params, train_twice: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        share_backbones(root)  # small_cnn is pretrained once, not once per run
        start = time.perf_counter()
        run_through("audit", root, params)
        result = {"seconds_to_audit": round(time.perf_counter() - start, 1), **score(root)}
        if train_twice:
            for exclude in (False, True):
                tuned = replace(params, train=replace(params.train, exclude_label_issues=exclude))
                for stage in ("train", "evaluate"):
                    BY_NAME[stage].run(root, tuned)
                result[f"test_accuracy_on_true_labels_exclude_{str(exclude).lower()}"] = true_test_accuracy(root)
    return result


def kaggle_scale(rows: int = 182_598, test: int = 20_001, size: int = 2048) -> dict:
    """Seconds of the audit's computation (K-fold fits, the Test fit, confident learning) at the Kaggle set's size."""
    import numpy as np

    from tasks.audit import audit_splits
    from tasks.feature_files import SplitFeatures

    rng = np.random.default_rng(0)
    direction = rng.normal(size=size).astype(np.float32) / np.sqrt(size)

    def split(n: int, prefix: str) -> SplitFeatures:
        y = (rng.random(n) < 0.42).astype(np.int64)
        x = rng.normal(size=(n, size)).astype(np.float32) + np.outer(2 * y - 1, direction * 6)
        return SplitFeatures(x.astype(np.float32), y, [f"{prefix}/{i}" for i in range(n)])

    by_split = {
        "Train": split(rows - 22_598, "Train"),
        "Validation": split(22_598, "Validation"),
        "Test": split(test, "Test"),
    }
    start = time.perf_counter()
    found = audit_splits(by_split, load().audit, ["Female", "Male"])  # label 1 is the 42% share: Male
    return {
        "vectors": rows + test,
        "size": size,
        "seconds": round(time.perf_counter() - start, 1),
        "flagged": len(found),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quarter of the demo's set, no training")
    parser.add_argument("--kaggle-scale", action="store_true", help="only time the audit at the Kaggle set's size")
    parser.add_argument("--name", default="label_audit")
    args = parser.parse_args(argv)
    if args.kaggle_scale:
        result = {"kaggle_scale": kaggle_scale()}
        save(f"{args.name}_kaggle_scale", result, small=args.small)
        return result
    base = load()  # the demo's params.yaml
    syn = base.data.synthetic
    if args.small:
        syn = replace(syn, train=syn.train // 4, validation=syn.validation // 4, test=syn.test // 4)
    results = {}
    for noise in NOISE:
        params = replace(base, data=replace(base.data, synthetic=replace(syn, label_noise=noise)))
        results[str(noise)] = run(params, train_twice=noise == NOISE[-1] and not args.small)
    result = {
        "params": {"splits": [syn.train, syn.validation, syn.test], "audit": vars(base.audit)},
        "by_label_noise": results,
    }
    save(args.name, result, small=args.small)
    return result


if __name__ == "__main__":
    main()
