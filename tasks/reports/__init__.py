"""The reports that one stage writes and another reads, each defined once, with a version.

Each report is a frozen dataclass (TFX passes typed artifacts, not bags of keys) in a module of its
writer's: ``source`` (download), ``validation`` (validate), ``label_audit`` (audit), ``training``
(train), ``evaluation`` (evaluate), ``verdict`` (gate). A stage imports the modules of the reports
it writes and reads only, so changing one reruns its writer and readers and nothing else. :func:`write`
puts one on disk as indented, key-sorted JSON (byte-reproducible, readable); :func:`read` builds it
back and refuses, in one line, a file of another version or shape, saying what to do. Renaming a
field is a change here, and every reader fails where it uses the old name. The DVC metrics file
(``reports/metrics.json``) is not one of these: it stays a flat table of headline numbers
(``tasks.verdict.headline``) for ``dvc metrics`` and ``dvc exp show``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from tasks import files
from tasks.errors import StageError

R = TypeVar("R")


class VersionError(StageError):
    """A report written by another version of the pipeline (or before reports had versions)."""


def write(path: Path, report: Any) -> None:
    """Write ``report`` as indented, key-sorted JSON (the same report, the same bytes)."""
    files.write_json(path, dataclasses.asdict(report))


def read(path: Path, cls: type[R], stage: str, remedy: str = "") -> R:
    """Read the ``cls`` report at ``path``, which the ``stage`` stage writes.

    ``remedy`` says what to do about a bad file (default: rerun ``stage``).

    Raises:
        VersionError: in one line, for a report of another version.
        StageError: in one line, when the file is missing, not JSON, or of another shape.
    """
    remedy = remedy or f"rerun the {stage} stage (dvc repro -f -s {stage})"
    try:
        with Path(path).open(encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise StageError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})") from None
    except json.JSONDecodeError as exc:
        raise StageError(f"{path}: unreadable, not valid JSON ({exc}); {remedy}") from None
    expected = {f.name: f.default for f in dataclasses.fields(cls)}["version"]
    found = data.get("version") if isinstance(data, dict) else None
    if found != expected:
        raise VersionError(
            f"{path}: version {found} of the {cls.__name__} report, and this code reads version {expected}; {remedy}"
        )
    try:
        return _build(cls, data)
    except (TypeError, ValueError) as exc:
        raise StageError(f"{path}: unreadable, not a {cls.__name__} ({exc}); {remedy}") from None


def _build(tp: Any, value: Any) -> Any:
    """``value`` (parsed JSON) as the annotation ``tp``: dataclasses, lists, dicts and optionals built in turn."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__name__}: expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"{tp.__name__}: unknown key {unknown[0]!r}")
        return tp(**{k: _build(hints[k], v) for k, v in value.items()})
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return [_build(args[0], v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return {k: _build(args[1], v) for k, v in value.items()}
    return value
