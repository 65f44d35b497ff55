"""``make experiments``: every experiment's headline metrics and only the params that differ, whole in 120 columns.

``dvc exp show`` puts every param and every dependency hash in a column; outside a pager (a script, a CI
log, a pipe) the table is squeezed to the terminal and every cell becomes ``…``. This keeps the
experiment's name, the headline metrics of ``reports/metrics.json`` (always) and the params whose value
differs between the rows shown (``--only-changed``), and drops the dependency hashes and the creation
time, so the table fits as it is, with no pager. Extra arguments go to ``dvc exp show`` (``-A``: the
experiments of every commit).
"""

from __future__ import annotations

import os
import subprocess
import sys

WIDTH = 120
HEADLINE = r"^(acc|acc_lo|acc_hi|auc|ece|gate|logloss|recall\..+)$"  # the columns of tasks.gate.headline
NOT_SHOWN = r"^(Created|bin/.+|data/.+|models/.+|reports/.+|tasks/.+)$"  # when, and dependency hashes


def command(*extra: str) -> list[str]:
    """The ``dvc exp show`` command line."""
    return [
        sys.executable,
        "-m",
        "dvc",
        "exp",
        "show",
        "--no-pager",
        "--only-changed",
        "--keep",
        HEADLINE,
        "--drop",
        NOT_SHOWN,
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the table at ``WIDTH`` columns; return dvc's exit status."""
    env = {**os.environ, "COLUMNS": str(WIDTH)}
    return subprocess.run(command(*(sys.argv[1:] if argv is None else argv)), env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
