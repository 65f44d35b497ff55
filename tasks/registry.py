"""The model registry: which model is in production, as GTO records it in git, and its local copy.

The model is ``dvc.yaml``'s artifact ``model`` (``models/model``). Promotion (``ops.promote``,
``make promote``) assigns a commit's model to the stage ``prod`` with GTO: two git tags,
``model@vX.Y.Z`` and ``model#prod#N``. That commit's dvc.lock names the model's bytes, which are in the
DVC remote, so any clone that has the tags gets the same model with
``dvc artifacts get . model --stage prod``.

:func:`sync` keeps ``models/production/`` (git-ignored, not a DVC output) a copy of that model, with
what the gate and validate compare against: the model's evaluation, the source of its data and its
data's validation report, each fetched from the same commit through DVC, and ``production.json``
(version, commit, fingerprint). The folder is replaced atomically, so a kill at any moment leaves the
old copy or the new one whole; the registry itself is the tags, which git writes atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tasks import paths, reports
from tasks.errors import StageError, logger
from tasks.files import atomic_dir, recover, tree_hash

log = logger("registry")

ARTIFACT = "model"  # dvc.yaml's artifacts: entry, the registry's name
PROD = "prod"  # the GTO stage of the production model
# what the local copy holds besides the model: its name in the folder <- the path at the model's commit
REPORTS = {
    paths.PRODUCTION_EVALUATION_NAME: paths.EVALUATION,
    paths.PRODUCTION_SOURCE_NAME: paths.SOURCE_FILE,
    paths.PRODUCTION_VALIDATION_NAME: paths.VALIDATION_REPORT,
}


@dataclass(frozen=True)
class Production:
    """``models/production/production.json``: the registry's production model that the folder holds."""

    model_version: str  # GTO's version, e.g. v0.0.3
    commit: str  # the commit whose dvc.lock names the model
    fingerprint: str  # tree_hash of the model folder
    assigned_at: str | None = None
    version: int = 1


class NoRegistry(StageError):
    """The folder is not a git repository, so it has no registry (a copy of the layout, ``dvc init --no-scm``)."""


def gto(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """GTO's command line (``gto ARGS``) in ``root``, its output captured.

    A child process, never ``import gto`` here: importing gto runs ``logging.config.dictConfig``, which closes every
    logging handler of the process (Prefect's among them).
    """
    return subprocess.run(
        [str(Path(sys.executable).with_name("gto")), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def assigned(root: Path) -> tuple[str, str, str | None] | None:
    """The production model's (version, commit, assigned-at time) from the git tags; None when none is assigned.

    Raises:
        NoRegistry: when ``root`` is not a git repository (the registry lives in its tags).
        StageError: when the tags cannot be read.
    """
    inside = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=root, capture_output=True, check=False)
    if inside.returncode != 0:
        raise NoRegistry(f"{root}: not a git repository, so there is no model registry (its git tags)")
    shown = gto(root, "show", f"{ARTIFACT}#{PROD}", "--json")
    if shown.returncode != 0:
        if f"Cannot find artifact '{ARTIFACT}'" in shown.stdout + shown.stderr:
            return None  # no tag of the artifact yet: nothing was ever promoted
        raise StageError(f"{root}: cannot read the model registry, the git tags {ARTIFACT}@… ({shown.stderr.strip()})")
    found = json.loads(shown.stdout)
    if not found:
        return None
    latest = found[0]
    when = next((a["created_at"] for s in latest["stages"] if s["stage"] == PROD for a in s["assignments"][:1]), None)
    return latest["version"], latest["commit_hexsha"], when


def read_pointer(folder: Path) -> Production | None:
    """The copy's pointer, or None when the folder holds no complete copy."""
    pointer = folder / paths.PRODUCTION_POINTER_NAME
    if not pointer.is_file():
        return None
    try:
        return reports.read(pointer, Production, "registry")
    except (StageError, reports.VersionError):
        return None


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``dvc ARGS`` in ``root``, with Studio off (the registry is the git tags); its output captured."""
    env = {**os.environ, "DVC_STUDIO_OFFLINE": "true", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def check_remote(root: Path) -> None:
    """Refuse, in one line naming it, a default DVC remote whose endpoint does not answer.

    DVC would retry an unreachable S3 or HTTP endpoint for over a minute and end with a general message; a
    folder remote, or a cloud's own endpoint (no ``endpointurl``), is left to DVC.

    Raises:
        StageError: the remote's name, URL and endpoint, and what the connection said.
    """
    from dvc.config import Config

    config = Config(dvc_dir=str(root / ".dvc"))
    name = config["core"].get("remote")
    if not name:
        raise StageError(f"{root}: no default DVC remote; add one: dvc remote add -d NAME URL (docs/scaling.md)")
    remote = config["remote"].get(name, {})
    url = str(remote.get("url", ""))
    endpoint = remote.get("endpointurl") or (url if url.startswith(("http://", "https://")) else None)
    if not endpoint:
        return
    parts = urlsplit(endpoint)
    try:
        socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), 5).close()
    except OSError as exc:
        raise StageError(
            f"DVC remote '{name}' ({url}, endpoint {endpoint}) is unreachable: {exc.strerror or exc}; check the "
            "endpoint and the network (dvc remote modify NAME endpointurl URL)"
        ) from exc


def _dvc_or_fail(root: Path, what: str, *args: str) -> None:
    done = dvc(root, *args)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        # the last error is DVC's own (the first says Studio, which the registry does not use, is not set up)
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:] or [str(done.returncode)]
        raise StageError(
            f"{what}: `dvc {' '.join(args)}` failed: {errors[-1]}; "
            "is the DVC remote reachable and does it hold the model (`dvc push` after promoting)?"
        )


def fetch(root: Path, version: str, commit: str, into: Path) -> None:
    """Fill ``into`` with the registry's model ``version`` and its reports from ``commit``, through DVC."""
    what = f"the production model {ARTIFACT}@{version}"
    check_remote(root)
    _dvc_or_fail(root, what, "artifacts", "get", ".", ARTIFACT, "--rev", version, "-o", str(into / "model"))
    for name, path in REPORTS.items():
        _dvc_or_fail(root, what, "get", ".", path, "--rev", commit, "-o", str(into / name))


def sync(root: Path) -> Production | None:
    """Make ``models/production`` the registry's production model; the pointer, or None when none is assigned.

    Nothing is fetched when the copy already holds that version, whole. When the registry assigns no model
    the copy is removed: what is not in the registry is not in production. Outside a git repository there is
    no registry, and the copy is left as it is.
    """
    folder = root / paths.PRODUCTION_DIR
    recover(folder)
    try:
        found = assigned(root)
    except NoRegistry as exc:  # nothing to sync with: the copy, if any, is left as it is
        log.info("%s; %s is left as it is", exc, folder)
        return read_pointer(folder)
    if found is None:
        if folder.exists():
            log.info("no model is assigned to %s in the registry; removing the stale copy %s", PROD, folder)
            shutil.rmtree(folder)
        return None
    version, commit, when = found
    have = read_pointer(folder)
    model = folder / paths.PRODUCTION_MODEL_NAME
    if have and have.model_version == version and have.commit == commit and tree_hash(model) == have.fingerprint:
        return have
    log.info("fetching the production model %s@%s (commit %s) into %s", ARTIFACT, version, commit[:8], folder)
    return install(folder, lambda tmp: fetch(root, version, commit, tmp), version, commit, when)


def install(folder: Path, fill: Callable[[Path], None], version: str, commit: str, when: str | None) -> Production:
    """Replace ``folder`` atomically with what ``fill`` puts in a fresh folder, and the pointer that names it."""
    with atomic_dir(folder) as tmp:
        fill(tmp)
        pointer = Production(version, commit, tree_hash(tmp / paths.PRODUCTION_MODEL_NAME), when)
        reports.write(tmp / paths.PRODUCTION_POINTER_NAME, pointer)
    return pointer


def prepare(root: Path) -> None:
    """A stage's preparation (``Stage.prepare``): the local copy of the production model, current."""
    sync(root)
