"""Set-up: the pinned install with pip and with uv, side by side, each into a fresh virtual environment.

The pip route is what `make setup` ran until 2026-12-04: upgrade pip, then ``pip install -c constraints.txt
-e ".[test]"``. The uv route is what it runs now: pip installs uv (pinned in constraints.txt), then ``uv pip
install --compile-bytecode`` the same. Each route starts from ``python -m venv`` and empty caches of its own,
as a first set-up does; pip keeps the rest of its configuration (index, local wheel folders). After each, a
fresh interpreter imports the heavy packages: the same time in both says both compiled the bytecode (without
it, every process where PYTHONDONTWRITEBYTECODE is set compiles TensorFlow afresh). Both must install the
same versions.

The real install needs the package registry, and tests never touch the network: ``--small`` installs a
one-module wheel written here, from a local folder with no index, with the uv that runs this (a check of
the code, not a measurement).

    python -m benchmarks.install [--small]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from benchmarks.common import REPO, save

CONSTRAINTS = REPO / "constraints.txt"
HEAVY = ("tensorflow", "tf_keras", "tensorflow_hub", "great_expectations", "prefect", "dvc.repo")
OUT = {"check": True, "capture_output": True, "text": True}
PROBE = ("benchmark_probe", "1.0")  # the --small wheel: one module
# whether each module's bytecode is on disk, asked before anything imports it (-B: this check writes none)
COMPILED = (
    "import importlib.util as u, json, os, sys; "
    "print(json.dumps({m: os.path.exists(u.cache_from_source(u.find_spec(m).origin)) for m in sys.argv[1:]}))"
)


def probe_wheel(folder: Path) -> Path:
    """Write the one-module wheel :data:`PROBE` into ``folder`` (a zip with its metadata and RECORD)."""
    name, version = PROBE
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"VALUE = 1\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: benchmarks.install\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},sha256={digest(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def steps(installer: str, venv: Path, wheels: Path | None) -> list[list[str]]:
    """The commands of one route after ``python -m venv``: the registry's pinned set, or with ``wheels`` (--small)
    the probe wheel from that folder, without bootstrapping (no pip upgrade; the uv running this)."""
    pip, python = str(venv / "bin" / "pip"), str(venv / "bin" / "python")
    if wheels is None:
        source, what = [], ["-c", str(CONSTRAINTS), "-e", ".[test]"]
        uv = str(venv / "bin" / "uv")
        boot = {
            "pip": [pip, "install", "--quiet", "--upgrade", "pip"],
            "uv": [pip, "install", "--quiet", "-c", str(CONSTRAINTS), "uv"],
        }
    else:
        source, what = ["--no-index", "--find-links", str(wheels)], [PROBE[0]]
        uv = str(Path(sys.executable).parent / "uv")
        boot = {}
    install = {
        "pip": [pip, "install", "--quiet", *source, *what],
        "uv": [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, *source, *what],
    }
    return [cmd for cmd in (boot.get(installer), install[installer]) if cmd]


def route(installer: str, tmp: Path, wheels: Path | None, modules: tuple[str, ...]) -> dict:
    """Time ``python -m venv`` plus :func:`steps`, with empty caches; then whether ``modules`` were compiled,
    one import of them, and the installed versions."""
    venv = tmp / installer
    env = {**os.environ, "PIP_CACHE_DIR": str(tmp / "pip-cache"), "UV_CACHE_DIR": str(tmp / "uv-cache")}
    start = time.perf_counter()
    for cmd in [[sys.executable, "-m", "venv", str(venv)], *steps(installer, venv, wheels)]:
        subprocess.run(cmd, cwd=REPO, env=env, check=True)
    seconds = time.perf_counter() - start
    python = str(venv / "bin" / "python")
    compiled = json.loads(subprocess.run([python, "-B", "-c", COMPILED, *modules], **OUT, env=env).stdout)
    start = time.perf_counter()
    subprocess.run([python, "-c", f"import {', '.join(modules)}"], env=env, check=True)
    imports = time.perf_counter() - start
    packages = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], **OUT, env=env).stdout.split()
    return {
        "seconds": round(seconds, 1),
        "compiled": compiled,
        "import_seconds": round(imports, 2),
        "packages": packages,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the probe wheel from a local folder: no network")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = probe_wheel(Path(tmp) / "wheels").parent if args.small else None
        modules = (PROBE[0],) if args.small else HEAVY
        routes = {installer: route(installer, Path(tmp), wheels, modules) for installer in ("pip", "uv")}
    result = {
        "params": vars(args),
        "routes": routes,
        "uv_speedup": round(routes["pip"]["seconds"] / routes["uv"]["seconds"], 2),
        "imported": list(modules),
        "goals": {"uv_speedup": "> 1 with the same packages", "import_seconds": "about equal (bytecode compiled)"},
    }
    save(args.name or "install", result, small=args.small)
    return result


if __name__ == "__main__":
    main()
