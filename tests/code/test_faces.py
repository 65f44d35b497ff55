"""Face detection and training-style crops (tasks/faces.py) on synthetic faces."""

from __future__ import annotations

import numpy as np

from tasks import faces, synthetic
from tests.helpers.data import overlap


def test_a_detected_training_crop_maps_back_onto_itself():
    """The margins reproduce the training framing: detect in a training crop, re-crop, get the crop."""
    ious = []
    for i in range(60):
        crop = np.asarray(synthetic.draw_face(np.random.default_rng(500 + i), bool(i % 2)))
        found = faces.detect(crop)
        if len(found) == 1:
            ious.append(overlap(found[0].crop, (0, 0, synthetic.WIDTH, synthetic.HEIGHT)))
    assert len(ious) >= 35, f"the detector found {len(ious)} of 60 synthetic faces"
    # measured: 44 of 60 found, median IoU 0.84, 89% at 0.7 or more (faces vary in size and place)
    assert np.median(ious) >= 0.8, ious
    assert np.mean(np.array(ious) >= 0.65) >= 0.85, ious


def test_pasted_faces_are_found_in_the_right_place():
    scenes = synthetic.photos(30, seed=1)
    found = 0
    for photo, rect, _ in scenes:
        detected = faces.detect(np.asarray(photo))
        assert len(detected) <= 1, f"{len(detected)} faces where one was pasted"
        if detected:
            found += 1
            assert overlap(detected[0].crop, rect) >= 0.6, (detected[0], rect)
    assert found >= 20, f"found {found} of 30 pasted faces"


def test_no_faces_on_backgrounds_alone():
    rng = np.random.default_rng(3)
    for _ in range(20):
        background = (rng.uniform(0, 255, (360, 480, 3)) * 0.3 + rng.integers(0, 256, 3) * 0.7).astype(np.uint8)
        assert faces.detect(background) == []


def test_cut_repeats_edge_pixels_past_the_border():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out = faces.cut(image, (-2, -1, 4, 3))
    assert out.shape == (3, 4, 3)
    assert (out[0, 0] == image[0, 0]).all()
    assert (out[2, 3] == image[1, 1]).all()
    assert (faces.cut(image, (1, 1, 2, 2)) == image[1:3, 1:3]).all()


def test_crop_has_the_training_aspect():
    x, y, w, h = faces.crop_for((100, 80, 93, 93))
    assert (w, h) == (178, 218)
    assert (x, y) == (58, 22)
