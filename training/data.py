"""A run's data: its splits, the samplers that batch them and the loaders that read them.

Reproducibility: the sampler draws from (seed, epoch) and each batch position gets an augmentation seed
from (seed, epoch, batch, position) (:class:`KeyedBatches`), so views do not depend on worker scheduling
and a resumed run sees the batches an uninterrupted one would have.

An image that cannot be read stops the run with an error naming the file (never a traceback, never a
silent skip: skipping would change the batches, so the run could no longer be resumed or repeated
exactly, and would train on other data than its split lists). Loader workers send the failure back as a
value (:class:`ReadFailure`), since an exception crossing the worker boundary loses its type and file.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from facedata.datasets import FaceDataset, FaceFolder, held_out_split, stratified_split
from facedata.errors import DatasetError, FaceDataError, ImageReadError
from facedata.preprocess import Preprocess
from facedata.samplers import PairSampler, PKSampler, ShuffleSampler

from .config import TrainConfig
from .errors import TrainingError


@dataclass
class Splits:
    train: FaceFolder
    val: FaceFolder  # closed-set: training identities, other images (may be empty)
    query: FaceFolder  # open-set, unseen identities (may be empty)
    distractor: FaceFolder
    # the images of the benchmark's people (SplitSpec.benchmark_*): never trained on, never used in the run; kept
    # so that a distillation run refuses them in extra_data
    benchmark_paths: list = dataclasses.field(default_factory=list)


def make_splits(cfg: TrainConfig) -> Splits:
    """Identity filter, identity-disjoint open-set hold-out, then the per-identity closed-set split."""
    split = cfg.split
    held = held_out_split(split)  # evaluation rebuilds the same split from the checkpoint's spec["split"]
    folder, rest, query, distractor = held.train, held.train, held.query, held.distractor
    if split.max_train_classes is not None and len(np.unique(rest.labels)) > split.max_train_classes:
        chosen = np.random.default_rng(split.split_seed).choice(np.unique(rest.labels), split.max_train_classes,
                                                               replace=False)
        rest = rest.subset(np.flatnonzero(np.isin(rest.labels, chosen)))
    if split.val_fraction > 0:
        train, val = stratified_split(rest, (1 - split.val_fraction, split.val_fraction), split.split_seed)
    else:
        train, val = rest, rest.subset([])
    # Labels of the classifier: only identities that have training images, numbered 0..C-1.
    kept = np.unique(train.labels)
    remap = np.full(len(folder.classes), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    classes = [folder.classes[i] for i in kept]

    def relabel(f: FaceFolder, keep_unknown: bool) -> FaceFolder:
        lab = remap[f.labels] if not keep_unknown else f.labels
        return f.relabel(classes if not keep_unknown else folder.classes, lab)

    benchmark_paths = [p for f in (held.benchmark_query, held.benchmark_distractor) if f is not None for p in f.paths]
    return Splits(relabel(train, False), relabel(val, False), relabel(query, True), relabel(distractor, True),
                  benchmark_paths)


class KeyedBatches:
    """Wraps an epoch sampler: keeps this rank's batches and gives each position an augmentation seed
    derived from (seed, epoch, batch, position), so views do not depend on worker scheduling."""

    def __init__(self, sampler, seed: int, epoch: int, rank: int = 0, world: int = 1) -> None:
        self.sampler, self.seed, self.epoch, self.rank, self.world = sampler, seed, epoch, rank, world

    def __len__(self) -> int:
        return len(range(self.rank, len(self.sampler), self.world))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        self.sampler.set_epoch(self.epoch)
        for b, batch in enumerate(self.sampler):
            if b % self.world == self.rank:
                seeds = np.random.SeedSequence([self.seed, self.epoch, b]).generate_state(len(batch))
                yield [(int(i), int(s)) for i, s in zip(batch, seeds)]


def make_sampler(cfg: TrainConfig, labels: np.ndarray, seed: int):
    """The epoch sampler the settings ask for over ``labels``; a head that needs another batch shape is refused."""
    all_pairs = cfg.head_kwargs.get("pairs") == "all"
    if cfg.head == "contrastive" and cfg.sampler != ("pk" if all_pairs else "pairs"):
        raise TrainingError("the contrastive head needs pairs back to back (sampler='pairs'), or with "
                            "head_kwargs pairs='all' a P x K batch (sampler='pk')")
    if cfg.head == "triplet" and cfg.sampler != "pk":
        raise TrainingError("the triplet head mines inside P x K batches: use sampler='pk'")
    try:
        if cfg.sampler == "pk":  # TrainConfig checked that batch_size is a multiple of pk_k, P >= 2
            return PKSampler(labels, p=cfg.batch_size // cfg.pk_k, k=cfg.pk_k,
                             batches_per_epoch=cfg.batches_per_epoch, seed=seed,
                             min_images=2 if cfg.augment is None else 1)
        if cfg.sampler == "pairs":
            return PairSampler(labels, pairs=cfg.batch_size // 2, batches_per_epoch=cfg.batches_per_epoch, seed=seed,
                               repeat_single=cfg.augment is not None)
        return ShuffleSampler(labels, cfg.batch_size, seed=seed)
    except DatasetError as exc:
        raise DatasetError(f"{cfg.data}: training split too small for the {cfg.sampler!r} sampler: {exc}") from None


@dataclass(frozen=True)
class ReadFailure:
    """An image a loader worker could not read, sent back as a batch (an exception would arrive as a
    RuntimeError holding a traceback's text)."""

    path: str
    detail: str

    def error(self, what: str) -> TrainingError:
        return TrainingError(f"{self.path}: cannot be read ({self.detail}); {what} stopped. Replace or remove the "
                             "file (a folder: re-run python -m facedata.prepare; a pack: rebuild it with python -m "
                             "facedata.pack), then start the run again")


class _Items:
    """A dataset over ``folder`` whose unreadable items come back as :class:`ReadFailure` instead of raising
    (a file's ImageReadError, or a pack record that is not an image)."""

    def __init__(self, dataset, folder: FaceFolder) -> None:
        self.dataset, self.folder = dataset, folder

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        try:
            return self.dataset[key]
        except FaceDataError as exc:
            i = key[0] if isinstance(key, tuple) else key
            detail = exc.detail if isinstance(exc, ImageReadError) else str(exc)
            return ReadFailure(str(self.folder.paths[i]), detail)

    def __getattr__(self, name: str) -> Any:  # the wrapped dataset's attributes (preprocess, augment, ...)
        if name == "dataset" or name.startswith("__"):  # not set yet (unpickling in a spawned worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)


class _Crops:
    """Item i: the folder's RGB crop, as read (validation preprocesses it in the embedder)."""

    def __init__(self, folder: FaceFolder) -> None:
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.folder.read(i)


def _collate_tensors(items: list) -> Any:
    bad = next((it for it in items if isinstance(it, ReadFailure)), None)
    return bad if bad is not None else torch.utils.data.default_collate(items)


def _collate_crops(items: list) -> Any:
    bad = next((it for it in items if isinstance(it, ReadFailure)), None)
    return bad if bad is not None else items


def loader_workers(cfg: TrainConfig, folder: FaceFolder, device_type: str) -> int:
    """``cfg.workers``, or when it is None: 0 for crops in memory on a CPU, else 2 (see TrainConfig.workers)."""
    if cfg.workers is not None:
        return cfg.workers
    return 0 if folder.crops is not None and device_type == "cpu" else 2


def make_loader(cfg: TrainConfig, folder: FaceFolder, preprocess: Preprocess | None, batches, augment=None,
                persistent: bool = False, device_type: str = "cpu") -> torch.utils.data.DataLoader:
    """A loader over ``batches`` (lists of keys) of ``folder``: ``(images, labels)`` tensors, the images uint8
    (N, size, size, 3) for ``preprocess.normalize`` (with ``augment``, augmented first); with ``preprocess``
    None, lists of raw RGB crops. A batch holding an
    unreadable image comes as its :class:`ReadFailure` (see :func:`checked`)."""
    if preprocess is None:
        ds, collate = _Items(_Crops(folder), folder), _collate_crops
    else:
        ds = _Items(FaceDataset(folder, preprocess, augment, views=cfg.teacher_views if augment else 0,
                                view_seed=cfg.seed, as_uint8=True), folder)
        collate = _collate_tensors
    workers = loader_workers(cfg, folder, device_type)
    # the loader's own generator: its worker seeds must not draw from (and so move) the global torch RNG
    return torch.utils.data.DataLoader(
        ds, batch_sampler=batches, num_workers=workers, pin_memory=device_type == "cuda", collate_fn=collate,
        generator=torch.Generator().manual_seed(cfg.seed), persistent_workers=persistent and workers > 0,
        prefetch_factor=4 if workers else None)


def checked(loader, what: str) -> Iterator[Any]:
    """The loader's batches; an unreadable image stops ``what`` with a :class:`TrainingError` naming it."""
    for batch in loader:
        if isinstance(batch, ReadFailure):
            raise batch.error(what)
        yield batch
