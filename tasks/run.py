"""``python -m tasks.run STAGE [--params FILE]``: run one stage from the repository root, as dvc.yaml does.

The runner parses the command line, sets up logging and the quiet TensorFlow import, keeps the last
good ``dvc.lock`` for ``make doctor``, loads params.yaml and calls the stage's function through its
contract. No stage imports it, so none of that is in a stage's code deps: editing it reruns nothing.

The params and code deps are taken when the stage starts (``tasks.snapshot``); if either changed by
the time it ends, it exits 2 with one line, so ``dvc repro`` records nothing the outputs were not
made with.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from tasks import paths
from tasks.cli import run_cli, setup
from tasks.doctor import LOCKFILE, keep_last_good
from tasks.errors import ParamsError, StageError
from tasks.params.config import parse
from tasks.quiet import add_verbose_flag
from tasks.snapshot import Snapshot
from tasks.stages import BY_NAME

# here, not only in main(): a process a stage spawns (the built-in backbone's export) imports this module as
# its __mp_main__, and so starts TensorFlow quiet and logs its progress too
setup()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the stage; expected faults print one line and exit 2."""
    parser = argparse.ArgumentParser(prog="python -m tasks.run", description=__doc__.strip().splitlines()[0])
    parser.add_argument("stage", choices=list(BY_NAME), help="the stage to run (dvc.yaml's name)")
    parser.add_argument("--params", default=paths.PARAMS_FILE, help="params file (default: %(default)s)")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    setup()
    keep_last_good(Path("."))  # dvc.lock as the previous stages left it, for `make doctor`
    run_cli(lambda: run(args.stage, Path(args.params)))


def run(stage: str, params_file: Path) -> None:
    """Run ``stage`` with the params file as it is now; refuse to end well if its params or code changed meanwhile."""
    snapshot = Snapshot.take(stage, Path("."), params_file)
    try:
        params = parse(snapshot.raw, str(params_file))
        if BY_NAME[stage].prepare:
            BY_NAME[stage].prepare(Path("."))
        BY_NAME[stage].run(Path("."), params)
    except (ParamsError, StageError) as exc:  # an expected fault: one line, and how to undo what dvc removed
        hint = _restore_hint(stage)
        if not hint:
            raise
        raise type(exc)(f"{exc}{hint}") from exc
    snapshot.check("run dvc repro again")


def _restore_hint(stage: str) -> str:
    """How to get back the outputs ``dvc repro`` removed before the failed run, when dvc.lock has them."""
    missing = [o.path for o in BY_NAME[stage].outputs() if not Path(o.path).exists()]
    lock = Path(LOCKFILE)
    recorded = lock.is_file() and stage in (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    if not missing or not recorded:
        return ""
    return f"; the previous {', '.join(missing)} are in DVC's cache: `dvc checkout {stage}` brings them back"


if __name__ == "__main__":
    main()
