"""Drawing detections and laying out crops (for notebooks, the real-time script and reports)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .detect import Face

LANDMARK_COLOURS = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255))  # RGB


def line_width(image: np.ndarray) -> int:
    """Box and text thickness for an image: 1 px up to 600 px, growing with the size."""
    return max(1, round(max(image.shape[:2]) / 400))


def draw_faces(rgb: np.ndarray, faces: Sequence[Face], labels: Sequence[str] | None = None,
               landmarks: bool = True, colour: tuple[int, int, int] = (0, 200, 0),
               colours: Sequence[tuple[int, int, int]] | None = None) -> np.ndarray:
    """A copy of ``rgb`` with each face's box, optional label and optional five landmarks drawn.
    ``colours`` gives one RGB colour per face (e.g. known / unknown); otherwise all use ``colour``."""
    out = np.ascontiguousarray(rgb.copy())
    thick = line_width(out)
    for i, face in enumerate(faces):
        c = colours[i] if colours is not None else colour
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), c, thick)
        text = labels[i] if labels is not None else f"{float(face.score):.2f}"
        if text:
            scale = 0.5 * thick
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            ty = max(th + base, y1)
            tx = max(0, min(x1, out.shape[1] - tw))  # keep the label inside the image
            cv2.rectangle(out, (tx, ty - th - base), (tx + tw, ty), c, -1)
            cv2.putText(out, text, (tx, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
        if landmarks:
            for (x, y), c in zip(face.landmarks, LANDMARK_COLOURS):
                cv2.circle(out, (int(round(float(x))), int(round(float(y)))), 2 * thick, c, -1)
    return out


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit ``rgb`` into ``size`` (w, h) keeping its aspect ratio, on black (the input when it fits already)."""
    w, h = size
    if rgb.shape[:2] == (h, w):
        return rgb
    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    nw, nh = max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))
    out = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def image_grid(images: Sequence[np.ndarray], cols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile equally-sized RGB images into one RGB image, row by row, on black."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    cols = min(cols, len(images))
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return grid
