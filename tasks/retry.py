"""One retry policy for the network calls of the pipeline (the Kaggle dataset, a Hub backbone).

The stage's own retries are the only retry layer: Prefect does not retry a stage on top of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tasks.errors import StageError, logger

log = logger("retry")
T = TypeVar("T")

RETRY_DELAYS = (2.0, 5.0, 15.0)  # seconds between the attempts of a network call


class NetworkError(StageError):
    """The network failed after every retry."""


def with_retries(
    call: Callable[[], T],
    what: str,
    retryable: Callable[[BaseException], bool],
    delays: tuple[float, ...] = RETRY_DELAYS,
) -> T:
    """Run ``call``; an exception that ``retryable`` accepts is retried after each delay in ``delays``.

    Raises:
        NetworkError: the last attempt failed too; its message starts with ``what``.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            if not retryable(exc):
                raise
            if attempt > len(delays):
                raise NetworkError(
                    f"{what}: network error after {attempt} attempts ({type(exc).__name__}); "
                    "check the connection and rerun"
                ) from exc
            delay = delays[attempt - 1]
            log.warning("%s: %s on attempt %d; retrying in %.0f s", what, type(exc).__name__, attempt, delay)
            time.sleep(delay)
