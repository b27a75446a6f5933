"""Face alignment: from a detected face to a fixed-size crop.

Three named methods, in the :data:`ALIGNERS` registry:

* ``arcface`` (default): 5-point similarity transform (rotation, uniform scale, translation) fitted by
  least squares (Umeyama) onto the ArcFace 112x112 template, as insightface's ``norm_crop``. For other
  sizes the template is scaled by ``size / 112`` (e.g. 160 for InceptionResnetV1-style inputs).
* ``eye_rotation``: the seed project's method: rotate about the eye midpoint so the eye line is level,
  then crop the (rotated) detection box as a square and resize.
* ``box``: plain square crop around the detection box with a margin, no rotation.

Each returns the crop and the 2x3 affine matrix that maps source pixels to crop pixels.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .detect import Face

# ArcFace template, 112x112, (x, y): image-left eye, image-right eye, nose, mouth left, mouth right.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def arcface_template(size: int = 112) -> np.ndarray:
    """The ArcFace landmark template for a ``size`` x ``size`` crop (uniformly scaled from 112)."""
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    return ARCFACE_TEMPLATE_112 * np.float32(size / 112.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) mapping ``src`` points onto ``dst``; 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # avoid a reflection
        d[1] = -1
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / n
    if var_src == 0:
        raise ValueError("landmarks are all at one point: cannot fit a similarity transform")
    scale = (s * d).sum() / var_src
    t = dst_mean - scale * rot @ src_mean
    return np.hstack([scale * rot, t[:, None]]).astype(np.float32)


def _warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def align_arcface(rgb: np.ndarray, face: Face, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """5-point similarity warp onto the (scaled) ArcFace template."""
    matrix = similarity_transform(face.landmarks, arcface_template(size))
    return _warp(rgb, matrix, size), matrix


def align_eye_rotation(rgb: np.ndarray, face: Face, size: int = 112, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Level the eye line by a rotation about the eye midpoint, then crop the square around the box."""
    left, right = face.landmarks[0].astype(np.float64), face.landmarks[1].astype(np.float64)
    angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    centre = (left + right) / 2
    rot = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), 1.0)
    box_centre = np.array([(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2, 1.0])
    cx, cy = rot @ box_centre  # the box centre after rotation
    side = max(face.box[2] - face.box[0], face.box[3] - face.box[1]) * (1.0 + margin)
    scale = size / side
    crop = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])
    matrix = (crop @ np.vstack([rot, [0, 0, 1]])).astype(np.float32)
    return _warp(rgb, matrix, size), matrix


def align_box(rgb: np.ndarray, face: Face, size: int = 112, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Square crop centred on the detection box, side = longer box side x (1 + margin); no rotation."""
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    side = max(face.box[2] - face.box[0], face.box[3] - face.box[1]) * (1.0 + margin)
    scale = size / side
    matrix = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], dtype=np.float32)
    return _warp(rgb, matrix, size), matrix


Aligner = Callable[..., tuple[np.ndarray, np.ndarray]]
ALIGNERS: dict[str, Aligner] = {
    "arcface": align_arcface,
    "eye_rotation": align_eye_rotation,
    "box": align_box,
}


def get_aligner(name: str) -> Aligner:
    """Look up an alignment method by name; an unknown name lists the valid ones."""
    try:
        return ALIGNERS[name]
    except KeyError:
        raise KeyError(f"unknown alignment {name!r}; valid: {', '.join(sorted(ALIGNERS))}") from None


def align_face(rgb: np.ndarray, face: Face, method: str = "arcface", size: int = 112) -> np.ndarray:
    """Aligned ``size`` x ``size`` RGB crop of ``face`` by the named method."""
    crop, _ = get_aligner(method)(rgb, face, size=size)
    return crop


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ matrix[:, :2].T.astype(np.float64) + matrix[:, 2].astype(np.float64)).astype(np.float32)
