"""Quiet TensorFlow: no C++ start-up lines (oneDNN, CUDA, cuInit, absl) unless the user asks.

TensorFlow writes those lines straight to file descriptor 2 while its shared libraries load, before
``TF_CPP_MIN_LOG_LEVEL`` or any Python logging could filter them. So the first ``import tensorflow``
(wherever a stage imports it, lazily) runs with fd 2 pointed at /dev/null, and later C++ lines are
limited to fatal ones. ``PIPELINE_VERBOSE=1`` or ``--verbose`` on any command shows everything.
The project's own log lines are not touched.

The same hook makes ``tf.keras`` the tf_keras (Keras 2) that the project uses (:func:`use_tf_keras`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

VERBOSE_ENV = "PIPELINE_VERBOSE"
LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"


def verbose() -> bool:
    """Whether the user asked for TensorFlow's own output."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def _fd2_to_devnull() -> Iterator[None]:
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` with fd 2 silenced."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # resource readers and the like
        return getattr(self.loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with _fd2_to_devnull():
            self.loader.exec_module(module)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow" or verbose():
            return None
        sys.meta_path.remove(self)  # once: the real finders locate it
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read by TensorFlow as it loads
            spec.loader = _QuietLoader(spec.loader)
        return spec


def use_tf_keras() -> None:
    """Make ``tf.keras`` tf_keras in this process and its children, unless the user chose (``TF_USE_LEGACY_KERAS``).

    The project builds every model with tf_keras (Keras 3 cannot hold ``hub.KerasLayer``), and
    tensorflow_hub takes ``tf.keras`` when it is Keras 2. Without the variable, ``import tensorflow``
    also imports Keras 3, which nothing here uses: about 2 s of CPU in every process that imports
    TensorFlow (each stage, each prediction command). Must run before TensorFlow loads.
    """
    os.environ.setdefault(LEGACY_KERAS_ENV, "1")


def install() -> None:
    """Quiet the next ``import tensorflow`` in this process (idempotent; no-op once it is imported), and
    :func:`use_tf_keras`."""
    use_tf_keras()
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


class _Verbose(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        os.environ[VERBOSE_ENV] = "1"
        setattr(namespace, self.dest, True)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: show TensorFlow's own start-up and C++ log lines (same as PIPELINE_VERBOSE=1)."""
    parser.add_argument(
        "--verbose", nargs=0, action=_Verbose, default=False, help=f"show TensorFlow's own log lines ({VERBOSE_ENV}=1)"
    )
