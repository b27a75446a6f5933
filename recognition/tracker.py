"""Face tracks between detections: greedy IoU association, so a face keeps its name without being
embedded again every frame."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facedata.detect import Face


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x1,y1,x2,y2 boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: np.clip(r[:, 2] - r[:, 0], 0, None) * np.clip(r[:, 3] - r[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class Track:
    """One face followed over frames. ``name``/``similarity`` come from its last embedding, taken at
    frame ``embedded_frame`` on box ``embedded_box``."""

    id: int
    face: Face
    name: str = ""
    similarity: float = float("nan")
    embedded_frame: int = -1
    embedded_box: np.ndarray | None = None
    missed: int = 0  # detections in a row that did not find this track

    def needs_embedding(self, frame: int, reembed_every: int, moved_iou: float) -> bool:
        """New, due for a refresh, or moved so far since its embedding that it may be someone else."""
        if self.embedded_box is None or frame - self.embedded_frame >= reembed_every:
            return True
        return float(iou_matrix(self.face.box, self.embedded_box)[0, 0]) < moved_iou


class IoUTracker:
    """Greedy IoU matching of new detections to tracks (highest IoU first). A track unmatched for more
    than ``max_missed`` detections in a row is dropped; an unmatched detection starts a track."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 1) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, faces: Sequence[Face]) -> list[Track]:
        """Associate this detection's faces with the tracks; returns the tracks seen in it."""
        iou = iou_matrix([t.face.box for t in self.tracks], [f.box for f in faces])
        matched_t: set[int] = set()
        matched_f: set[int] = set()
        if iou.size:
            for flat in np.argsort(-iou, axis=None):
                ti, fi = divmod(int(flat), iou.shape[1])
                if iou[ti, fi] < self.min_iou:
                    break
                if ti in matched_t or fi in matched_f:
                    continue
                matched_t.add(ti)
                matched_f.add(fi)
                self.tracks[ti].face = faces[fi]
                self.tracks[ti].missed = 0
        kept = []
        for ti, t in enumerate(self.tracks):
            if ti not in matched_t:
                t.missed += 1
            if t.missed <= self.max_missed:
                kept.append(t)
        for fi, f in enumerate(faces):
            if fi not in matched_f:
                kept.append(Track(self._next_id, f))
                self._next_id += 1
        self.tracks = kept
        return [t for t in self.tracks if t.missed == 0]
