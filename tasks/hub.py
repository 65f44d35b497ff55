"""A TF Hub / Kaggle Models URL handle, downloaded by tensorflow_hub's own resolver, bounded and checked.

tensorflow_hub (0.16) downloads a URL handle (adding ``?tf-hub-format=compressed``) into
``TFHUB_CACHE_DIR/<sha1 of the handle>``, and later trusts any non-empty folder there. Around that
resolver, unchanged, this module adds:

* a timeout on every network read (``model.download_timeout_s``; the resolver's ``urlopen`` has none,
  so a stalled server hung the train stage for ever) and the download stage's retry policy
  (``tasks.retry``) for stalls and dropped connections;
* one line for each answer that retrying cannot fix, saying what to do: refused (401/403), not found
  (404), an HTML page (a proxy's or a login page) and an archive without ``saved_model.pb``;
* the unpacked tree's sha256, recorded at the first download (``<folder>.tree.json``) and checked on
  every later use: a cached folder that no longer matches, or holds no ``saved_model.pb``, is set
  aside (``<folder>.bad-N``) with a line saying so, and downloaded again.

The resolver's own lock file and temporary folder keep two concurrent downloads of one handle apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tasks.errors import StageError, logger
from tasks.files import tree_hash
from tasks.retry import RETRY_DELAYS, NetworkError, with_retries

log = logger("hub")
GZIP_MAGIC = b"\x1f\x8b"


def cache_folder(handle: str) -> Path:
    """Where the resolver unpacks ``handle`` (the same rule as tensorflow_hub's)."""
    return Path(os.environ["TFHUB_CACHE_DIR"]) / hashlib.sha1(handle.encode("utf8")).hexdigest()


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
        f"pre-seed the cache (unpack the model into {cache_folder(handle)}; TFHUB_CACHE_DIR sets the folder "
        "above it) or set model.handle to a local SavedModel folder"
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
        return _http_error(handle, exc)
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


def _http_error(handle: str, exc: urllib.error.HTTPError) -> Exception:
    if exc.code in (408, 429) or exc.code >= 500:
        return ConnectionError(f"HTTP {exc.code}")
    if exc.code in (401, 403):
        return StageError(
            f"backbone {handle}: HTTP {exc.code}, the model host refused the download (Kaggle Models serves "
            f"archives from signed URLs that expire; some need accepted terms): try again later, or {_ways_out(handle)}"
        )
    if exc.code == 404:
        return StageError(f"backbone {handle}: HTTP 404, no model at this URL; check model.handle")
    return StageError(f"backbone {handle}: HTTP {exc.code} {exc.reason}; {_ways_out(handle)}")


def _resolve_once(handle: str, timeout_s: float) -> Path:
    """One attempt of the real resolver, every socket read bounded by ``timeout_s``."""
    import http.client

    import tensorflow_hub as hub

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # urlopen without a timeout uses the default
    try:
        return Path(hub.resolve(handle))
    except urllib.error.HTTPError as exc:
        raise _http_error(handle, exc) from exc
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


def fetch(handle: str, timeout_s: float) -> Path:
    """The local SavedModel folder of URL ``handle``: the checked cache, or a fresh download.

    Raises:
        StageError: one line naming the handle and what to do (see the module docstring).
    """
    folder = cache_folder(handle)
    if folder.is_dir() and any(folder.iterdir()):
        problem = _problem(folder)
        if problem is None:
            return folder
        aside = _set_aside(folder)
        log.warning(
            "backbone %s: the cached copy %s %s; set aside as %s, downloading again",
            handle,
            folder,
            problem,
            aside,
        )
    try:
        local = with_retries(lambda: _resolve_once(handle, timeout_s), f"backbone {handle}", _retryable)
    except NetworkError as exc:
        cause = exc.__cause__
        raise StageError(
            f"backbone {handle}: could not download it ({type(cause).__name__}: {cause}, {timeout_s:g} s timeout per "
            f"read, {len(RETRY_DELAYS) + 1} attempts); without network, {_ways_out(handle)}"
        ) from None
    if not (local / "saved_model.pb").is_file():
        aside = _set_aside(local)
        raise StageError(
            f"backbone {handle}: the archive holds no saved_model.pb at its top (set aside as {aside}): not a "
            f"TF2 SavedModel; use the URL of a TF2 model, or {_ways_out(handle)}"
        )
    if not _record_path(local).is_file():
        _write_record(local, tree_hash(local))
    log.info("backbone %s: downloaded into %s", handle, local)
    return local
