"""Every process a test session starts carries a tag in its environment, so what is still running at the end
is found, even after its parent died and it was handed to init."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

TAG_ENV = "PIPELINE_TEST_SESSION"


def tag_this_session() -> str:
    """Put a fresh tag in this process's environment, which every child inherits; the tag."""
    tag = f"{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[TAG_ENV] = tag
    return tag


def tagged(tag: str) -> dict[int, str]:
    """The live processes (but this one) whose environment holds ``tag``: pid -> command line."""
    found, needle = {}, f"{TAG_ENV}={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return {pid: cmd for pid, cmd in found.items() if _alive(pid) and not _ends_with_us(pid, cmd)}


def _ends_with_us(pid: int, cmd: str) -> bool:
    """multiprocessing's resource tracker of this very process: it ends when this process does."""
    try:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return parent == os.getpid() and "multiprocessing.resource_tracker" in cmd


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


def left_behind(tag: str, grace: float = 30.0) -> dict[int, str]:
    """What still runs with ``tag`` after ``grace`` seconds to end; killed, so that it does not outlive the run."""
    deadline = time.monotonic() + grace
    left = tagged(tag)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = tagged(tag)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left
