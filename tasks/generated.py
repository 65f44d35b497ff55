"""Files the project writes from one definition in code (dvc.yaml, prefect.yaml), and the lint check
that the committed file is still what the definition gives. No stage imports this module."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(target: Path, text: str, check: bool, remedy: str) -> None:
    """Replace ``target`` with ``text`` (atomically); with ``check``, exit 1 unless it already holds it."""
    if check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            sys.exit(f"{target.name} is out of date with its definition in code; run: {remedy}")
        print(f"{target.name} is current")
        return
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    print(f"wrote {target.name}")
