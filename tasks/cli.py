"""What every command-line entry point shares (``tasks.run``, ``tasks.doctor``, the flows).

Expected faults (bad params, bad data) print one clear line and exit 2, not a traceback. No stage
imports this module, so editing it reruns nothing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from tasks import quiet
from tasks.errors import ParamsError, StageError


def setup() -> None:
    """Set up a command-line process: TensorFlow's start-up lines silenced, the project's log lines to stderr."""
    quiet.install()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pipeline").setLevel(logging.INFO)


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; exit 2 with the message for bad params or an expected fault."""
    try:
        main()
    except (ParamsError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
