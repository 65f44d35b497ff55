"""The shared command-line wrapper: expected faults print one clear line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tasks.files import StageError
from tasks.params import ParamsError


def run_cli(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; exit 2 with the message for bad params or an expected fault."""
    try:
        main()
    except (ParamsError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
