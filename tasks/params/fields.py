"""What every params section shares: numeric fields with bounds, and building a section from YAML.

Loading rejects unknown keys, wrong types and out-of-range values with a message that names the key
(``data.source``) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import field
from typing import Any, Literal

from tasks.errors import ParamsError

_INT_LIKE = re.compile(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+")  # 1e12: YAML reads it as a string
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit unsigned


def number(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A numeric field with inclusive bounds, checked at load time."""
    return field(default=default, metadata={"lo": lo, "hi": hi})


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (dataclasses are built)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
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
    return _scalar(tp, value, key)


def _scalar(tp: type, value: Any, key: str) -> Any:
    """Check a scalar ``value`` against ``tp`` (an int is a float too; a bool is neither)."""
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, str) and _INT_LIKE.fullmatch(value.strip()):
        raise ParamsError(f"{key}: {value!r} is written as a float; write the whole number, e.g. 1000000")
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        raise ParamsError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is float and not math.isfinite(value):  # NaN would pass every range check (comparisons are False)
        raise ParamsError(f"{key}: {value!r} is not a finite number; give a number")
    return value


def build(cls: type, raw: Any, where: str) -> Any:
    """The params dataclass ``cls`` from its parsed mapping ``raw`` (the section at ``where``), checked."""
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
