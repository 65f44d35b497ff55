"""Typed parameters, loaded once from params.yaml.

Each section of params.yaml is a frozen dataclass. Loading rejects unknown keys, wrong types
and out-of-range values with a message that names the key (``data.source``) and what is allowed.
Nothing else in the project opens params.yaml.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tasks import paths


class ParamsError(ValueError):
    """A bad value in params.yaml; the message names the key and what to do."""


BUILTIN_BACKBONES = ("small_cnn", "resnet50v2")
_INT_LIKE = re.compile(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+")  # 1e12: YAML reads it as a string
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit unsigned
MAX_SYNTHETIC_IMAGES = 1_000_000  # per split: about an hour of generation on 2 cores and 10 GB of zip
URL_PREFIXES = ("https://", "http://")


def handle_kind(handle: str) -> str:
    """Classify a ``model.handle`` as ``url``, ``builtin`` or ``local`` (without loading anything).

    Raises:
        ValueError: for a path that is not a SavedModel folder, with what to use instead.
    """
    if handle.startswith(URL_PREFIXES):
        return "url"
    if handle in BUILTIN_BACKBONES:
        return "builtin"
    path = Path(handle)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "local"
    raise ValueError(
        f"{handle!r} is not a TF Hub/Kaggle Models URL, a SavedModel folder (with saved_model.pb) "
        f"or a built-in backbone ({', '.join(BUILTIN_BACKBONES)})"
    )


def _num(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A numeric field with inclusive bounds, checked at load time."""
    return field(default=default, metadata={"lo": lo, "hi": hi})


@dataclass(frozen=True)
class SyntheticParams:
    """Size and shape of the offline synthetic face set."""

    train: int = _num(2400, lo=2, hi=MAX_SYNTHETIC_IMAGES)
    validation: int = _num(400, lo=2, hi=MAX_SYNTHETIC_IMAGES)
    test: int = _num(400, lo=2, hi=MAX_SYNTHETIC_IMAGES)
    male_share: float = _num(0.42, lo=0.05, hi=0.95)
    seed: int = _num(42, lo=0, hi=MAX_SEED)


@dataclass(frozen=True)
class DataParams:
    """Section ``data``: where the dataset comes from (read by download)."""

    source: Literal["synthetic", "local", "kaggle"] = "synthetic"
    kaggle_dataset: str = "ashishjangra27/gender-recognition-200k-images-celeba"
    path: str | None = None
    max_archive_mb: int = _num(20_000, lo=1)  # a local zip larger than this is refused (the Kaggle one: 1,260)
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)

    def check(self, where: str) -> None:
        if self.source == "local" and not self.path:
            raise ParamsError(
                f"{where}.path: required when {where}.source is 'local'; "
                "set it to a zip or a folder in the Kaggle layout (Dataset/Train/Male/...)"
            )
        if self.source == "local" and not Path(self.path).exists():
            raise ParamsError(
                f"{where}.path: {self.path!r} does not exist; point it at a zip or a folder in the Kaggle layout"
            )
        if self.source == "local" and not (Path(self.path).is_file() or Path(self.path).is_dir()):
            raise ParamsError(
                f"{where}.path: {self.path!r} is not a regular file or a folder (a FIFO, device or socket); "
                "point it at a zip or a folder in the Kaggle layout"
            )
        if self.kaggle_dataset.count("/") != 1:
            raise ParamsError(f"{where}.kaggle_dataset: {self.kaggle_dataset!r} is not an 'owner/dataset' slug")


@dataclass(frozen=True)
class ValidateParams:
    """Section ``validate``: the bounds of the Great Expectations suite."""

    class_names: list[str] = field(default_factory=lambda: ["Female", "Male"])
    min_width: int = _num(32, lo=1)
    max_width: int = _num(4096, lo=1)
    min_height: int = _num(32, lo=1)
    max_height: int = _num(4096, lo=1)
    max_pixels: int = _num(50_000_000, lo=1)  # larger images are refused before decoding
    max_file_mb: int = _num(50, lo=1)  # a larger image file is not read (flows.predict)
    allowed_modes: list[str] = field(default_factory=lambda: ["RGB"])
    allowed_formats: list[str] = field(default_factory=lambda: ["JPEG"])
    min_per_class: int = _num(10, lo=0)  # per split and class
    min_class_share: float = _num(0.2, lo=0.0, hi=0.5)  # each class's share of each split
    max_dropped: int = _num(0, lo=0)  # undecodable files dropped and reported, not fatal, up to this
    workers: int = _num(0, lo=0)  # 0: one per core
    max_drift_psi: float = _num(0.25, lo=0.0)  # per feature, against the blessed model's training data
    max_duplicates: int = _num(0, lo=0)  # files with an identical copy in the same split
    max_near_duplicates: int = _num(0, lo=0)  # files with a near-duplicate in another split

    def check(self, where: str) -> None:
        if len(set(self.class_names)) != len(self.class_names) or len(self.class_names) < 2:
            raise ParamsError(f"{where}.class_names: need two or more distinct names")
        for lo, hi in (("min_width", "max_width"), ("min_height", "max_height")):
            if getattr(self, lo) > getattr(self, hi):
                raise ParamsError(f"{where}.{lo}: greater than {where}.{hi}")


@dataclass(frozen=True)
class PreprocessParams:
    """Section ``preprocess``: how the TFRecord shards are laid out."""

    shards_per_split: int = _num(2, lo=1, hi=1024)


@dataclass(frozen=True)
class ModelParams:
    """Section ``model``: the backbone, its input size and the head."""

    # A TF Hub / Kaggle Models URL, a local SavedModel folder, or a built-in name
    # (small_cnn, resnet50v2: random weights, for offline runs and cost measurements).
    handle: str = "small_cnn"
    image_size: int = _num(96, lo=16, hi=1024)  # images are resized to this square side
    dropout: float = _num(0.2, lo=0.0, hi=0.9)

    def check(self, where: str) -> None:
        try:
            handle_kind(self.handle)
        except ValueError as exc:
            raise ParamsError(f"{where}.handle: {exc}") from None


@dataclass(frozen=True)
class TrainParams:
    """Section ``train``: phase 1 (frozen backbone, cached features) and phase 2 (fine-tuning)."""

    batch_size: int = _num(32, lo=1, hi=4096)
    epochs: int = _num(3, lo=1)  # phase 1: the head on features computed once
    learning_rate: float = _num(0.01, lo=1e-7, hi=1.0)
    fine_tune_epochs: int = _num(20, lo=0)  # phase 2, off when 0
    fine_tune_layers: int = _num(0, lo=0)  # the top N variable groups of the backbone; 0: all
    fine_tune_learning_rate: float = _num(1e-3, lo=1e-8, hi=1.0)
    augment_flip: bool = True  # phase 2 only
    augment_brightness: float = _num(0.1, lo=0.0, hi=1.0)
    # graph rewrite that reaches the backbone: float16 on a GPU, bfloat16 on a CPU that has it, else float32
    mixed_precision: bool = False
    distribution: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"  # batch_size is per replica
    seed: int = _num(42, lo=0, hi=MAX_SEED)


@dataclass(frozen=True)
class EvaluateParams:
    """Section ``evaluate``: the Test pass and its quality measures."""

    batch_size: int = _num(64, lo=1, hi=4096)
    positive_class: str = "Male"  # ROC AUC, the ROC curve and the reliability diagram are for this class
    sample_images: int = _num(16, lo=0, hi=64)  # in the sample-prediction grid
    bootstrap_samples: int = _num(1000, lo=100, hi=100000)  # resamples for the 95% intervals
    calibration_bins: int = _num(10, lo=2, hi=100)  # equal-width confidence bins for ECE
    temperature_scaling: bool = True  # fit a temperature on Validation and report its effect on Test
    slice_bins: int = _num(4, lo=1, hi=20)  # quantile bins for the brightness and JPEG-size slices
    brightness_delta: float = _num(0.05, lo=0.0, hi=0.5)  # behaviour check: +/- this share of 255
    mixed_precision: bool = False  # run the model as train.mixed_precision does (tasks/precision.py)
    seed: int = _num(42, lo=0, hi=MAX_SEED)  # bootstrap resampling


@dataclass(frozen=True)
class PromoteParams:
    """Section ``promote``: the quality gate that decides whether the candidate becomes the blessed model."""

    batch_size: int = _num(64, lo=1, hi=4096)  # for the blessed model's pass over Test
    min_accuracy: float = _num(0.9, lo=0.0, hi=1.0)  # the gate's absolute floor on Test accuracy
    # a drop below the blessed model (accuracy, each recall) that fails the gate when it is 95% certain
    max_regression: float = _num(0.01, lo=0.0, hi=1.0)
    # when the blessed model's comparison decides: same_data (trained on the same dataset with the same
    # backbone, image size and classes), always, or never; it is computed and shown in every case
    baseline: Literal["same_data", "always", "never"] = "same_data"
    bootstrap_samples: int = _num(1000, lo=100, hi=100000)  # paired resamples of the Test images
    seed: int = _num(42, lo=0, hi=MAX_SEED)


@dataclass(frozen=True)
class Params:
    """All of params.yaml."""

    data: DataParams = field(default_factory=DataParams)
    validate: ValidateParams = field(default_factory=ValidateParams)
    preprocess: PreprocessParams = field(default_factory=PreprocessParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    promote: PromoteParams = field(default_factory=PromoteParams)

    def check(self, where: str) -> None:
        if self.evaluate.positive_class not in self.validate.class_names:
            raise ParamsError(
                f"evaluate.positive_class: {self.evaluate.positive_class!r} is not one of "
                f"validate.class_names {self.validate.class_names}"
            )


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (dataclasses are built)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ParamsError(f"{key}: unknown value {value!r}; use one of {', '.join(map(repr, allowed))}")
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, str) and _INT_LIKE.fullmatch(value.strip()):
        raise ParamsError(f"{key}: {value!r} is written as a float; write the whole number, e.g. 1000000")
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        raise ParamsError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is float and not math.isfinite(value):  # NaN would pass every range check (comparisons are False)
        raise ParamsError(f"{key}: {value!r} is not a finite number; give a number")
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{where}.{unknown[0]}: unknown key; the keys of {where or 'params'} are {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in raw:
            continue
        value = _coerce(hints[name], raw[name], key)
        lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
        if lo is not None and value < lo or hi is not None and value > hi:
            bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise ParamsError(f"{key}: {value!r} is out of range; it must be {bounds}")
        values[name] = value
    obj = cls(**values)
    if hasattr(obj, "check"):
        obj.check(where)
    return obj


def parse(raw: Any, source: str = paths.PARAMS_FILE) -> Params:
    """Build :class:`Params` from an already-parsed mapping; errors name ``source`` and the key."""
    try:
        return _build(Params, raw, "")
    except ParamsError as exc:
        raise ParamsError(f"{source}: {exc}") from None


def load(path: Path | str = paths.PARAMS_FILE) -> Params:
    """Load and check params.yaml (or another params file)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repository root or pass --params") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:  # an empty file would silently mean "all defaults"
        raise ParamsError(
            f"{path}: empty; it must hold the pipeline's sections (restore it: git checkout {path}, "
            "or cp configs/kaggle.yaml for the real configuration)"
        )
    return parse(raw, str(path))
