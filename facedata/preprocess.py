"""The preprocessing contract: the one place that turns an aligned face crop into a model input.

A :class:`Preprocess` says the input side, colour order, mean and std and which alignment the crop must
come from. Datasets, the gallery and the live path all call it, and checkpoints store it
(``to_dict`` / ``from_dict``), so training and inference cannot preprocess differently.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Sequence

import cv2
import numpy as np


def check_fields(cls: type, d: dict, what: str) -> None:
    """Refuse keys a dataclass does not have, listing the valid ones (stored specs and configs)."""
    unknown = set(d) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {what} {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}")


@dataclass(frozen=True)
class Preprocess:
    """Model input definition. Input crops are RGB uint8 (H, W, 3) from ``facedata.align``."""

    size_px: int = 112
    color_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # in [0, 1] units, per channel of color_order
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    alignment: str = "arcface"  # the facedata.align method the crop must be made with

    def __post_init__(self) -> None:
        if self.color_order not in ("RGB", "BGR"):
            raise ValueError(f"color_order must be 'RGB' or 'BGR', got {self.color_order!r}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        if self.size_px <= 0:
            raise ValueError(f"size_px must be positive, got {self.size_px}")

    def to_uint8(self, crop_rgb: np.ndarray) -> np.ndarray:
        """One crop -> uint8 (size, size, 3) in ``color_order``: resized if its size differs, not normalised."""
        if crop_rgb.ndim != 3 or crop_rgb.shape[2] != 3 or crop_rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) crop, got {crop_rgb.dtype} {crop_rgb.shape}")
        if crop_rgb.shape[:2] != (self.size_px, self.size_px):
            interp = cv2.INTER_AREA if crop_rgb.shape[0] > self.size_px else cv2.INTER_LINEAR
            crop_rgb = cv2.resize(crop_rgb, (self.size_px, self.size_px), interpolation=interp)
        return crop_rgb[:, :, ::-1] if self.color_order == "BGR" else crop_rgb

    def to_array(self, crop_rgb: np.ndarray) -> np.ndarray:
        """One crop -> float32 (3, size, size) array, normalised; resized if the crop size differs."""
        x = self.to_uint8(crop_rgb).astype(np.float32) * (1.0 / 255.0)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def normalize(self, batch):
        """:meth:`to_uint8` crops stacked as a torch uint8 (N, size, size, 3) tensor -> the float32 (N, 3, size,
        size) batch :meth:`batch` gives, value for value (the same float32 operations), in channels_last memory.
        Training loaders send uint8 (a quarter of the bytes between processes) and normalise here."""
        import torch

        x = batch.permute(0, 3, 1, 2).float() * (1.0 / 255.0)  # NHWC memory seen as NCHW: channels_last
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def __call__(self, crop_rgb: np.ndarray):
        """One crop -> torch float tensor (3, size, size)."""
        import torch

        return torch.from_numpy(self.to_array(crop_rgb))

    def batch(self, crops: Sequence[np.ndarray]):
        """Crops -> torch float tensor (N, 3, size, size)."""
        import torch

        if len(crops) == 0:
            return torch.empty((0, 3, self.size_px, self.size_px))
        return torch.from_numpy(np.stack([self.to_array(c) for c in crops]))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        check_fields(cls, d, "preprocessing fields")
        return cls(**{**d, "mean": tuple(d.get("mean", cls.mean)), "std": tuple(d.get("std", cls.std))})


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Named presets. Add an entry here rather than normalising anywhere else.
PRESETS: dict[str, Preprocess] = {
    # insightface / ArcFace-family models: 112 px, (x - 127.5) / 127.5.
    "arcface112": Preprocess(112, "RGB", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "arcface"),
    # The seed project: 160 px crops, ImageNet statistics for every backbone.
    "imagenet160": Preprocess(160, "RGB", IMAGENET_MEAN, IMAGENET_STD, "arcface"),
    "imagenet112": Preprocess(112, "RGB", IMAGENET_MEAN, IMAGENET_STD, "arcface"),
    # facenet-pytorch's fixed_image_standardization: (x - 127.5) / 128.
    "facenet160": Preprocess(160, "RGB", (127.5 / 255,) * 3, (128.0 / 255,) * 3, "arcface"),
    # OpenCV Zoo's SFace (and the PyTorch conversion of it): RGB pixel values 0..255, no normalisation.
    "sface112": Preprocess(112, "RGB", (0.0, 0.0, 0.0), (1 / 255.0,) * 3, "arcface"),
    # SFace's network on 64 px crops (resample_neck): a student 4x faster than SFace at 112 px at batch 64 (benchmarks/README.md)
    "sface64": Preprocess(64, "RGB", (0.0, 0.0, 0.0), (1 / 255.0,) * 3, "arcface"),
    # A small fast student: the 112 px ArcFace-template crop shrunk to 64 px (a third of the work per image).
    "arcface64": Preprocess(64, "RGB", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "arcface"),
}


def get_preset(name: str) -> Preprocess:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preprocessing preset {name!r}; valid: {', '.join(sorted(PRESETS))}") from None
