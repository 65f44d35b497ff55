"""Broken image files for fuzzing the readers: mutated JPEG and PNG bytes, and crafted decompression bombs.

Every case is made from a valid image by one mutation, with a fixed seed, so a failure names a case
that can be made again.
"""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
from PIL import Image

from tests.helpers.data import jpeg


def _png_chunk(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    """One PNG chunk; ``length`` overrides the declared length (a lying header)."""
    size = len(body) if length is None else length
    return struct.pack(">I", size) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _insert_png_chunk(png: bytes, chunk: bytes) -> bytes:
    """``chunk`` placed right after IHDR (8 bytes of signature, 25 of IHDR)."""
    return png[:33] + chunk + png[33:]


def _exif_jpeg(base: Image.Image, body: bytes) -> bytes:
    """A JPEG whose APP1 segment holds ``body`` after the Exif header."""
    data = jpeg(base)
    app1 = b"Exif\x00\x00" + body
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def _bombs(base: Image.Image) -> dict[str, bytes]:
    png = jpeg(base, "PNG")
    huge = _png_chunk(b"IHDR", struct.pack(">II", 2**31 - 1, 2**31 - 1) + png[24:29])  # 2^62 pixels declared
    orientation_9 = b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x09\x00"  # no such turn
    zeros = zlib.compress(b"\0" * (2 << 20), 9)  # 2 MB inflated: over Pillow's 1 MB text and ICC limits
    return {
        "png-ztxt-bomb": _insert_png_chunk(png, _png_chunk(b"zTXt", b"Comment\0\0" + zeros)),
        "png-itxt-bomb": _insert_png_chunk(png, _png_chunk(b"iTXt", b"Comment\0\1\0\0\0" + zeros)),
        "png-iccp-bomb": _insert_png_chunk(png, _png_chunk(b"iCCP", b"icc\0\0" + zeros)),
        "png-oversized-chunk": _insert_png_chunk(png, _png_chunk(b"tEXt", b"a\0b", length=0x7FFFFFF0)),
        "png-huge-dimensions": png[:8] + huge + png[33:],
        "jpeg-exif-truncated": _exif_jpeg(base, b"II*\x00\x08\x00\x00\x00\xff\xff"),
        "jpeg-exif-odd-orientation": _exif_jpeg(base, orientation_9),
        "jpeg-exif-garbage": _exif_jpeg(base, bytes(range(256)) * 4),
    }


def cases(seed: int = 0, flips: int = 12) -> dict[str, bytes]:
    """Named broken files: truncations, flipped bytes and bombs of a valid JPEG and PNG."""
    rng = random.Random(seed)
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    base = Image.fromarray(pixels)
    found = _bombs(base)
    for fmt, data in (("jpeg", jpeg(base)), ("png", jpeg(base, "PNG"))):
        for cut in (0, 1, 8, 30, len(data) // 2, len(data) - 1):
            found[f"{fmt}-truncated-{cut}"] = data[:cut]
        for n in range(flips):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            found[f"{fmt}-flipped-{n}"] = bytes(mutated)
    return found
