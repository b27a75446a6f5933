"""Training augmentation of aligned crops (RGB uint8 in, RGB uint8 out), driven by an explicit RNG.

The generator is passed in rather than global so that a training run draws the same views for the
same (seed, epoch, position) whatever the number of loader workers: resume is exact, and one portrait
repeated K times in a P x K batch still gives K different views.

The defaults are the seed project's (horizontal flip; colour jitter 0.3 with p=0.5; Gaussian blur 3-7
px with p=0.25) plus a small random similarity warp, which keeps the crop close to the alignment
template the model sees at test time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .preprocess import check_fields


@dataclass(frozen=True)
class Augment:
    flip_p: float = 0.5  # mirror: faces are near-symmetric, doubles the views for free
    jitter: float = 0.3  # brightness / contrast / saturation factors in [1 - jitter, 1 + jitter]
    jitter_p: float = 0.5
    blur_p: float = 0.25  # webcam and video frames are often soft
    blur_kernel_px: tuple[int, int] = (3, 7)  # odd kernel sides drawn from this range
    max_rotate_deg: float = 8.0  # residual roll after alignment
    max_scale: float = 0.08  # +- relative zoom
    max_shift_frac: float = 0.04  # +- translation as a share of the side
    grayscale_p: float = 0.05  # some test photos are monochrome

    def __call__(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = crop
        h, w = out.shape[:2]
        if self.max_rotate_deg or self.max_scale or self.max_shift_frac:
            angle = rng.uniform(-self.max_rotate_deg, self.max_rotate_deg)
            scale = 1.0 + rng.uniform(-self.max_scale, self.max_scale)
            m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
            m[:, 2] += rng.uniform(-self.max_shift_frac, self.max_shift_frac, 2) * (w, h)
            out = cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        if rng.random() < self.flip_p:
            out = out[:, ::-1]
        if self.jitter and rng.random() < self.jitter_p:
            b, c, s = rng.uniform(1 - self.jitter, 1 + self.jitter, 3)
            x = out.astype(np.float32) * b
            x = (x - x.mean()) * c + x.mean()
            gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
            x = (x - gray[..., None]) * s + gray[..., None]
            out = np.clip(x, 0, 255).astype(np.uint8)
        if rng.random() < self.grayscale_p:
            g = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)
            out = np.repeat(g[..., None], 3, axis=2)
        if rng.random() < self.blur_p:
            lo, hi = self.blur_kernel_px
            k = int(rng.choice(np.arange(lo, hi + 1, 2)))
            out = cv2.GaussianBlur(np.ascontiguousarray(out), (k, k), 0)
        return np.ascontiguousarray(out)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blur_kernel_px"] = list(self.blur_kernel_px)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Augment":
        check_fields(cls, d, "augmentation options")
        d = dict(d)
        if "blur_kernel_px" in d:
            d["blur_kernel_px"] = tuple(d["blur_kernel_px"])
        return cls(**d)


NO_AUGMENT = Augment(flip_p=0, jitter=0, jitter_p=0, blur_p=0, max_rotate_deg=0, max_scale=0, max_shift_frac=0,
                     grayscale_p=0)


TEACHER_VIEW_VERSION = 1  # bump when teacher_view or Augment draws other pixels: cached teacher tables key on it


def teacher_view(augment: Augment | None, crop: np.ndarray, image: int, view: int, seed: int) -> np.ndarray:
    """View ``view`` of training image ``image`` for distillation. View 0 is the crop itself; the others are
    ``augment``ed with an RNG fixed by ``(seed, image, view)``. The teacher embeds every view once (cached)
    and the student draws one view a step: both see the same pixels, so the target is the teacher's answer
    to exactly what the student sees (consistent augmentation, Beyer et al. 2022, "a good teacher is patient
    and consistent")."""
    if view == 0 or augment is None:
        return crop
    return augment(crop, np.random.default_rng((seed, image, view)))
