"""Faces in whole photos: OpenCV's bundled Haar cascade, then crops framed like the training images.

The training images are aligned face crops (CelebA: 178x218, the face in a fixed place). A photo
must be cut the same way before the model sees it: the detector's square box is widened by fixed
margins to a 178:218 crop. The margins were measured by running this detector on the training
crops themselves (the synthetic set, which copies CelebA's layout: median box x 0.45, y 0.62 and
178/1.91 of the box width); ``tests/code/test_faces.py`` checks that a detected training crop maps
back onto itself. The cascade ships inside the ``opencv-python-headless`` 4.x wheel: nothing is
downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
CROP_ASPECT = 218 / 178  # height / width of a training crop
LEFT, TOP, WIDTH = 0.45, 0.62, 1.91  # crop left and top offsets and crop width, in units of the box width
SCALE_FACTOR, MIN_NEIGHBOURS = 1.05, 5
MIN_FACE = 0.06  # smallest face side searched, as a share of the photo's shorter side (at least 24 px)


@dataclass(frozen=True)
class Face:
    """A detected face: the detector's box and the training-style crop around it, both (x, y, w, h)."""

    box: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]


@lru_cache(maxsize=1)
def _detector():
    import cv2

    path = cv2.data.haarcascades + CASCADE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"{path}: OpenCV's Haar cascade is missing; install opencv-python-headless<5 (make setup)")
    return cascade


def crop_for(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The training-style crop (x, y, w, h) around a detector box; it may reach outside the photo."""
    x, y, w, _ = box
    width = round(WIDTH * w)
    return round(x - LEFT * w), round(y - TOP * w), width, round(width * CROP_ASPECT)


def _nested(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether the centre of either box lies inside the other."""

    def inside(p, q):
        cx, cy = p[0] + p[2] / 2, p[1] + p[3] / 2
        return q[0] <= cx <= q[0] + q[2] and q[1] <= cy <= q[1] + q[3]

    return inside(a, b) or inside(b, a)


def detect(image: np.ndarray) -> list[Face]:
    """Faces in an RGB uint8 photo, left to right.

    The cascade sometimes also fires on a larger window around a face; of boxes that nest, only the
    one with the strongest detector response is kept (one face, one answer).
    """
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    smallest = max(24, int(MIN_FACE * min(grey.shape)))
    boxes, _, weights = _detector().detectMultiScale3(
        grey, SCALE_FACTOR, MIN_NEIGHBOURS, minSize=(smallest, smallest), outputRejectLevels=True
    )
    kept: list[tuple[int, int, int, int]] = []
    for _, box in sorted(zip((float(w) for w in weights), (tuple(int(v) for v in b) for b in boxes)), reverse=True):
        if not any(_nested(box, other) for other in kept):
            kept.append(box)
    return [Face(box, crop_for(box)) for box in sorted(kept)]


def cut(image: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:
    """The crop's pixels; where it reaches past the photo's edge, the edge pixels are repeated."""
    x, y, w, h = crop
    height, width = image.shape[:2]
    pad = ((max(0, -y), max(0, y + h - height)), (max(0, -x), max(0, x + w - width)), (0, 0))
    inside = image[max(0, y) : min(height, y + h), max(0, x) : min(width, x + w)]
    return np.pad(inside, pad, mode="edge")
