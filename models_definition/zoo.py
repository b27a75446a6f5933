"""Models by name: ``load_model(name)`` -> a :class:`FaceEmbedder` (model + its preprocessing).

The names and their checkpoints live in ``config.MODELS`` (plain data). An entry is either a trained
checkpoint (``{"checkpoint": path, "recipe": name, ...}``) or a reference embedder (``{"reference":
"sface"}``); both may state the unknown-face threshold as a cosine similarity and the FPR it was
measured at. A checkpoint entry without one takes the threshold its training run measured on held-out
identities (``spec["metrics"]["threshold_cos@fpr=1e-3"]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from facedata.preprocess import Preprocess

from .backbones import fuse_conv_bn
from .checkpoint import model_from_checkpoint
from .reference import DLIB_PREPROCESS, SFACE_PREPROCESS, DlibNet, SFaceNet


class ModelNotFoundError(KeyError):
    """An unknown model name, or a known one whose checkpoint is not there (the message says how to train it)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class FaceEmbedder:
    """Aligned RGB uint8 crops -> L2-normalised float32 embeddings, batched, with optional flip TTA
    (the embedding of the crop plus that of its mirror, normalised: the LFW convention)."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]  # preprocessed (N, 3, S, S) float32 -> (N, D)
    preprocess: Preprocess
    embedding_size: int
    threshold: float | None = None  # cosine similarity; below it a face is "Unknown"
    threshold_fpr: float | None = None  # the FPR the threshold was measured at
    spec: dict[str, Any] = field(default_factory=dict)
    flip_tta: bool = False
    batch_size: int = 64
    checkpoint: Path | None = None  # the file the weights came from (caches key on it); None otherwise

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = np.stack([self.preprocess.to_array(c) for c in crops[i:i + self.batch_size]])
            e = self.forward(x)
            if self.flip_tta:
                e = e + self.forward(np.ascontiguousarray(x[:, :, :, ::-1]))
            out.append(e)
        e = np.concatenate(out).astype(np.float32)
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        if not np.all(np.isfinite(e)) or np.any(norms == 0):
            raise FloatingPointError(f"model {self.name!r} gave NaN or zero embeddings")
        return e / norms


def _torch_forward(model: torch.nn.Module, device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    """Inference on an eval-mode model, its Conv+BN folded and NHWC: measured 1.3x (MobileFaceNet) on a
    2-core CPU (benchmarks/README.md)."""
    model = fuse_conv_bn(model).to(device).to(memory_format=torch.channels_last)
    amp = device.type == "cuda"

    @torch.inference_mode()
    def forward(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            return model(t).float().cpu().numpy()

    return forward


def _registry(registry: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    if registry is not None:
        return registry
    import config  # the project's model dict; only read here, so models_definition stays importable alone

    return config.MODELS


def load_model(name: str, registry: dict[str, dict[str, Any]] | None = None, device: str | None = None,
               flip_tta: bool = False, batch_size: int = 64) -> FaceEmbedder:
    """The embedder called ``name`` in ``registry`` (default ``config.MODELS``), ready for inference."""
    models = _registry(registry)
    if name not in models:
        raise ModelNotFoundError(f"unknown model {name!r}; valid: {', '.join(sorted(models))}")
    entry = models[name]
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if entry.get("reference") == "sface":
        net = SFaceNet()
        return FaceEmbedder(name, net, SFACE_PREPROCESS, net.embedding_size, entry.get("threshold_cos"),
                            entry.get("threshold_fpr"), {"reference": "sface"}, flip_tta, batch_size)
    if entry.get("reference") == "dlib":
        net = DlibNet()
        return FaceEmbedder(name, net, DLIB_PREPROCESS, net.embedding_size, entry.get("threshold_cos"),
                            entry.get("threshold_fpr"), {"reference": "dlib"}, flip_tta, batch_size)
    if "random_init" in entry:  # the untrained baseline of a comparison: seeded, so every run is the same model
        from facedata.preprocess import get_preset

        from .backbones import build_embedder

        with torch.random.fork_rng():
            torch.manual_seed(entry.get("seed", 0))
            model = build_embedder(entry["random_init"], entry.get("embedding_size", 512)).eval()
        return FaceEmbedder(name, _torch_forward(model, dev), get_preset(entry.get("preprocess", "arcface112")),
                            model.embedding_size, None, None, {"random_init": entry["random_init"]}, flip_tta, batch_size)
    if "reference" in entry:
        raise ModelNotFoundError(f"model {name!r}: unknown reference embedder {entry['reference']!r}; valid: sface, dlib")
    path = Path(entry["checkpoint"])
    if not path.is_file():
        recipe = entry.get("recipe", name)
        raise ModelNotFoundError(
            f"model {name!r}: checkpoint {path} not found. Train it with `python train.py --recipe {recipe}` "
            f"(writes {path.parent}/best.pt and last.pt), or point config.MODELS[{name!r}]['checkpoint'] at a file")
    model, preprocess, spec = model_from_checkpoint(path, map_location=dev)
    threshold = entry.get("threshold_cos")
    fpr = entry.get("threshold_fpr")
    if threshold is None:
        threshold = (spec.get("metrics") or {}).get("threshold_cos@fpr=1e-3")
        fpr = 1e-3 if threshold is not None else None
    return FaceEmbedder(name, _torch_forward(model, dev), preprocess, model.embedding_size, threshold, fpr, spec,
                        flip_tta, batch_size, path)
