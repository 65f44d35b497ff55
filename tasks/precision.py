"""Reduced precision that reaches the TF Hub backbone: TensorFlow's graph rewrite.

A ``hub.KerasLayer`` backbone is a restored SavedModel whose dtypes were fixed when it was saved, so
the Keras mixed-precision policy only reaches the layers Keras builds (the head). Grappler's
automatic mixed precision rewrites the graphs TensorFlow runs, restored functions included:

* on a GPU, ``auto_mixed_precision`` (float16; training needs loss scaling, which phase 2 adds);
* on a CPU with bfloat16 instructions (AVX512_BF16 or AMX), ``auto_mixed_precision_onednn_bfloat16``;
* otherwise float32, and the run log says why.

Variables stay float32 (the rewrite casts around the ops it converts), so exported models are float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

FLOAT32, BFLOAT16, FLOAT16 = "float32", "bfloat16", "float16"
_OPTION = {BFLOAT16: "auto_mixed_precision_onednn_bfloat16", FLOAT16: "auto_mixed_precision"}
_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 instructions (Linux's /proc/cpuinfo flags)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return bool(flags & _BF16_FLAGS)


def choose(mixed: bool, gpus: int | None = None, bfloat16: bool | None = None) -> tuple[str, str]:
    """The precision to run in, and why, for a ``mixed_precision`` param on this machine."""
    if not mixed:
        return FLOAT32, "mixed precision is off"
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        return FLOAT16, "float16 graph rewrite on the GPU, with loss scaling when training"
    if cpu_has_bfloat16() if bfloat16 is None else bfloat16:
        return BFLOAT16, "oneDNN bfloat16 graph rewrite: this CPU has bfloat16 instructions"
    return FLOAT32, "mixed precision asked, but there is no GPU and this CPU has no bfloat16 instructions"


@contextlib.contextmanager
def rewrite(precision: str) -> Iterator[None]:
    """Run the TensorFlow graphs built inside in ``precision`` (a process-wide optimizer option, restored after)."""
    if precision == FLOAT32:
        yield
        return
    import tensorflow as tf

    option = _OPTION[precision]
    before = bool(tf.config.optimizer.get_experimental_options().get(option, False))
    tf.config.optimizer.set_experimental_options({option: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({option: before})
