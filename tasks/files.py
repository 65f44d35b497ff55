"""Small file helpers shared by the stages: atomic outputs, JSON, hashing, logging."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class StageError(RuntimeError):
    """An expected fault; the message says what was wrong, where, and what to do."""


def logger(name: str) -> logging.Logger:
    """The stage's logger. Under Prefect the flow adds a handler that forwards it to the run logs."""
    return logging.getLogger(f"pipeline.{name}")


def setup_logging() -> None:
    """Log to stderr for the command-line entry points (``python -m tasks.<stage>``)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pipeline").setLevel(logging.INFO)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``final``; on success it replaces ``final``.

    A failure or an interruption (Ctrl-C, kill) leaves ``final`` absent or as it was before,
    never half written, so neither the next stage nor ``dvc commit`` can accept a partial output.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a killed run; never accepted
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise StageError(f"{final}: disk full while writing; free space and rerun (nothing was kept)") from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_outputs(targets: Sequence[Path]) -> Iterator[Path]:
    """:func:`atomic_dir` for a stage's outputs that share a folder with other stages' outputs.

    Yield a staging folder, in which the stage writes each target under its own name; once it is
    complete, each target is replaced by its staged namesake, and nothing else in the folder is
    touched. A run killed during those final renames leaves complete entries (old or new); dvc.lock,
    not yet updated, then says the stage must rerun.

    Raises:
        ValueError: when the targets are not all in one folder.
    """
    folders = {Path(t).parent for t in targets}
    if len(folders) != 1:
        raise ValueError(f"outputs replaced together must share one folder: {[str(t) for t in targets]}")
    (folder,) = folders
    created = not folder.exists()
    staging = folder / f".{folder.name}-outputs"
    try:
        with atomic_dir(staging) as tmp:
            yield tmp
    except BaseException:
        if created and not any(folder.iterdir()):
            folder.rmdir()  # leave no empty folder behind a failed first run
        raise
    for target in map(Path, targets):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(staging / target.name, target)
    shutil.rmtree(staging)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON (stable for DVC and diffs)."""
    with Path(path).open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file that an earlier stage wrote; ``what`` says which stage makes it."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run the {what} stage first (dvc repro {what})") from None
    except json.JSONDecodeError as exc:
        raise StageError(f"{path}: not valid JSON ({exc}); rerun the {what} stage") from None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tree_hash(folder: Path) -> str:
    """A sha256 over every file's relative path and content under ``folder`` (a model's fingerprint)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + sha256_file(path).encode())
    return digest.hexdigest()
