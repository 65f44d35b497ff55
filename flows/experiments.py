"""``make experiments``: every experiment's headline metrics and only the params that differ, whole in 120 columns.

``dvc exp show`` puts every param and every dependency hash in a column; outside a pager (a script, a CI
log, a pipe) it squeezes the table to the terminal until every cell reads ``…``. This reads the same rows
from ``dvc exp show --json`` and prints two small tables: the headline metrics of ``reports/metrics.json``
(the columns ``tasks.verdict.headline`` writes, ``gate`` the quality gate's verdict) for each row with
``Δacc``, its accuracy minus its commit's (the baseline: the metrics file is in git, so a fresh clone has
it), then only the params whose value differs between the rows. Extra arguments go to ``dvc exp show``
(``-A``: the experiments of every commit).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from tasks import paths

HEADLINE = ("acc", "acc_lo", "acc_hi", "auc", "ece", "gate", "logloss")  # then recall.<class>, as in dvc exp show


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 3}}`` as ``{"train.epochs": 3}``."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return out


def rows(shown: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """``(name, metrics, params, baseline metrics)`` per row of ``dvc exp show --json``: each commit, then its
    experiments, whose baseline is that commit's metrics."""

    def _values(entry: dict[str, Any], kind: str, file: str) -> dict[str, Any]:
        data = entry.get("data") or {}
        return _flat(((data.get(kind) or {}).get(file) or {}).get("data") or {})

    def label(entry: dict[str, Any]) -> str:  # "workspace", a branch or experiment name, or a short sha
        rev = entry["rev"]
        return entry.get("name") or (rev[:7] if len(rev) == 40 else rev)

    for i, commit in enumerate(shown):
        revs = [(label(commit), commit)]
        for experiment in commit.get("experiments") or []:
            revs += [(f"└ {label(rev)}", rev) for rev in experiment.get("revs") or []]
        # the workspace is compared with the commit it sits on (the next row), an experiment with its commit
        base = shown[i + 1] if commit["rev"] == "workspace" and i + 1 < len(shown) else commit
        baseline = _values(base, "metrics", paths.METRICS)
        for name, entry in revs:
            metrics = _values(entry, "metrics", paths.METRICS)
            yield name, metrics, _values(entry, "params", paths.PARAMS_FILE), baseline


def delta(metrics: dict[str, Any], baseline: dict[str, Any], key: str = "acc") -> str:
    """``metrics[key] - baseline[key]`` with its sign; ``-`` when either is missing."""
    if not isinstance(metrics.get(key), float | int) or not isinstance(baseline.get(key), float | int):
        return "-"
    return f"{metrics[key] - baseline[key]:+.4f}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def table(header: list[str], body: list[list[Any]]) -> str:
    """Columns as wide as their widest cell, two spaces apart."""
    cells = [header, *([_cell(v) for v in row] for row in body)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def render(shown: list[dict[str, Any]]) -> str:
    """The headline table and, when any param differs between the rows, the params table."""
    found = list(rows(shown))
    recalls = sorted({k for _, m, _, _ in found for k in m if k.startswith("recall.")})
    columns = [*HEADLINE, *recalls]
    body = [[name, *(m.get(c) for c in columns), delta(m, base)] for name, m, _, base in found]
    text = table(["experiment", *columns, "Δacc"], body)
    keys = sorted({k for _, _, p, _ in found for k in p})
    changed = [k for k in keys if len({json.dumps(p.get(k)) for _, _, p, _ in found}) > 1]
    if changed:
        text += "\n\n" + table(
            ["experiment", *changed], [[name, *(p.get(k) for k in changed)] for name, _, p, _ in found]
        )
    return text


def main(argv: list[str] | None = None) -> int:
    """Print the tables; return dvc's exit status when it fails."""
    extra = sys.argv[1:] if argv is None else argv
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json", *extra], capture_output=True, text=True
    )
    if done.returncode:
        print(done.stderr, file=sys.stderr, end="")
        return done.returncode
    print(render(json.loads(done.stdout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
