"""IoU and the tracker, on hand-made boxes."""
from __future__ import annotations

import numpy as np
import pytest

from facedata.detect import Face
from recognition.tracker import IoUTracker, Track, iou_matrix


def face(x1, y1, x2, y2) -> Face:
    return Face(np.array([x1, y1, x2, y2], np.float32), np.float32(1.0), np.zeros((5, 2), np.float32))


def test_iou_by_hand():
    m = iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    assert m.shape == (1, 4)
    assert m[0] == pytest.approx([50 / 150, 1.0, 0.0, 0.0])
    assert iou_matrix(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_tracks_keep_ids_and_age_out():
    t = IoUTracker(min_iou=0.3, max_missed=1)
    a, b = t.update([face(0, 0, 10, 10), face(100, 0, 110, 10)])
    assert (a.id, b.id) == (0, 1)
    seen = t.update([face(101, 0, 111, 10), face(1, 0, 11, 10)])  # moved a little, listed in another order
    assert sorted((s.id, float(s.face.box[0])) for s in seen) == [(0, 1.0), (1, 101.0)]
    seen = t.update([face(1, 0, 11, 10)])  # track 1 missed once: kept, not reported
    assert [s.id for s in seen] == [0] and len(t.tracks) == 2
    seen = t.update([face(1, 0, 11, 10), face(300, 0, 310, 10)])  # missed twice: dropped; a new face
    assert sorted(s.id for s in seen) == [0, 2] and len(t.tracks) == 2


def test_when_a_track_is_embedded_again():
    tr = Track(0, face(0, 0, 10, 10))
    assert tr.needs_embedding(0, reembed_every=15, moved_iou=0.5)  # new
    tr.embedded_frame, tr.embedded_box = 0, tr.face.box.copy()
    assert not tr.needs_embedding(14, 15, 0.5)
    assert tr.needs_embedding(15, 15, 0.5)  # due
    tr.face = face(6, 0, 16, 10)  # IoU 4/16 = 0.25 with the embedded box: moved
    assert tr.needs_embedding(3, 15, 0.5)
