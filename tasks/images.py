"""Decoded images as a viewer shows them: 8-bit RGB, upright."""

from __future__ import annotations

from typing import Any

import numpy as np

WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # 16-bit PNGs open as one of these


def as_rgb(img: Any) -> Any:
    """An 8-bit RGB copy of a decoded PIL image.

    16-bit greys are scaled to 8 bits (Pillow's own ``convert`` clips them, which turns a 16-bit
    photo almost white); transparency is flattened onto white.
    """
    from PIL import Image

    if img.mode in WIDE_GREY_MODES:
        wide = np.asarray(img, dtype=np.int64)
        img = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), "L")
    elif img.mode in ("RGBA", "LA", "P", "PA"):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    return img.convert("RGB")


ORIENTATION_TAG = 0x0112  # EXIF: how the stored pixels must be turned to show the photo upright
# EXIF orientation -> the same turn as Pillow's ImageOps.exif_transpose, on a (height, width, channels) array
_TURNS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, k=1),
}


def orientation(img: Any) -> int:
    """The EXIF orientation of a PIL image (1, upright, when it has none)."""
    value = img.getexif().get(ORIENTATION_TAG, 1)
    return value if value in _TURNS else 1


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Decoded pixels turned as their EXIF ``orientation`` says (a phone photo stored sideways)."""
    turn = _TURNS.get(orientation)
    return np.ascontiguousarray(turn(pixels)) if turn else pixels
