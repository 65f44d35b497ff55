"""The Prefect API a command-line flow reports to: PREFECT_API_URL, or a temporary server that dies with it.

Without PREFECT_API_URL, Prefect would start its own temporary server (``SubprocessASGIServer``) and
stop it at exit; a flow killed by SIGTERM or SIGKILL runs no exit code, so that server (about
200 MB) stayed behind, orphaned. :func:`local_server`, the project's one way to start a server (for a
flow run, and with the UI for ``make serve``), runs ``python -m flows.server PORT PARENT``, which asks the
kernel to kill it when its parent dies (Linux's parent-death signal; elsewhere a thread that watches the
parent), and stops it when the ``with`` block ends.

Loopback always bypasses a proxy here (``no_proxy``), so ``http_proxy`` cannot send the flow's
calls to its own server elsewhere. A server that does not answer, at the start or mid-run, is one
line naming its URL: once a log record shows the connection lost, Prefect's own retries and
tracebacks (hundreds of lines) are not printed, and the run's error becomes that line. Stages the
flow recorded before stand; the one that was running is not recorded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tasks.errors import StageError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
START_SECONDS = 120.0  # a first start creates and migrates the SQLite database
PR_SET_PDEATHSIG = 1


def bypass_proxy_for_loopback() -> None:
    """Add the loopback names to ``no_proxy`` and ``NO_PROXY`` (keeping what they hold)."""
    for name in ("no_proxy", "NO_PROXY"):
        have = [h for h in os.environ.get(name, "").split(",") if h.strip()]
        os.environ[name] = ",".join(have + [h for h in LOOPBACK if h not in have])


def answers(api_url: str) -> bool:
    """Whether the Prefect API at ``api_url`` answers its health check (a server error is no answer)."""
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=5).status_code < 500
    except httpx.HTTPError:
        return False


def unreachable(api_url: str, temporary: bool = False) -> StageError:
    if temporary:
        return StageError(
            f"the temporary Prefect server at {api_url} stopped answering: stages recorded in dvc.lock so far "
            "stand; run the flow again"
        )
    return StageError(
        f"the Prefect API at {api_url} does not answer: start it (`make ui`) or unset PREFECT_API_URL "
        "to use a temporary one; stages recorded in dvc.lock so far stand, run the flow again"
    )


def lost_connection(exc: BaseException | None) -> bool:
    """Whether ``exc`` or an exception it was raised from is a failed HTTP connection."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, httpx.TransportError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class _SilentOnceLost(logging.Filter):
    """Passes records until the API is found lost; none after (the run's error says it, once).

    A warning or error is the first sign of a lost API (a refused connection, or a task that cannot
    get its state), so each one until then asks the API whether it still answers.
    """

    def __init__(self, api_url: str):
        super().__init__()
        self.api_url, self.lost = api_url, False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.lost and record.levelno >= logging.WARNING:
            exc = record.exc_info[1] if record.exc_info else None
            self.lost = lost_connection(exc) or not answers(self.api_url)
        return not self.lost


@contextmanager
def _one_line_if_lost(api_url: str, temporary: bool = False) -> Iterator[None]:
    """One line instead of what the run raises once the API at ``api_url`` is lost; else send what is queued."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {h for logger in loggers for h in getattr(logger, "handlers", [])}
    silent, raise_exceptions = _SilentOnceLost(api_url), logging.raiseExceptions
    logging.raiseExceptions = False  # Prefect's API log handler prints each send that fails otherwise
    for h in handlers:
        h.addFilter(silent)
    try:
        yield
    except Exception as exc:
        silent.lost = silent.lost or lost_connection(exc)
        if not silent.lost:
            raise
        raise unreachable(api_url, temporary) from None
    finally:
        if not silent.lost:  # lost: nothing more can be sent, and nothing more is said in this process
            _drain()
            logging.raiseExceptions = raise_exceptions
            for h in handlers:
                h.removeFilter(silent)


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use PREFECT_API_URL when it is set and answers; otherwise a temporary server, for the ``with`` block."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    bypass_proxy_for_loopback()
    url = PREFECT_API_URL.value()
    if url:
        if not answers(url):
            raise unreachable(url)
        with _one_line_if_lost(url):
            yield url
        return
    with local_server() as url, temporary_settings(updates={PREFECT_API_URL: url}), _one_line_if_lost(url, True):
        yield url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(port: int | None = None, full: bool = False) -> Iterator[str]:
    """A Prefect server on loopback that stops with this process, however it ends; its API URL.

    The project's one way to start a server. By default the API alone, on a free port, for one flow run;
    ``full``: with the UI and every service (the scheduler among them), on ``port``, for ``make serve``.
    """
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    print(f"Starting a Prefect server at {url} (it stops with this process)", file=sys.stderr)
    env = {**os.environ, "PREFECT_UI_ENABLED": "1" if full else "0"}
    command = [sys.executable, "-m", "flows.server", str(port), str(os.getpid()), *(["--full"] if full else [])]
    server = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not answers(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise StageError(f"the Prefect server at {url} did not start (exit code {server.poll()})")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _drain() -> None:
    """Send the logs and events still queued before the server stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def _die_with(parent: int) -> None:
    """Make this process end when ``parent`` does, however it ends."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)


def serve(port: int, parent: int, full: bool = False) -> None:
    """The server :func:`local_server` starts: Prefect's API (``full``: with the UI and every service) on
    loopback, until ``parent`` ends."""
    _die_with(parent)
    import uvicorn
    from prefect.server.api.server import create_app

    uvicorn.run(create_app(ephemeral=not full, final=True), host="127.0.0.1", port=port, log_level="error")


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), full="--full" in sys.argv[3:])
