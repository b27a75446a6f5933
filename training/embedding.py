"""The model being trained as a :class:`models_definition.zoo.FaceEmbedder`: validation embeds through the
same class (preprocessing, batching, flip TTA, normalisation) as evaluation and live use.

One pass gives both settings: with flip the embedder calls its forward on each batch and then on its
mirror; :class:`LiveForward` keeps those raw outputs, so the plain embedding (and the raw one, which the
head's validation loss needs) comes with the flip-summed one without embedding anything twice.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np
import torch

from facedata.datasets import FaceFolder
from facedata.preprocess import Preprocess
from id_rate.scoring import l2_normalize
from models_definition.backbones import Embedder
from models_definition.precision import autocast
from models_definition.zoo import FaceEmbedder

from .data import checked, make_loader
from .errors import TrainingError

if TYPE_CHECKING:
    from .engine import Trainer

BATCH = 128  # crops per forward pass (the batches every epoch's figures were measured with)


class LiveForward:
    """``FaceEmbedder.forward`` for the model being trained, in its current weights: no Conv+BN folding (the
    figures are those of the weights ``last.pt`` saves); each call's raw output is kept in ``calls``."""

    def __init__(self, model: Embedder, device: torch.device, amp: bool, channels_last: bool) -> None:
        self.model, self.device, self.amp, self.channels_last = model, device, amp, channels_last
        self.calls: list[np.ndarray] = []

    @torch.no_grad()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).to(self.device, non_blocking=True)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.amp):
            e = self.model(t).float().cpu().numpy()
        self.calls.append(e)
        return e


@dataclass
class Embedded:
    """A set's embeddings from one pass: ``raw`` (plain crops, not normalised), ``plain`` (normalised) and,
    when flip was asked for, ``flip`` (the normalised sum of each crop's and its mirror's)."""

    raw: np.ndarray
    plain: np.ndarray
    flip: np.ndarray | None

    def unit(self, flip: bool) -> np.ndarray:
        if flip and self.flip is None:
            raise ValueError("embedded without flip")
        return self.flip if flip else self.plain


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (BatchNorm running statistics, no dropout) for the block, then the mode it had."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def live_embedder(model: Embedder, preprocess: Preprocess, device: torch.device, amp: bool,
                  channels_last: bool, flip: bool) -> FaceEmbedder:
    """A FaceEmbedder over the model's current weights (call it inside :func:`evaluating`)."""
    forward = LiveForward(model, device, amp, channels_last)
    return FaceEmbedder("training", forward, preprocess, model.embedding_size, flip_tta=flip, batch_size=BATCH)


def embed_batches(embedder: FaceEmbedder, batches: Iterable[Sequence[np.ndarray]]) -> Embedded:
    """Embed each batch of crops (at most ``embedder.batch_size`` each: one forward per batch and view)."""
    forward: LiveForward = embedder.forward  # type: ignore[assignment]
    forward.calls.clear()
    units = []
    for crops in batches:
        with _diverged():
            units.append(embedder(list(crops)))
    size = embedder.embedding_size
    if not units:
        empty = np.zeros((0, size), np.float32)
        return Embedded(empty, empty, empty if embedder.flip_tta else None)
    step = 2 if embedder.flip_tta else 1  # flip: the plain batch, then its mirror
    raw = np.concatenate(forward.calls[0::step]).astype(np.float32)
    unit = np.concatenate(units)
    if not embedder.flip_tta:
        return Embedded(raw, unit, None)
    with _diverged():  # the one normalisation FaceEmbedder applies too
        plain = l2_normalize(raw, f"model {embedder.name!r}: its embeddings")
    return Embedded(raw, plain, unit)


@contextmanager
def _diverged() -> Iterator[None]:
    """A NaN, inf or all-zero embedding (``EmbeddingValueError``, a FloatingPointError) as a TrainingError."""
    try:
        yield
    except FloatingPointError as exc:
        raise TrainingError(f"validation: {exc}; the weights have diverged (lower the learning rate, or resume "
                            "from an earlier last.pt)") from None


def embed_folder(trainer: "Trainer", folder: FaceFolder, flip: bool = False) -> Embedded:
    """The trainer's current model's embeddings of a folder's crops, in folder order (read by its loader
    workers; an unreadable image stops validation naming it): raw, normalised, and with ``flip`` flip-summed."""
    batches = folder_batches(folder)
    loader = make_loader(trainer.cfg, folder, None, batches) if batches else []
    return _embed(trainer, checked(loader, "validation"), flip)


def embed_crops(trainer: "Trainer", crops: list[np.ndarray], flip: bool = False) -> Embedded:
    """As :func:`embed_folder`, for decoded crops (a .bin's images)."""
    return _embed(trainer, ([crops[i] for i in b] for b in folder_batches(crops)), flip)


def _embed(trainer: "Trainer", batches: Iterable[Sequence[np.ndarray]], flip: bool) -> Embedded:
    # the precision load_model serves the model in (float16 on CUDA, float32 on a CPU unless the registry entry says
    # cpu_bf16), so the thresholds the checkpoint records are those of the embeddings it will be used with
    embedder = live_embedder(trainer.model, trainer.preprocess, trainer.device, trainer.cuda, trainer.channels_last,
                             flip)
    with evaluating(trainer.model):
        return embed_batches(embedder, batches)


def folder_batches(items: Sequence, size: int = BATCH) -> list[list[int]]:
    """Indices of the items (a folder's, a list's) in order, ``size`` a batch."""
    idx = list(range(len(items)))
    return [idx[i:i + size] for i in range(0, len(idx), size)]

