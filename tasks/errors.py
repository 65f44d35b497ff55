"""The project's expected faults and its loggers: one home for both.

An expected fault (bad params, bad data, a refused download) is raised as one of these errors, whose
message says what was wrong, where (file or key) and what to do; the entry points print it as one
line and exit 2 (``tasks.cli.run_cli``), never a traceback.
"""

from __future__ import annotations

import logging


class StageError(RuntimeError):
    """An expected fault; the message says what was wrong, where, and what to do."""


class ParamsError(ValueError):
    """A bad value in params.yaml; the message names the key and what to do."""


def shown(name: object) -> str:
    """A file name as messages print it: as it is when printable, escaped (``repr``) when not.

    A name holding a newline, a tab or another control character would otherwise break the one-line
    message (or the tab-separated output of predict) and hide what the file is called.
    """
    text = str(name)
    return text if text.isprintable() else repr(text)


def logger(name: str) -> logging.Logger:
    """The stage's logger. Under Prefect the flow adds a handler that forwards it to the run logs."""
    return logging.getLogger(f"pipeline.{name}")
