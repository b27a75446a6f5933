"""Drawing boxes and labels, and letterboxing, on hand-made images."""
from __future__ import annotations

import numpy as np

from facedata.detect import Face
from facedata.draw import draw_faces, letterbox


def face(x1, y1, x2, y2) -> Face:
    return Face(np.array([x1, y1, x2, y2], np.float32), np.float32(0.9), np.full((5, 2), (x1 + x2) / 2, np.float32))


def test_per_face_colours_and_labels_kept_inside():
    img = np.zeros((200, 300, 3), np.uint8)
    out = draw_faces(img, [face(10, 60, 60, 120), face(250, 60, 299, 120)], ["a", "a long name near the edge"],
                     landmarks=False, colours=[(0, 200, 0), (220, 30, 30)])
    assert tuple(out[90, 10]) == (0, 200, 0) and tuple(out[90, 250]) == (220, 30, 30)  # left box edges
    assert tuple(out[55, 240]) == (220, 30, 30)  # the long label moved left of its box to fit in the image
    assert img.max() == 0  # the input is not drawn on


def test_letterbox_by_hand():
    tall = np.full((100, 50, 3), 255, np.uint8)
    out = letterbox(tall, (200, 100))  # fits as 50x100 in the middle of 200x100
    assert out.shape == (100, 200, 3)
    assert out[:, 75:125].min() == 255 and out[:, :75].max() == 0 and out[:, 125:].max() == 0
    same = np.zeros((100, 200, 3), np.uint8)
    assert letterbox(same, (200, 100)) is same
