"""Batch samplers for metric losses, deterministic for a seed and an epoch.

* :class:`PKSampler`: batches of P identities x K images (triplet mining needs positives and negatives
  in every batch). An identity with fewer than K images is drawn with repetition, so that with random
  augmentation one portrait still gives K different views.
* :class:`PairSampler`: Siamese pairs back to back (rows 2i, 2i+1), half same-person, half different.
* :class:`ShuffleSampler`: plain shuffled batches (classification on large datasets).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from .errors import DatasetError


class _EpochSampler:
    """Indices per class, and batches drawn from a generator seeded by (seed, epoch)."""

    batches: int

    def __init__(self, labels: Sequence[int], seed: int) -> None:
        labels = np.asarray(labels)
        order = np.argsort(labels, kind="stable")  # one sort, not one scan per class (distillation: N classes)
        classes, starts = np.unique(labels[order], return_index=True)
        self.by_class = {int(c): order[a:b] for c, a, b in zip(classes, starts, list(starts[1:]) + [len(order)])}
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Each epoch draws other batches; the same (seed, epoch) always draws the same ones (resume)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])


class PKSampler(_EpochSampler):
    """Yields lists of dataset indices, P identities x K images each; ``len`` batches per epoch."""

    def __init__(self, labels: Sequence[int], p: int, k: int, batches_per_epoch: int | None = None,
                 seed: int = 0, min_images: int = 1) -> None:
        super().__init__(labels, seed)
        self.by_class = {c: idx for c, idx in self.by_class.items() if len(idx) >= min_images}
        if p < 2 or k < 1:
            raise DatasetError(f"P x K sampling needs P >= 2 identities and K >= 1 images, got P={p}, K={k}")
        if len(self.by_class) < p:
            raise DatasetError(f"P x K sampling with P={p} needs >= {p} identities with >= {min_images} images; "
                               f"the dataset has {len(self.by_class)}")
        self.p, self.k = p, k
        self.classes = np.array(sorted(self.by_class))
        n_images = sum(len(v) for v in self.by_class.values())
        self.batches = batches_per_epoch or max(1, n_images // (p * k))

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng()
        for _ in range(self.batches):
            batch: list[int] = []
            for c in rng.choice(self.classes, size=self.p, replace=False):
                idx = self.by_class[int(c)]
                batch += rng.choice(idx, size=self.k, replace=len(idx) < self.k).tolist()
            yield batch


class PairSampler(_EpochSampler):
    """Yields batches of ``pairs`` index pairs flattened back to back: [a0, b0, a1, b1, ...].

    Same-person pairs come from identities with >= 2 images; different-person pairs from any two. With
    ``repeat_single=True`` (training with augmentation) a one-image identity pairs with itself: two
    augmented views of one portrait.
    """

    def __init__(self, labels: Sequence[int], pairs: int, batches_per_epoch: int | None = None,
                 same_fraction: float = 0.5, seed: int = 0, repeat_single: bool = False) -> None:
        super().__init__(labels, seed)
        min_same = 1 if repeat_single else 2
        self.multi = np.array(sorted(c for c, idx in self.by_class.items() if len(idx) >= min_same))
        self.classes = np.array(sorted(self.by_class))
        if len(self.classes) < 2:
            raise DatasetError(f"pair sampling needs >= 2 identities; the dataset has {len(self.classes)}")
        if same_fraction > 0 and len(self.multi) == 0:
            raise DatasetError("same-person pairs need an identity with >= 2 images; the dataset has none")
        self.pairs, self.same_fraction = pairs, same_fraction
        self.batches = batches_per_epoch or max(1, len(labels) // (2 * pairs))

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng()
        n_same = int(round(self.pairs * self.same_fraction))
        for _ in range(self.batches):
            batch: list[int] = []
            for i in range(self.pairs):
                if i < n_same:
                    c = int(rng.choice(self.multi))
                    idx = self.by_class[c]
                    batch += rng.choice(idx, size=2, replace=len(idx) < 2).tolist()
                else:
                    c1, c2 = rng.choice(self.classes, size=2, replace=False)
                    batch += [int(rng.choice(self.by_class[int(c1)])), int(rng.choice(self.by_class[int(c2)]))]
            yield batch


class ShuffleSampler(_EpochSampler):
    """Shuffled batches of ``batch_size`` indices, the last incomplete batch dropped (BatchNorm)."""

    def __init__(self, labels: Sequence[int], batch_size: int, seed: int = 0) -> None:
        super().__init__(labels, seed)
        self.n, self.batch_size = len(labels), batch_size
        if self.n < batch_size:
            raise DatasetError(f"a batch of {batch_size} needs >= {batch_size} images; the dataset has {self.n}")
        self.batches = self.n // batch_size

    def __iter__(self) -> Iterator[list[int]]:
        perm = self._rng().permutation(self.n)
        for b in range(self.batches):
            yield perm[b * self.batch_size:(b + 1) * self.batch_size].tolist()
