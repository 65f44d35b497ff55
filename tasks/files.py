"""Small file helpers shared by the stages: atomic outputs, JSON, hashing."""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tasks.errors import StageError

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # this file system cannot: the caller falls back to two renames
    raise OSError(err, os.strerror(err), str(b))


def _aside(final: Path) -> Path:
    return final.parent / f".{final.name}.old-{os.getpid()}"


def replace_path(new: Path, final: Path) -> None:
    """Put ``new`` at ``final``, replacing what is there, such that ``final`` is whole at every instant.

    A file is replaced by one rename. A folder is swapped with the old one in one atomic step where
    the system allows (Linux), then the old one is deleted; elsewhere the old folder is first
    renamed aside, and :func:`recover` (run by the next :func:`atomic_dir` on ``final``) puts it
    back if the process is killed between the two renames.
    """
    new, final = Path(new), Path(final)
    if not new.is_dir() or not final.is_dir() or final.is_symlink():
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)  # a folder replaced by a file (or the reverse)
        os.replace(new, final)
    elif _exchange(new, final):
        shutil.rmtree(new)  # now the old folder
    else:
        aside = _aside(final)
        os.rename(final, aside)
        os.rename(new, final)
        shutil.rmtree(aside)


def recover(final: Path) -> None:
    """Undo a :func:`replace_path` killed between its two renames; delete what earlier runs left."""
    final = Path(final)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # unfinished outputs; never accepted
        shutil.rmtree(stale, ignore_errors=True)
    asides = sorted(final.parent.glob(f".{final.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if asides and not final.exists():
        os.rename(asides.pop(), final)  # the complete old output, back in place
    for stale in asides:
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``final``; on success it replaces ``final``.

    A failure or an interruption (Ctrl-C, kill) leaves ``final`` as it was before (or absent if
    it was), never half written, so neither the next stage nor ``dvc commit`` can accept a partial
    output; and ``final`` is never missing while it is replaced (see :func:`replace_path`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
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
    replace_path(tmp, final)


@contextlib.contextmanager
def atomic_outputs(targets: Sequence[Path]) -> Iterator[Path]:
    """:func:`atomic_dir` for a stage's outputs that share a folder with other stages' outputs.

    Yield a staging folder, in which the stage writes each target under its own name; once it is
    complete, each target is replaced by its staged namesake, and nothing else in the folder is
    touched. A run killed during those final replacements leaves complete entries (old or new);
    dvc.lock, not yet updated, then says the stage must rerun.

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
        recover(target)
        replace_path(staging / target.name, target)
    shutil.rmtree(staging)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON (stable for DVC and diffs)."""
    with Path(path).open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV with ``\\n`` line ends (the same bytes on every platform)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


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
