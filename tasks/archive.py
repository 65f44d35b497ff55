"""The raw dataset archive: a zip in the Kaggle layout ``Dataset/<Split>/<Class>/<file>``.

Keeping the archive itself as the raw artifact lets DVC hash one file instead of 200K
(DVC issues #7681, #6656); the later stages read the images straight from it.
"""

from __future__ import annotations

import stat
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tasks import paths
from tasks.errors import StageError, shown

# Files that operating systems leave in folders and zips; skipped and counted, never data.
JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
JUNK_DIRS = {"__MACOSX"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip timestamps fixed so the same images give the same sha256
_ENCRYPTED = 0x1  # general-purpose flag bit 0
_READABLE = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_METHOD_NAMES = {9: "Deflate64 (method 9, as Windows' 'compressed folder' writes large files)", 99: "AES (method 99)"}


@dataclass(frozen=True)
class Entry:
    """One image file in the archive."""

    name: str  # the zip entry name, Dataset/Train/Male/000001.jpg
    split: str
    label: str

    @property
    def relpath(self) -> str:
        """The path below ``Dataset/``, as the manifest and reports show it."""
        return _normal(self.name).split("/", 1)[1]


def is_junk(name: str) -> bool:
    """True for OS litter such as ``__MACOSX/`` or ``.DS_Store``."""
    parts = PurePosixPath(name).parts
    return any(p in JUNK_DIRS for p in parts) or (
        bool(parts) and (parts[-1] in JUNK_NAMES or parts[-1].startswith("._"))
    )


def member_name(relpath: str) -> str:
    """The zip entry of a manifest path in the raw archive (download writes standard '/' names)."""
    return f"{paths.DATASET_TOP}/{relpath}"


def _normal(name: str) -> str:
    """A zip entry name with Windows separators made '/' (some Windows tools write backslashes)."""
    return name.replace("\\", "/")


def _check_member(info: zipfile.ZipInfo, archive: Path) -> None:
    name = _normal(info.filename)
    if name.startswith("/") or ".." in PurePosixPath(name).parts or ":" in name.split("/")[0]:
        raise StageError(
            f"{archive}: entry {info.filename!r} points outside the archive folder (zip-slip); refusing this archive"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise StageError(f"{archive}: entry {name!r} is a symbolic link; refusing this archive (links are not images)")
    if info.is_dir():
        return
    if info.flag_bits & _ENCRYPTED:
        raise StageError(
            f"{archive}: entry {name!r} is encrypted (password-protected); unzip it with its password and point "
            "data.path at the folder"
        )
    if info.compress_type not in _READABLE:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise StageError(
            f"{archive}: entry {name!r} is compressed with {method}, which Python's zipfile cannot read; re-zip it "
            "with standard Deflate (e.g. `zip -r Dataset.zip Dataset`) or point data.path at the unzipped folder"
        )


def list_entries(zf: zipfile.ZipFile, archive: Path) -> tuple[list[Entry], int]:
    """Return the image entries in the Kaggle layout, and how many junk files were skipped.

    Raises:
        StageError: for an unsafe entry, or a file outside ``Dataset/<Split>/<Class>/``.
    """
    entries, junk = [], 0
    for info in zf.infolist():
        _check_member(info, archive)
        if info.is_dir():
            continue
        if is_junk(_normal(info.filename)):
            junk += 1
            continue
        parts = PurePosixPath(_normal(info.filename)).parts
        if parts[0] != paths.DATASET_TOP or len(parts) != 4:
            raise StageError(
                f"{archive}: entry {_normal(info.filename)!r} is not in the Kaggle layout "
                f"{paths.DATASET_TOP}/<Split>/<Class>/<image>; repack the dataset with a top folder named "
                f"{paths.DATASET_TOP}/"
            )
        entries.append(Entry(info.filename, parts[1], parts[2]))
    return entries, junk


def open_archive(archive: Path) -> zipfile.ZipFile:
    """Open the dataset zip, turning a missing or corrupt file into a clear error."""
    try:
        return zipfile.ZipFile(archive)
    except FileNotFoundError:
        raise StageError(f"{archive}: not found; run the download stage first (dvc repro download)") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise StageError(f"{archive}: not a readable zip ({exc}); download it again or repack it") from None


def read_entries(archive: Path) -> tuple[list[Entry], int]:
    """Open ``archive`` and list its image entries (see :func:`list_entries`)."""
    with open_archive(archive) as zf:
        return list_entries(zf, archive)


def counts(entries: Iterable[Entry]) -> dict[str, dict[str, int]]:
    """Images per split and class: ``{"Train": {"Female": 3, "Male": 2}, ...}``."""
    tally = Counter((e.split, e.label) for e in entries)
    out: dict[str, dict[str, int]] = {}
    for (split, label), n in sorted(tally.items()):
        out.setdefault(split, {})[label] = n
    return out


class ArchiveWriter:
    """Writes images into a new dataset zip with stable names and timestamps."""

    def __init__(self, path: Path):
        # JPEGs are already compressed; storing them keeps reads fast and seekable.
        self._zf = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)
        self._seq: Counter[tuple[str, str]] = Counter()

    def add(self, split: str, label: str, data: bytes, name: str | None = None) -> str:
        """Add one image; without ``name`` it is numbered within its split and class. Returns its entry name."""
        self._seq[split, label] += 1
        name = name or f"{self._seq[split, label]:06d}.jpg"
        info = zipfile.ZipInfo(f"{paths.DATASET_TOP}/{split}/{label}/{name}", date_time=_FIXED_TIME)
        info.external_attr = 0o644 << 16
        self._zf.writestr(info, data)
        return info.filename

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repack(source: Path, out: Path) -> None:
    """Copy the images of a dataset zip into a new one with standard names ('/' separators)."""
    entries, _ = read_entries(source)
    with open_archive(source) as zf, ArchiveWriter(out) as writer:
        for entry in entries:
            writer.add(entry.split, entry.label, zf.read(entry.name), name=PurePosixPath(entry.relpath).name)


def pack_folder(folder: Path, out: Path) -> None:
    """Pack a folder in the Kaggle layout into a dataset zip (files sorted, junk skipped).

    ``folder`` may be the ``Dataset`` folder itself or a folder that contains it.
    """
    root = folder / paths.DATASET_TOP if (folder / paths.DATASET_TOP).is_dir() else folder
    with ArchiveWriter(out) as writer:
        for path in sorted(root.rglob("*")):
            rel, name = path.relative_to(root), shown(path)
            if path.is_symlink():
                raise StageError(f"{name}: is a symbolic link; copy the real file into the dataset folder instead")
            if path.is_dir() or is_junk(rel.as_posix()):
                continue
            if not path.is_file():
                raise StageError(f"{name}: not a regular file (a FIFO, device or socket); remove it from the dataset")
            if len(rel.parts) != 3:
                raise StageError(
                    f"{name}: not in the Kaggle layout <Split>/<Class>/<image> under {shown(root)}; move or remove it"
                )
            if "\\" in rel.as_posix():  # zip readers (and this project's) take it for a folder separator
                raise StageError(f"{name}: a backslash in a file or folder name reads as a folder in a zip; rename it")
            writer.add(rel.parts[0], rel.parts[1], path.read_bytes(), name=rel.parts[2])
