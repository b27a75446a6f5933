"""Augmentation: reproducible per seed, different across seeds, shape and dtype kept, options checked."""
from __future__ import annotations

import numpy as np
import pytest

from facedata.augment import NO_AUGMENT, Augment, teacher_view


def test_augment_is_seeded_and_varied(obama):
    crop = np.ascontiguousarray(obama[100:212, 100:212])
    aug = Augment()
    a = aug(crop, np.random.default_rng(5))
    assert a.shape == crop.shape and a.dtype == np.uint8
    assert np.array_equal(a, aug(crop, np.random.default_rng(5)))  # same seed, same view (exact resume)
    views = [aug(crop, np.random.default_rng(s)) for s in range(6)]
    assert len({v.tobytes() for v in views}) == 6  # K views of one portrait differ
    assert np.array_equal(NO_AUGMENT(crop, np.random.default_rng(0)), crop)


def test_augment_flip_only_mirrors(obama):
    crop = np.ascontiguousarray(obama[100:212, 100:212])
    flip = Augment(flip_p=1.0, jitter=0, blur_p=0, max_rotate_deg=0, max_scale=0, max_shift_frac=0, grayscale_p=0)
    assert np.array_equal(flip(crop, np.random.default_rng(0)), crop[:, ::-1])


def test_augment_round_trip_and_errors():
    a = Augment(blur_kernel_px=(3, 5))
    assert Augment.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match=r"unknown augmentation options \['flip'\]"):
        Augment.from_dict({"flip": 0.5})


def test_teacher_views_are_fixed_per_image_and_view(obama):
    aug = Augment()
    assert teacher_view(aug, obama, 5, 0, seed=1) is obama  # view 0: the crop itself
    assert teacher_view(None, obama, 5, 3, seed=1) is obama  # no augmentation: every view is the crop
    a = teacher_view(aug, obama, 5, 3, seed=1)
    assert np.array_equal(a, teacher_view(aug, obama, 5, 3, seed=1))  # the teacher and the student agree
    assert not np.array_equal(a, teacher_view(aug, obama, 5, 4, seed=1))
    assert not np.array_equal(a, teacher_view(aug, obama, 6, 3, seed=1))
    assert not np.array_equal(a, teacher_view(aug, obama, 5, 3, seed=2))
