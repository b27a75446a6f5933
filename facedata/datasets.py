"""Face-folder datasets (``<root>/<identity>/<image>``), identity filters and deterministic splits.

* :func:`scan_face_folder` lists identities and images, keeping identities with at least
  ``min_images_per_class`` images and, with ``max_classes``, the N identities with most images
  (CASIA-WebFace with >= 75 images per identity gives 1,292 identities).
* :func:`stratified_split`: per-identity split for closed-set validation (same identities in each part).
* :func:`identity_disjoint_split`: train identities and unseen query / distractor identities for open-set
  evaluation, as the ID-rate protocol needs.
* :class:`FaceDataset`: a torch dataset that reads crops and applies the model's :class:`Preprocess`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .augment import teacher_view
from .errors import DatasetError
from .insightface_io import read_pack_image, scan_pack
from .io import image_files, load_image
from .preprocess import Preprocess
from .splits import DEFAULT_SPLIT_SEED, SplitSpec


class CropSizeError(DatasetError):
    """A folder's crops are not all one size, so they cannot share one in-memory array."""


@dataclass(frozen=True)
class FaceFolder:
    """An indexed face set: item ``i`` belongs to ``classes[labels[i]]``. Its image is the file ``paths[i]``,
    or, for an insightface pack (``pack`` = the ``.rec``), record ``keys[i]`` (``paths[i]`` then reads
    ``<pack>#<key>``, a name for messages)."""

    root: Path
    classes: list[str]
    paths: list[Path]
    labels: np.ndarray  # int64, one per item
    pack: Path | None = None
    keys: np.ndarray | None = None  # int64 record keys, with pack
    # the decoded crops, uint8 (N, H, W, 3), when :meth:`in_memory` loaded them: read() then decodes nothing
    crops: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        return {c: int(n) for c, n in zip(self.classes, np.bincount(self.labels, minlength=len(self.classes)))}

    def subset(self, indices: Sequence[int]) -> "FaceFolder":
        """The same classes (labels unchanged) restricted to ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        return dataclasses.replace(self, paths=[self.paths[i] for i in idx], labels=self.labels[idx],
                                   keys=None if self.keys is None else self.keys[idx],
                                   crops=None if self.crops is None else self.crops[idx])

    def relabel(self, classes: list[str], labels: np.ndarray) -> "FaceFolder":
        """The same images under other class names / labels."""
        return dataclasses.replace(self, classes=classes, labels=np.asarray(labels, np.int64))

    def read(self, i: int) -> np.ndarray:
        """Item ``i``'s RGB crop: from memory after :meth:`in_memory`, else from its file or its pack record."""
        if self.crops is not None:
            return self.crops[i]
        if self.pack is not None:
            return read_pack_image(self.pack, int(self.keys[i]))
        return load_image(self.paths[i])

    def memory_bytes(self, side_px: int) -> int:
        """What :meth:`in_memory` would hold for crops of ``side_px`` x ``side_px``."""
        return len(self) * side_px * side_px * 3

    def in_memory(self, side_px: int, threads: int = 2) -> "FaceFolder":
        """This folder with every crop decoded once into one uint8 (N, side, side, 3) array, so a training epoch
        decodes no JPEG (loader workers share the array: forked, never written). A crop of another size is an
        :class:`CropSizeError` naming it (aligned sets are one size); an unreadable file raises its ImageReadError.
        The array is read-only: an augmentation that wrote into a crop would change every later epoch."""
        from concurrent.futures import ThreadPoolExecutor

        out = np.empty((len(self), side_px, side_px, 3), np.uint8)

        def fill(i: int) -> None:
            crop = self.read(i)
            if crop.shape != out.shape[1:]:
                raise CropSizeError(f"{self.paths[i]}: a {crop.shape[1]}x{crop.shape[0]} crop where the set's "
                                    f"first is {side_px}x{side_px}")
            out[i] = crop

        # decoding releases the GIL; a pack's records share one file handle per process: one thread
        with ThreadPoolExecutor(1 if self.pack is not None else max(1, threads)) as pool:
            list(pool.map(fill, range(len(self))))
        out.setflags(write=False)
        return dataclasses.replace(self, crops=out)


def scan_face_folder(root: str | os.PathLike, min_images_per_class: int = 1, max_classes: int | None = None) -> FaceFolder:
    """Index ``root/<identity>/<image>``, or an insightface ``train.rec`` pack (its ``train.idx`` beside it);
    identities sorted by name get labels 0..C-1 after filtering. A pack's identity names are its integer
    labels, zero-padded, so that name order is label order."""
    root = Path(root)
    if root.suffix == ".rec":
        return _filter(root, _pack_classes(root), min_images_per_class, max_classes)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found; expected <identity>/<image> files or an insightface "
                           "train.rec (make demo aligns the sample set into data/sample_aligned)")
    per_class: dict[str, list[Path]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            files = image_files(entry.path)
            if files:
                per_class[entry.name] = files
    if not per_class:
        raise DatasetError(f"{root}: no <identity>/<image> files found (image files must sit in one folder per identity)")
    return _filter(root, {c: (p, None) for c, p in per_class.items()}, min_images_per_class, max_classes)


def _pack_classes(rec: Path) -> dict[str, tuple[list[Path], np.ndarray]]:
    index = scan_pack(rec)
    if (index.labels < 0).any():
        raise DatasetError(f"{rec}: negative class labels (e.g. {int(index.labels.min())}); not an identity pack")
    width = max(1, len(str(int(index.labels.max()))))
    out = {}
    for label in np.unique(index.labels):
        keys = index.keys[index.labels == label]
        out[f"{int(label):0{width}d}"] = ([Path(f"{rec}#{k}") for k in keys], keys)
    return out


def _filter(root: Path, per_class: dict[str, tuple[list[Path], np.ndarray | None]], min_images_per_class: int,
            max_classes: int | None) -> FaceFolder:
    """The identity filter shared by folders and packs: >= min images, then the max_classes largest."""
    kept = {c: p for c, p in per_class.items() if len(p[0]) >= min_images_per_class}
    if max_classes is not None:
        ranked = sorted(kept, key=lambda c: (-len(kept[c][0]), c))[:max_classes]
        kept = {c: kept[c] for c in sorted(ranked)}
    if not kept:
        most = max(len(p[0]) for p in per_class.values())
        raise DatasetError(f"{root}: no identity has >= {min_images_per_class} images (the most is {most}); "
                           "lower min_images_per_class")
    classes = sorted(kept)
    paths, labels, keys = [], [], []
    for i, c in enumerate(classes):
        paths += kept[c][0]
        labels += [i] * len(kept[c][0])
        if kept[c][1] is not None:
            keys.append(kept[c][1])
    is_pack = root.suffix == ".rec"
    return FaceFolder(root, classes, paths, np.asarray(labels, dtype=np.int64), pack=root if is_pack else None,
                      keys=np.concatenate(keys).astype(np.int64) if is_pack else None)


def stratified_split(folder: FaceFolder, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                     seed: int = DEFAULT_SPLIT_SEED) -> list[FaceFolder]:
    """Split every identity's images by ``fractions`` (closed-set: every part sees the same identities).

    An identity's n images are shuffled with ``seed``; every part after the first gets
    floor(n * fraction) of them and the first (training) part keeps the rest, so an identity with few
    images stays in training rather than leaving it empty.
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise DatasetError(f"split fractions must be >= 0 and sum to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fr]
    for label in range(len(folder.classes)):
        idx = np.flatnonzero(folder.labels == label)
        idx = idx[rng.permutation(len(idx))]
        sizes = [int(np.floor(len(idx) * f + 1e-9)) for f in fr[1:]]
        start = len(idx) - sum(sizes)
        parts[0] += idx[:start].tolist()
        for k, size in enumerate(sizes, 1):
            parts[k] += idx[start:start + size].tolist()
            start += size
    return [folder.subset(sorted(p)) for p in parts]


@dataclass(frozen=True)
class OpenSetSplit:
    """Identity-disjoint parts: ``train`` identities, and unseen ``query`` / ``distractor`` identities."""

    train: FaceFolder
    query: FaceFolder
    distractor: FaceFolder
    # the benchmark's identities (SplitSpec.benchmark_*), set aside before query and distractor; empty if none
    benchmark_query: FaceFolder | None = None
    benchmark_distractor: FaceFolder | None = None


BENCHMARK_SEED_OFFSET = 1  # the benchmark hold-out draws from split_seed + 1: another stream than the open-set one


def choose_open_set_identities(labels: np.ndarray, n_query: int | None, n_distractor: int | None,
                               seed: int = DEFAULT_SPLIT_SEED,
                               need_query_images: int = 2, need_distractor_images: int = 1,
                               where: str = "the dataset") -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Seeded, disjoint query and distractor identities from per-image ``labels`` (any label type).

    Query identities come from those with >= ``need_query_images`` images, distractors from the rest of
    those with >= ``need_distractor_images``; None takes every eligible identity. Returns both id arrays
    and the generator, so that later draws (image caps) continue the same seeded stream."""
    rng = np.random.default_rng(seed)
    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    q_pool = ids[counts >= need_query_images]
    nq = len(q_pool) if n_query is None else n_query
    if len(q_pool) < nq:
        raise DatasetError(f"{where}: {nq} query identities need >= {need_query_images} images each; "
                           f"only {len(q_pool)} identities have that many")
    query_ids = rng.choice(q_pool, size=nq, replace=False) if nq else ids[:0]
    d_pool = np.setdiff1d(ids[counts >= max(1, need_distractor_images)], query_ids)
    nd = len(d_pool) if n_distractor is None else n_distractor
    if len(d_pool) < nd:
        raise DatasetError(f"{where}: {nd} distractor identities requested; only {len(d_pool)} identities remain "
                           f"with >= {max(1, need_distractor_images)} images")
    dist_ids = rng.choice(d_pool, size=nd, replace=False) if nd else ids[:0]
    return query_ids, dist_ids, rng


def identity_disjoint_split(folder: FaceFolder, n_query: int, n_distractor: int,
                            seed: int = DEFAULT_SPLIT_SEED,
                            query_images: int | None = None, distractor_images: int | None = None,
                            min_query_images: int = 2) -> OpenSetSplit:
    """Hold out identities for open-set evaluation; no identity is in two parts.

    Query identities are drawn from those with at least ``max(min_query_images, query_images)`` images
    (they need same-identity pairs); distractors from the rest of those with at least
    ``distractor_images``. ``query_images`` / ``distractor_images`` cap the images per identity (the seed
    protocol: 50 x 6 query, 50 x 60 distractor). Everything else is the training part.
    """
    query_ids, dist_ids, rng = choose_open_set_identities(
        folder.labels, n_query, n_distractor, seed, max(min_query_images, query_images or 0),
        distractor_images or 1, str(folder.root))

    def take(ids: np.ndarray, cap: int | None) -> list[int]:
        out: list[int] = []
        for label in sorted(ids.tolist()):
            idx = np.flatnonzero(folder.labels == label)
            if cap is not None and len(idx) > cap:
                idx = np.sort(rng.choice(idx, size=cap, replace=False))
            out += idx.tolist()
        return out

    held = set(query_ids.tolist()) | set(dist_ids.tolist())
    train_idx = [i for i, lab in enumerate(folder.labels.tolist()) if lab not in held]
    return OpenSetSplit(folder.subset(train_idx), folder.subset(take(query_ids, query_images)),
                        folder.subset(take(dist_ids, distractor_images)))


def held_out_split(split: SplitSpec | Mapping[str, Any], data: str | os.PathLike | None = None) -> OpenSetSplit:
    """The identity split a training run made, rebuilt from its :class:`SplitSpec` (or a dict of its fields:
    a checkpoint's ``spec["split"]`` or, older, ``spec["train_config"]``): the same identity filter, seed and
    counts give the same train / query / distractor identities. ``data`` replaces the spec's folder (the same
    dataset at another path). A run without an open-set hold-out gives empty query and distractor parts."""
    s = split if isinstance(split, SplitSpec) else SplitSpec.from_dict(split)
    folder = scan_face_folder(data or s.data, s.min_images_per_class, s.max_classes)
    bench_q = bench_d = folder.subset([])
    if s.benchmark_holds_out:  # first, so the benchmark's people do not depend on the run's other settings
        b = identity_disjoint_split(folder, s.benchmark_query, s.benchmark_distractor,
                                    s.split_seed + BENCHMARK_SEED_OFFSET, s.benchmark_query_images, None)
        folder, bench_q, bench_d = b.train, b.query, b.distractor
    if not s.holds_out:
        return OpenSetSplit(folder, folder.subset([]), folder.subset([]), bench_q, bench_d)
    o = identity_disjoint_split(folder, s.open_set_query, s.open_set_distractor, s.split_seed,
                                s.open_set_query_images, s.open_set_distractor_images)
    return OpenSetSplit(o.train, o.query, o.distractor, bench_q, bench_d)


class FaceDataset:
    """Torch-style dataset over a :class:`FaceFolder` of aligned crops: ``(tensor, label)`` items.

    ``augment`` (optional) maps ``(crop, rng)`` to another RGB uint8 crop before the model's
    ``preprocess``. A key may be an index or ``(index, seed)``: the seed makes the augmented view
    reproducible whatever worker reads it (the training engine passes one per batch position).

    ``views`` > 0 (distillation): the folder's labels are image numbers; an item is one of the image's
    ``views`` fixed views (:func:`facedata.augment.teacher_view`, drawn by the key's seed) and its label the
    row ``image * views + view`` of the teacher's table of those views.
    """

    def __init__(self, folder: FaceFolder, preprocess: Preprocess,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                 views: int = 0, view_seed: int = 0, as_uint8: bool = False) -> None:
        self.folder, self.preprocess, self.augment = folder, preprocess, augment
        self.views, self.view_seed = views, view_seed
        # items as uint8 (size, size, 3) tensors (Preprocess.to_uint8), normalised per batch by Preprocess.normalize
        self._input = self._uint8 if as_uint8 else preprocess

    def _uint8(self, crop: np.ndarray):
        import torch

        x = np.ascontiguousarray(self.preprocess.to_uint8(crop))
        return torch.from_numpy(x if x.flags.writeable else x.copy())  # a crop of the read-only in-memory store

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, key: int | tuple[int, int]):
        i, seed = key if isinstance(key, tuple) else (key, None)
        crop = self.folder.read(i)
        if self.views:
            image = int(self.folder.labels[i])
            view = int(np.random.default_rng(seed).integers(self.views))
            crop = teacher_view(self.augment, crop, image, view, self.view_seed)
            return self._input(crop), image * self.views + view
        if self.augment is not None:
            crop = self.augment(crop, np.random.default_rng(seed))
        return self._input(crop), int(self.folder.labels[i])
