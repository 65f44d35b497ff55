"""The shared error handling of the command-line entry points (the stages, ``flows.predict``).

Expected faults (bad params, bad data) print one clear line and exit 2, not a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tasks.files import StageError
from tasks.params import ParamsError


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; exit 2 with the message for bad params or an expected fault."""
    try:
        main()
    except (ParamsError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
