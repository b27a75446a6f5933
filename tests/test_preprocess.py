"""The preprocessing contract, with hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from facedata.preprocess import PRESETS, Preprocess, get_preset


def test_hand_computed_normalisation():
    crop = np.zeros((112, 112, 3), np.uint8)
    crop[..., 0] = 255  # pure red
    x = Preprocess().to_array(crop)  # (x/255 - 0.5) / 0.5
    assert x.shape == (3, 112, 112) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0) and np.allclose(x[2], -1.0)
    bgr = Preprocess(color_order="BGR").to_array(crop)
    assert np.allclose(bgr[2], 1.0) and np.allclose(bgr[0], -1.0)  # red is the last channel in BGR
    imagenet = get_preset("imagenet112").to_array(crop)
    assert np.isclose(imagenet[0, 0, 0], (1 - 0.485) / 0.229) and np.isclose(imagenet[1, 0, 0], -0.456 / 0.224)


def test_resize_and_batch():
    p = get_preset("facenet160")
    crop = np.full((112, 112, 3), 128, np.uint8)
    t = p.batch([crop, crop])
    assert tuple(t.shape) == (2, 3, 160, 160)
    assert np.allclose(t.numpy(), (128 - 127.5) / 128, atol=1e-6)
    assert tuple(p.batch([]).shape) == (0, 3, 160, 160)


def test_roundtrip_and_errors():
    for p in PRESETS.values():
        assert Preprocess.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown preprocessing fields \\['colour'\\]"):
        Preprocess.from_dict({"colour": "RGB"})
    with pytest.raises(ValueError, match="color_order"):
        Preprocess(color_order="RGBA")
    with pytest.raises(KeyError, match="valid: arcface112"):
        get_preset("nope")
    with pytest.raises(ValueError, match="RGB uint8"):
        Preprocess().to_array(np.zeros((112, 112), np.uint8))
