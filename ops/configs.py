"""``python -m ops.configs demo|kaggle`` (``make use-demo``, ``make use-kaggle``): switch params.yaml between the
embedded default (the committed params.yaml) and the real configuration (``configs/kaggle.yaml``).

A params.yaml with edits of the user's own (neither of the two) is never overwritten: it is refused in one
line that says how to keep them.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from tasks.cli import run_cli
from tasks.errors import StageError
from tasks.paths import PARAMS_FILE

KAGGLE = "configs/kaggle.yaml"


def committed(root: Path) -> str:
    """The committed params.yaml (git's HEAD): the embedded default."""
    done = subprocess.run(["git", "show", f"HEAD:{PARAMS_FILE}"], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise StageError(f"{PARAMS_FILE}: no committed version to go back to ({done.stderr.strip()})")
    return done.stdout


def switch(to: str, root: Path = Path(".")) -> str:
    """Write the ``to`` configuration ("demo" or "kaggle") into params.yaml; the line that says what was done."""
    params, default, real = root / PARAMS_FILE, committed(root), (root / KAGGLE).read_text(encoding="utf-8")
    now = params.read_text(encoding="utf-8") if params.is_file() else default
    if now not in (default, real):
        raise StageError(
            f"{PARAMS_FILE} has edits of your own; keep them first (git commit {PARAMS_FILE}, or cp {PARAMS_FILE} "
            f"my-params.yaml), then run make use-{to} again"
        )
    params.write_text(default if to == "demo" else real, encoding="utf-8")
    return f"{PARAMS_FILE}: the {'embedded default' if to == 'demo' else f'real configuration ({KAGGLE})'}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("to", choices=("demo", "kaggle"))
    print(switch(parser.parse_args(argv).to))


if __name__ == "__main__":
    run_cli(main)
