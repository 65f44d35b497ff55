"""The shared command-line wrapper of the stages (``python -m tasks.<stage>``, as dvc.yaml runs them).

Expected faults (bad params, bad data) print one clear line and exit 2, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from tasks import paths
from tasks.files import StageError, setup_logging
from tasks.params import Params, ParamsError, load


def stage_params(argv: list[str] | None, doc: str | None) -> Params:
    """Parse ``--params`` (default params.yaml), set up logging and load the params."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--params", default=paths.PARAMS_FILE, help="params file (default: %(default)s)")
    args = parser.parse_args(argv)
    setup_logging()
    return load(args.params)


def run_cli(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; exit 2 with the message for bad params or an expected fault."""
    try:
        main()
    except (ParamsError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
