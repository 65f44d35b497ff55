"""A backbone downloaded from TF Hub or Kaggle Models by the real clients, bounded and checked.

A TF Hub URL goes through tensorflow_hub's own resolver; ``kaggle:OWNER/MODEL/FRAMEWORK/VARIATION/VERSION``
through ``kagglehub.model_download`` with the user's Kaggle credentials. Around them this module adds
a timeout on every network read (``model.download_timeout_s``) with the download stage's retry policy;
one line, saying what to do, for each answer retrying cannot fix (401/403, 404, an HTML page, an archive
without ``saved_model.pb``); and the unpacked tree's sha256, recorded at the first download and checked
at every use, so a damaged cache is set aside and downloaded again. Processes sharing a cache take turns.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tasks.errors import StageError, logger
from tasks.files import tree_hash
from tasks.params.model import KAGGLE_PREFIX
from tasks.retry import RETRY_DELAYS, NetworkError, with_retries

log = logger("hub")
GZIP_MAGIC = b"\x1f\x8b"


def _kaggle(handle: str) -> bool:
    return handle.startswith(KAGGLE_PREFIX)


def _cache_env(handle: str) -> str:
    return "KAGGLEHUB_CACHE" if _kaggle(handle) else "TFHUB_CACHE_DIR"


def cache_folder(handle: str) -> Path:
    """Where the client unpacks ``handle`` (kagglehub's rule for a Kaggle handle, tensorflow_hub's for a URL)."""
    root = Path(os.environ[_cache_env(handle)])
    if _kaggle(handle):
        return root / "models" / handle.removeprefix(KAGGLE_PREFIX)
    return root / hashlib.sha1(handle.encode("utf8")).hexdigest()


def _unfinished(handle: str, folder: Path) -> bool:
    """A Kaggle download that has not written kagglehub's completion marker yet (kagglehub resumes it)."""
    return _kaggle(handle) and not folder.with_name(f"{folder.name}.complete").is_file()


def _record_path(folder: Path) -> Path:
    return folder.with_name(folder.name + ".tree.json")


def _problem(folder: Path) -> str | None:
    """Why a cached folder cannot be used, or None; a folder with no record yet (pre-seeded) is recorded."""
    if not (folder / "saved_model.pb").is_file():
        return "holds no saved_model.pb"
    record, now = _record_path(folder), tree_hash(folder)
    if not record.is_file():
        _write_record(folder, now)
        return None
    then = json.loads(record.read_text())["tree_sha256"]
    return None if now == then else f"no longer matches its first download (tree sha256 {now[:12]}, was {then[:12]})"


def _write_record(folder: Path, tree: str) -> None:
    staged = _record_path(folder).with_suffix(f".tmp-{os.getpid()}")
    staged.write_text(json.dumps({"tree_sha256": tree}) + "\n")
    staged.replace(_record_path(folder))


def _set_aside(folder: Path) -> Path:
    n = 1
    while folder.with_name(f"{folder.name}.bad-{n}").exists():
        n += 1
    aside = folder.with_name(f"{folder.name}.bad-{n}")
    folder.rename(aside)
    _record_path(folder).unlink(missing_ok=True)
    return aside


def _ways_out(handle: str) -> str:
    return (
        f"pre-seed the cache (unpack the model into {cache_folder(handle)}; {_cache_env(handle)} sets the "
        "folder it is under) or set model.handle to a local SavedModel folder"
    )


def _archive_url(handle: str) -> str:
    """The URL the resolver asks for: the handle with ``tf-hub-format=compressed`` added."""
    parts = urllib.parse.urlsplit(handle)
    query = urllib.parse.parse_qsl(parts.query) + [("tf-hub-format", "compressed")]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _not_an_archive(handle: str, timeout_s: float) -> Exception:
    """The resolver said "does not appear to be a valid module": look at what the URL serves.

    A gzip start means the archive was cut short (retried); anything else gets its own line.
    """
    try:
        with urllib.request.urlopen(_archive_url(handle), timeout=timeout_s) as response:
            kind, head = response.headers.get_content_type(), response.read(512)
    except urllib.error.HTTPError as exc:
        return _http_error(handle, exc.code, exc.reason)
    except OSError as exc:  # URLError, a timeout, a reset: the network, not the answer
        return ConnectionError(str(exc))
    if head.startswith(GZIP_MAGIC):
        return ConnectionError("the archive ended before its last byte")
    if kind == "text/html" or head.lstrip().startswith(b"<"):
        return StageError(
            f"backbone {handle}: the server answered with an HTML page ({kind}), not a model archive: a proxy's "
            f"or a login page, or a URL that is not a model's; check the URL in a browser, or {_ways_out(handle)}"
        )
    return StageError(f"backbone {handle}: the server answered {kind}, not a gzip tarball; {_ways_out(handle)}")


def _http_error(handle: str, code: int, reason: str) -> Exception:
    if code in (408, 429) or code >= 500:
        return ConnectionError(f"HTTP {code}")
    if code in (401, 403) and _kaggle(handle):
        return StageError(
            f"backbone {handle}: HTTP {code}, Kaggle refused the download: check your Kaggle credentials (as for "
            "the dataset: KAGGLE_USERNAME and KAGGLE_KEY, or ~/.kaggle/kaggle.json) and accept the model's terms "
            f"on its Kaggle page; or {_ways_out(handle)}"
        )
    if code in (401, 403):
        return StageError(
            f"backbone {handle}: HTTP {code}, the model host refused the download (Kaggle Models serves "
            f"archives from signed URLs that expire; some need accepted terms): try again later, or {_ways_out(handle)}"
        )
    if code == 404:
        return StageError(f"backbone {handle}: HTTP 404, no such model; check model.handle")
    return StageError(f"backbone {handle}: HTTP {code} {reason}; {_ways_out(handle)}")


def kaggle_download_child(ref: str, again: bool, outcome_file: str) -> None:
    """One ``kagglehub.model_download``, in the child process :func:`_kaggle_once` watches; its outcome as JSON."""
    import kagglehub
    import requests

    try:
        outcome = {"path": kagglehub.model_download(ref, force_download=again)}
    except requests.HTTPError as exc:  # kagglehub's KaggleApiHTTPError among them
        outcome = {"status": exc.response.status_code, "reason": exc.response.reason}
    except json.JSONDecodeError as exc:  # an answer that is not the API's: a proxy's or a login page
        outcome = {"not_json": str(exc)}
    except requests.RequestException as exc:  # refused, a connection closed mid-file
        outcome = {"network": f"{type(exc).__name__}: {exc}"}
    Path(outcome_file).write_text(json.dumps(outcome))


_CHILD = "import sys; from tasks.hub import kaggle_download_child as d; d(sys.argv[1], sys.argv[2] == '1', sys.argv[3])"


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _bytes_received(pid: int) -> int:
    """What the open TCP sockets of process ``pid`` have received (the kernel's tcp_info, read by iproute2's
    ``ss``); 0 where ``ss`` is missing, and then only the bytes on disk show progress."""
    ss = shutil.which("ss")
    if ss is None:
        return 0
    out = subprocess.run([ss, "-tinpH"], capture_output=True, text=True, check=False).stdout
    sockets = re.split(r"\n(?=\S)", out)  # one block per socket: its line, then its indented tcp_info
    return sum(int(n) for s in sockets if f"pid={pid}," in s for n in re.findall(r"bytes_received:(\d+)", s))


def _kaggle_once(handle: str, timeout_s: float, again: bool) -> Path:
    """One attempt of ``kagglehub.model_download`` (``again``: the cached copy was set aside).

    kagglehub's requests have no read timeout, so it runs in a child process, killed when no byte
    has arrived for ``timeout_s`` (a stalled API call or file). Bytes arriving count, not only bytes on
    disk: kagglehub writes a file 1 MiB at a time, so a slow download that keeps delivering is never killed.
    """
    folder, repo = cache_folder(handle), Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        outcome_file = Path(tmp) / "outcome.json"
        ref, flag = handle.removeprefix(KAGGLE_PREFIX), "1" if again else "0"
        child = subprocess.Popen([sys.executable, "-c", _CHILD, ref, flag, str(outcome_file)], env=env)
        seen, since = (-1, -1), time.monotonic()
        while child.poll() is None:
            size = (_bytes_under(folder), _bytes_received(child.pid))
            if size != seen:
                seen, since = size, time.monotonic()
            elif time.monotonic() - since > timeout_s:
                child.kill()
                child.wait()
                raise TimeoutError(f"no byte arrived in {timeout_s:g} s")
            time.sleep(min(0.2, timeout_s / 5))
        if not outcome_file.is_file():
            raise StageError(f"backbone {handle}: kagglehub stopped (exit status {child.returncode}); see above")
        outcome = json.loads(outcome_file.read_text())
    if "status" in outcome:
        raise _http_error(handle, outcome["status"], outcome["reason"])
    if "not_json" in outcome:
        raise StageError(
            f"backbone {handle}: the Kaggle API answered with something that is not JSON (a proxy's or a login "
            f"page?): check your proxy settings, or {_ways_out(handle)}"
        )
    if "network" in outcome:
        raise ConnectionError(outcome["network"])
    return Path(outcome["path"])


def _resolve_once(handle: str, timeout_s: float, again: bool = False) -> Path:
    """One attempt of tensorflow_hub's resolver (it downloads afresh what is not cached), reads bounded."""
    import http.client

    import tensorflow_hub as hub

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # urlopen without a timeout uses the default
    try:
        return Path(hub.resolve(handle))
    except urllib.error.HTTPError as exc:
        raise _http_error(handle, exc.code, exc.reason) from exc
    except urllib.error.URLError as exc:  # refused, no route, DNS, a timeout before the answer
        raise ConnectionError(str(exc.reason)) from exc
    except http.client.HTTPException as exc:  # a connection closed mid-answer
        raise ConnectionError(type(exc).__name__) from exc
    except OSError as exc:
        if "does not appear to be a valid module" in str(exc):
            raise _not_an_archive(handle, timeout_s) from exc
        raise
    finally:
        socket.setdefaulttimeout(previous)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


@contextlib.contextmanager
def one_at_a_time(root: Path) -> Iterator[None]:
    """An exclusive lock on the folder ``root``, made if missing (``flock`` on the folder itself: a cache locks
    its own folder, so no lock file stays)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def fetch(handle: str, timeout_s: float) -> Path:
    """The local SavedModel folder of a URL or Kaggle ``handle``: the checked cache, or a fresh download.

    Two processes (two workers) fetching from one cache take turns: the second finds the first's
    checked download.

    Raises:
        StageError: one line naming the handle and what to do (see the module docstring).
    """
    with one_at_a_time(Path(os.environ[_cache_env(handle)])):
        return _fetch(handle, timeout_s)


def _fetch(handle: str, timeout_s: float) -> Path:
    folder, again = cache_folder(handle), False
    if folder.is_dir() and any(folder.iterdir()) and not _unfinished(handle, folder):
        problem = _problem(folder)
        if problem is None:
            return folder
        aside, again = _set_aside(folder), True
        log.warning(
            "backbone %s: the cached copy %s %s; set aside as %s, downloading again",
            handle,
            folder,
            problem,
            aside,
        )
    once = _kaggle_once if _kaggle(handle) else _resolve_once
    try:
        local = with_retries(lambda: once(handle, timeout_s, again), f"backbone {handle}", _retryable)
    except NetworkError as exc:
        cause = exc.__cause__
        raise StageError(
            f"backbone {handle}: could not download it ({type(cause).__name__}: {cause}, {timeout_s:g} s timeout per "
            f"read, {len(RETRY_DELAYS) + 1} attempts); without network, {_ways_out(handle)}"
        ) from None
    if not (local / "saved_model.pb").is_file():
        aside = _set_aside(local)
        raise StageError(
            f"backbone {handle}: the download holds no saved_model.pb at its top (set aside as {aside}): not a "
            f"TF2 SavedModel; use the handle of a TF2 model, or {_ways_out(handle)}"
        )
    if not _record_path(local).is_file():
        _write_record(local, tree_hash(local))
    log.info("backbone %s: downloaded into %s", handle, local)
    return local
