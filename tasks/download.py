"""Stage ``download``: fetch the dataset into ``data/raw/`` as one zip plus SOURCE.json.

Sources (``data.source``):
  * ``kaggle``: the real Kaggle client downloads ``data.kaggle_dataset`` into ``data/downloads/``
    (not a DVC output, so a partial file survives a failed or killed run and the next run resumes
    it with an HTTP Range request); network errors and HTTP 429/5xx are retried with backoff,
    401/403 and 404 stop with what to fix, and the dataset's version and last-updated stamp are
    recorded. The finished file is linked into the output and removed from ``data/downloads/``
    only once the output, with its sha256 in SOURCE.json, is in place.
  * ``local``: ``data.path`` is a zip or a folder in the Kaggle layout.
  * ``synthetic``: the offline synthetic face set (not real faces), deterministic by seed.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tasks import archive, paths, reports, synthetic
from tasks.contract import Stage, StageResult
from tasks.errors import StageError, logger, shown
from tasks.files import atomic_dir, sha256_file, write_csv
from tasks.params.data import DataParams
from tasks.reports.source import Source
from tasks.retry import with_retries

log = logger("download")
T = TypeVar("T")

CREDENTIALS_HELP = (
    "Kaggle credentials not found: put kaggle.json in ~/.kaggle (chmod 600), "
    "or set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN)"
)


@dataclass(frozen=True)
class DownloadResult(StageResult):
    """What the stage wrote."""

    archive: Path
    source: Source


def _kaggle_config_dirs() -> list[Path]:
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(os.environ["KAGGLE_CONFIG_DIR"])]
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [home / ".kaggle", xdg / "kaggle"]


def check_credentials() -> str:
    """Say where Kaggle credentials come from, without reading the secret itself.

    Raises:
        StageError: when there are none, with how to provide them.
    """
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "environment (KAGGLE_USERNAME/KAGGLE_KEY)"
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "environment (KAGGLE_API_TOKEN)"
    for folder in _kaggle_config_dirs():
        for name in ("kaggle.json", "access_token"):
            path = folder / name
            if path.is_file():
                if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    log.warning("%s is readable by other users; run: chmod 600 %s", path, path)
                return str(path)
    raise StageError(CREDENTIALS_HELP)


def make_kaggle_api() -> Any:
    """The authenticated Kaggle client (the network boundary that tests replace)."""
    # Imported here, not at the top: importing kaggle tries to authenticate at once.
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.authenticate()
    return api


def _network_errors() -> tuple[type[BaseException], ...]:
    import requests
    import urllib3

    return (
        ConnectionError,
        TimeoutError,
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.HTTPError,  # only the retryable statuses (see _retryable)
        urllib3.exceptions.HTTPError,
    )


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _retryable(exc: BaseException) -> bool:
    """Network errors, and HTTP errors that may pass: 408, 429 (rate limit) and 5xx."""
    status = _status(exc)
    return isinstance(exc, _network_errors()) and (status is None or status in (408, 429) or status >= 500)


def _kaggle_call(call: Callable[[], T], what: str, slug: str, credentials: str) -> T:
    """``call`` with retries; a refusal by Kaggle becomes one line that says what to fix."""
    import requests

    try:
        return with_retries(call, what, _retryable)
    except requests.exceptions.HTTPError as exc:
        status = _status(exc)
        if status in (401, 403):
            raise StageError(
                f"Kaggle refused the credentials from {credentials} (HTTP {status}) for {slug}: check the username "
                "and key (create a new token under Kaggle > Settings > API) and accept the dataset's rules on its page"
            ) from None
        if status == 404:
            raise StageError(
                f"{slug}: no such dataset on Kaggle (HTTP 404); check data.kaggle_dataset, 'owner/name' as in the "
                "dataset's URL"
            ) from None
        raise StageError(f"{what}: Kaggle answered HTTP {status}; rerun later") from None


def fetch_kaggle(
    slug: str, dest: Path, downloads: Path, api_factory: Callable[[], Any] = make_kaggle_api
) -> tuple[dict[str, Any], Path]:
    """Download the dataset zip for ``slug`` and link it as ``dest/Dataset.zip``.

    The client downloads into ``downloads/<owner>/<name>/`` without ``force``, so it resumes a
    partial file left there by an earlier run (its ``.kaggle-partial`` marker proves it is the same
    remote file) and skips a finished one. Returns the provenance and that folder, which the caller
    removes once the output is in place.
    """
    credentials = check_credentials()
    log.info("Kaggle credentials from %s", credentials)
    api = api_factory()
    owner, name = slug.split("/")
    partial = downloads / owner / name
    partial.mkdir(parents=True, exist_ok=True)
    _kaggle_call(
        lambda: api.dataset_download_files(slug, path=str(partial), force=False, quiet=False, unzip=False),
        f"downloading {slug}",
        slug,
        credentials,
    )
    downloaded = partial / f"{name}.zip"
    if not downloaded.is_file():
        raise StageError(f"{slug}: the Kaggle client wrote no {downloaded.name}; check the slug in data.kaggle_dataset")
    os.link(downloaded, dest / paths.RAW_ARCHIVE_NAME)  # the download stays until the output is complete
    listed = _kaggle_call(
        lambda: api.dataset_list(search=name, user=owner) or [], f"looking up {slug}", slug, credentials
    )
    meta = next((d for d in listed if d is not None and getattr(d, "ref", None) == slug), None)
    origin = {
        "slug": slug,
        "dataset_version": getattr(meta, "current_version_number", None),
        "last_updated": str(getattr(meta, "last_updated", None) or "") or None,
    }
    return origin, partial


def copy_local(path: Path, dest: Path, max_archive_mb: int) -> dict[str, Any]:
    """Copy a local zip, or pack a local folder, into ``dest/Dataset.zip``.

    A zip is checked where the user put it (so messages name that file), must be a regular file
    within ``data.max_archive_mb``, and is repacked when its entry names use Windows separators.
    """
    target = dest / paths.RAW_ARCHIVE_NAME
    if path.is_dir():
        log.info("packing folder %s", path)
        archive.pack_folder(path, target)
        return {"path": str(path)}
    if not path.is_file():
        raise StageError(
            f"{shown(path)}: not a regular file or a folder (a FIFO, device or socket); point data.path at a zip"
        )
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_archive_mb:
        raise StageError(
            f"{shown(path)}: {size_mb:,.0f} MB is more than data.max_archive_mb={max_archive_mb}; raise it if this is "
            "really the dataset"
        )
    entries, _ = archive.read_entries(path)
    if any("\\" in e.name for e in entries):
        log.info("repacking zip %s (Windows separators in its entry names)", path)
        archive.repack(path, target)
    else:
        log.info("copying zip %s", path)
        shutil.copyfile(path, target)
    return {"path": str(path)}


def make_synthetic(params: DataParams, dest: Path) -> dict[str, Any]:
    """Write the synthetic face set into ``dest/Dataset.zip``."""
    syn = params.synthetic
    counts = {"Train": syn.train, "Validation": syn.validation, "Test": syn.test}
    total = sum(counts.values())
    flips = synthetic.flipped(counts, syn.label_noise, syn.seed)
    position: Counter[str] = Counter()  # of each image within its split
    key = []  # the answer key of the flipped labels: entry, split, true label, given label
    with archive.ArchiveWriter(dest / paths.RAW_ARCHIVE_NAME) as writer:
        for i, (split, label, data) in enumerate(
            synthetic.generate(counts, syn.male_share, syn.seed, os.cpu_count() or 1), start=1
        ):
            given = synthetic.other(label) if position[split] in flips[split] else label
            entry = writer.add(split, given, data)
            if given != label:
                key.append((entry, split, label, given))
            position[split] += 1
            if i % 500 == 0 or i == total:
                log.info("synthetic faces: %d/%d", i, total)
    if syn.label_noise:
        log.info(
            "label_noise %.3f: %d labels flipped, listed in %s (no stage reads it)",
            syn.label_noise,
            len(key),
            paths.NOISE_KEY_NAME,
        )
        write_csv(dest / paths.NOISE_KEY_NAME, ["path", "split", "true_label", "given_label"], key)
    return {"seed": syn.seed, "note": "synthetic faces drawn by tasks/synthetic.py, not real people"}


def download(
    raw_dir: Path,
    params: DataParams,
    api_factory: Callable[[], Any] = make_kaggle_api,
    downloads: Path | None = None,
) -> DownloadResult:
    """Fetch the dataset into ``raw_dir`` atomically and record where it came from.

    Args:
        raw_dir: the stage output folder (``data/raw``).
        params: the ``data`` section.
        api_factory: builds the Kaggle client; tests pass a fake.
        downloads: where a Kaggle download is kept until it is complete (default: ``downloads``
            beside ``raw_dir``, i.e. ``data/downloads``).

    Returns:
        The archive path and the SOURCE.json content.
    """
    partial = None
    with atomic_dir(raw_dir) as tmp:
        if params.source == "kaggle":
            downloads = downloads or raw_dir.parent / "downloads"
            origin, partial = fetch_kaggle(params.kaggle_dataset, tmp, downloads, api_factory)
        elif params.source == "local":
            origin = copy_local(Path(params.path), tmp, params.max_archive_mb)
        else:
            origin = make_synthetic(params, tmp)
        entries, junk = archive.read_entries(tmp / paths.RAW_ARCHIVE_NAME)
        if not entries:
            raise StageError(f"{params.path or params.source}: the dataset holds no images under {paths.DATASET_TOP}/")
        source = Source(
            source=params.source,
            **origin,
            archive=paths.RAW_ARCHIVE_NAME,
            sha256=sha256_file(tmp / paths.RAW_ARCHIVE_NAME),
            bytes=(tmp / paths.RAW_ARCHIVE_NAME).stat().st_size,
            images=len(entries),
            skipped_junk_files=junk,
            counts=archive.counts(entries),
        )
        reports.write(tmp / paths.SOURCE_NAME, source)
    if partial is not None:  # the output, with the download's sha256, is in place: the copy is not needed
        shutil.rmtree(partial)
    log.info("wrote %s: %d images, sha256 %s", raw_dir / paths.RAW_ARCHIVE_NAME, len(entries), source.sha256[:12])
    return DownloadResult(archive=raw_dir / paths.RAW_ARCHIVE_NAME, source=source)


STAGE = Stage(
    "download",
    download,
    outs={"raw_dir": paths.RAW_DIR},
    params={"params": "data"},
    work={"downloads": paths.DOWNLOADS_DIR},
)
