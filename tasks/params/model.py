"""Section ``model`` (read by train): the backbone, its input size and the head."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.errors import ParamsError
from tasks.params.fields import number

BUILTIN_BACKBONES = ("small_cnn", "resnet50v2")
URL_PREFIXES = ("https://", "http://")
KAGGLE_PREFIX = "kaggle:"  # kaggle:OWNER/MODEL/FRAMEWORK/VARIATION/VERSION, a Kaggle Models handle
KAGGLE_FORM = (
    "kaggle:OWNER/MODEL/FRAMEWORK/VARIATION/VERSION (e.g. kaggle:google/resnet-v2/tensorFlow2/50-feature-vector/2)"
)


def handle_kind(handle: str) -> str:
    """Classify a ``model.handle`` as ``url``, ``kaggle``, ``builtin`` or ``local`` (without loading anything).

    Raises:
        ValueError: for a path that is not a SavedModel folder, or a Kaggle handle that is not
            of the pinned form, with what to use instead.
    """
    if handle.startswith(URL_PREFIXES):
        return "url"
    if handle.startswith(KAGGLE_PREFIX):
        parts = handle.removeprefix(KAGGLE_PREFIX).split("/")
        if len(parts) != 5 or not all(parts) or not parts[4].isdigit():
            raise ValueError(f"{handle!r} is not a Kaggle Models handle of the form {KAGGLE_FORM}, version included")
        if parts[4] != str(int(parts[4])):  # kagglehub caches it under the plain number: a check elsewhere misses it
            raise ValueError(f"{handle!r}: the version {parts[4]} has a leading zero; write it as {int(parts[4])}")
        return "kaggle"
    if handle in BUILTIN_BACKBONES:
        return "builtin"
    path = Path(handle)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "local"
    raise ValueError(
        f"{handle!r} is not a TF Hub URL, a Kaggle Models handle ({KAGGLE_FORM}), a SavedModel folder "
        "(with saved_model.pb) "
        f"or a built-in backbone ({', '.join(BUILTIN_BACKBONES)})"
    )


@dataclass(frozen=True)
class ModelParams:
    """Section ``model``: the backbone, its input size and the head."""

    # A TF Hub URL, a Kaggle Models handle (kaggle:OWNER/MODEL/FRAMEWORK/VARIATION/VERSION), a local
    # SavedModel folder, or a built-in name (small_cnn, resnet50v2: random weights, for offline runs and
    # cost measurements).
    handle: str = "small_cnn"
    image_size: int = number(64, lo=16, hi=1024)  # images are resized to this square side
    dropout: float = number(0.2, lo=0.0, hi=0.9)
    # a URL or Kaggle handle's download: seconds one network read may wait (a stall fails after 4 attempts)
    download_timeout_s: float = number(60.0, lo=1.0, hi=3600.0)

    def check(self, where: str) -> None:
        try:
            handle_kind(self.handle)
        except ValueError as exc:
            raise ParamsError(f"{where}.handle: {exc}") from None
