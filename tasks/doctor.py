"""``python -m tasks.doctor`` (``make doctor``): repair DVC's own state files after a killed run.

Holding DVC's repository lock, it restores an empty or invalid ``dvc.lock`` from the last good copy
(kept by ``python -m tasks.run`` at each stage's start), else the committed one, else sets it aside;
removes an empty or unreadable ``.dvc/tmp/rwlock``; and reports what is wrong with ``params.yaml``,
read as strictly as the stages read it. It says what it did and what to run next. ``--check`` only
reports (exit 1 when something is broken); ``make repro`` and ``make demo`` run it first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tasks.paths import PARAMS_FILE

LOCKFILE = "dvc.lock"
LAST_GOOD = ".dvc/tmp/dvc.lock.last-good"
RWLOCK = ".dvc/tmp/rwlock"
HELP = "run `make doctor` (python -m tasks.doctor) to repair it"


def lockfile_problem(text: str) -> str | None:
    """Why ``text`` is not a valid dvc.lock (DVC's own schema), or None when it is."""
    import yaml
    from dvc.schema import COMPILED_LOCKFILE_SCHEMA

    if not text.strip():
        return "empty"
    try:
        COMPILED_LOCKFILE_SCHEMA(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        return f"not YAML ({str(exc).splitlines()[0]})"
    except Exception as exc:  # voluptuous.Invalid and its kin: the schema's verdict
        return f"not a valid lock file ({str(exc).splitlines()[0]})"
    return None


def rwlock_problem(text: str) -> str | None:
    """Why ``text`` is not a readable DVC rwlock file, or None."""
    try:
        data = json.loads(text)
    except ValueError:
        return "empty" if not text.strip() else "not JSON"
    return None if isinstance(data, dict) else "not a JSON object"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def keep_last_good(root: Path) -> None:
    """Copy dvc.lock to the last-good copy when it is valid (cheap: skipped when unchanged)."""
    lock, copy = root / LOCKFILE, root / LAST_GOOD
    if not lock.is_file() or not copy.parent.is_dir():
        return
    text = lock.read_text(encoding="utf-8")
    if (copy.is_file() and copy.read_text(encoding="utf-8") == text) or lockfile_problem(text):
        return
    _write_atomically(copy, text)


def problems(root: Path) -> list[str]:
    """What is broken in DVC's state files, one line each."""
    found = []
    for rel, check in ((LOCKFILE, lockfile_problem), (RWLOCK, rwlock_problem)):
        path = root / rel
        if path.is_file() and (why := check(path.read_text(encoding="utf-8", errors="replace"))):
            found.append(f"{rel}: {why}")
    return found


def params_problem(root: Path) -> str | None:
    """What is wrong with ``root``'s params.yaml, read as the stages read it, or None."""
    from tasks.errors import ParamsError
    from tasks.params.config import load

    try:
        load(root / PARAMS_FILE)
    except ParamsError as exc:
        return f"{exc}; fix it by hand (the doctor repairs only DVC's own files)"
    return None


def _committed_lockfile(root: Path) -> str | None:
    done = subprocess.run(["git", "show", f"HEAD:{LOCKFILE}"], cwd=root, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 and not lockfile_problem(done.stdout) else None


def repair(root: Path) -> list[str]:
    """Repair what :func:`problems` finds; return what was done, one line each."""
    done = []
    lock = root / LOCKFILE
    if lock.is_file() and lockfile_problem(lock.read_text(encoding="utf-8", errors="replace")):
        last_good = root / LAST_GOOD
        good = last_good.read_text(encoding="utf-8") if last_good.is_file() else None
        if good and not lockfile_problem(good):
            _write_atomically(lock, good)
            done.append(f"{LOCKFILE}: restored the last good copy ({LAST_GOOD})")
        elif committed := _committed_lockfile(root):
            _write_atomically(lock, committed)
            done.append(f"{LOCKFILE}: no good copy kept; restored the committed one (git show HEAD:{LOCKFILE})")
        else:
            aside = lock.with_name(f"{LOCKFILE}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(lock, aside)
            done.append(f"{LOCKFILE}: no good copy anywhere; set the broken file aside as {aside.name}")
    rwlock = root / RWLOCK
    if rwlock.is_file() and rwlock_problem(rwlock.read_text(encoding="utf-8", errors="replace")):
        rwlock.unlink()
        done.append(f"{RWLOCK}: removed the broken file (DVC makes a new one)")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (default: current folder)")
    parser.add_argument("--check", action="store_true", help="only report; exit status 1 when something is broken")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    found, params = problems(root), params_problem(root)
    if params:
        print(f"broken: {params}", file=sys.stderr)
    if not found:
        print("DVC state files: OK")
        return 1 if params else 0
    if args.check:
        for line in found:
            print(f"broken: {line}; {HELP}", file=sys.stderr)
        return 1
    from dvc.lock import LockError
    from dvc.repo import Repo, lock_repo

    try:
        with lock_repo(Repo(str(root))):
            actions = repair(root)
    except LockError:
        print("error: a dvc repro or flow run holds the repository; let it finish, then run the doctor again")
        return 2
    for line in actions:
        print(f"repaired: {line}")
    print("next: `dvc status` shows which stages changed since; `dvc repro` reruns only those")
    return 1 if params else 0


if __name__ == "__main__":
    sys.exit(main())
