"""What a stage's outputs are made from, taken when it starts and checked before they are recorded.

DVC reads params.yaml and hashes the code deps when it *records* a stage, after its command has
ended. An edit in between (planning the next experiment while train runs) would be recorded as if
it had made the outputs, and ``dvc status`` would call them up to date. So the runner
(``tasks.run``, which both ``dvc repro`` and the flow run) takes a :class:`Snapshot` of the stage's
params sections and code deps at the start and compares it with the files at the end: a difference
stops the run with one line, so DVC records nothing and the stage stays stale. Not in any stage's
code deps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks import paths
from tasks.code_deps import import_closure
from tasks.errors import ParamsError, StageError
from tasks.params.config import read_raw
from tasks.stages import BY_NAME


def code_hashes(root: Path, stages: list[str] | None = None) -> dict[str, str]:
    """sha256 of each code dep of ``stages`` (default: all) under ``root``, keyed by relative path."""
    files = sorted({f for s in stages or list(BY_NAME) for f in import_closure(BY_NAME[s].module, root)})
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files}


def _flat(value: Any, key: str) -> dict[str, Any]:
    """``{"train.epochs": 3, ...}`` for the section ``value`` at ``key``."""
    if isinstance(value, dict):
        return {k: v for name, item in value.items() for k, v in _flat(item, f"{key}.{name}").items()}
    return {key: value}


def _at(raw: dict[str, Any], key: str) -> Any:
    """The value at a dotted ``key`` of a parsed params file, or None where it is absent."""
    value: Any = raw
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@dataclass(frozen=True)
class Snapshot:
    """A stage's params sections and code deps as they were when it started."""

    stage: str
    root: Path
    params_file: Path
    raw: dict[str, Any]  # the whole params file as read at the start: what the stage runs with
    code: dict[str, str]  # code dep -> sha256

    @classmethod
    def take(cls, stage: str, root: Path, params_file: Path | None = None) -> Snapshot:
        """Read the params file once (the stage runs with ``raw``) and hash the code deps."""
        params_file = params_file or root / paths.PARAMS_FILE
        return cls(stage, root, params_file, read_raw(params_file), code_hashes(root, [stage]))

    def _params(self, raw: dict[str, Any]) -> dict[str, Any]:
        keys = sorted(set(BY_NAME[self.stage].params.values()))  # sections, or dotted keys (model.handle)
        return {k: v for key in keys for k, v in _flat(_at(raw, key), key).items()}

    def changes(self) -> list[str]:
        """What differs now from the start, one phrase each; empty when nothing does."""
        found = []
        try:
            before, now = self._params(self.raw), self._params(read_raw(self.params_file))
            keys = sorted(k for k in before.keys() | now.keys() if before.get(k, ...) != now.get(k, ...))
        except ParamsError as exc:
            keys = [f"now unreadable: {exc}"]
        if keys:
            found.append(f"{self.params_file.name} changed while {self.stage} ran ({', '.join(keys)})")
        edited = [f for f, digest in code_hashes(self.root, [self.stage]).items() if self.code.get(f) != digest]
        if edited:
            found.append(f"{', '.join(edited)} changed while {self.stage} ran")
        return found

    def check(self, remedy: str) -> None:
        """Stop with one line when the params or code differ from the start: nothing may be recorded."""
        found = self.changes()
        if found:
            raise StageError(f"{'; '.join(found)}: nothing recorded; {remedy}")
