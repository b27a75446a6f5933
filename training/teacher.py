"""Distillation's teacher table: the student's images (training split plus unlabelled extra faces) and the
teacher's embedding of each, computed once and cached in the run folder."""
from __future__ import annotations

import dataclasses
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from facedata.augment import TEACHER_VIEW_VERSION, Augment, teacher_view
from facedata.cli import error_message
from facedata.datasets import FaceFolder, scan_face_folder
from facedata.errors import DatasetError, FaceKitError
from id_rate.embeddings import resolved_paths

from . import distributed
from .config import TrainConfig
from .data import Splits
from .errors import TrainingError


def _refuse_pack(pack: Path | None, what: str) -> None:  # the teacher's cache keys on image files
    if pack is not None:
        raise TrainingError(f"{what}{pack}: distillation embeds image files with the teacher; unpack it "
                            "first (python -m facedata.pack unpack REC DIR) and give DIR")


def student_folder(cfg: TrainConfig, splits: Splits, scored_paths: Sequence[Path | None]) -> FaceFolder:
    """The student's images: the training split, then every face of ``extra_data`` (unlabelled, class -1:
    no identity is needed to regress a teacher, and a label term skips them). Refused: a pack, and any
    extra image that is also a validation, held-out, benchmark or per-epoch verification image (``scored_paths``:
    those figures would score faces the student saw)."""
    t = splits.train
    _refuse_pack(t.pack, "")
    if not cfg.extra_data:
        return t
    paths: list[Path] = []
    for folder in cfg.extra_data:
        try:
            extra = scan_face_folder(folder)
        except DatasetError as exc:
            raise TrainingError(f"extra_data: {exc}") from None
        _refuse_pack(extra.pack, "extra_data ")
        paths += extra.paths
    scored = set(resolved_paths([p for part in (splits.val, splits.query, splits.distractor) for p in part.paths]
                                + list(splits.benchmark_paths)))
    scored |= set(resolved_paths([Path(p) for p in scored_paths if p is not None]))
    resolved = resolved_paths(paths)
    clash = [p for p, r in zip(paths, resolved) if r in scored]
    if clash:
        raise TrainingError(f"extra_data holds {len(clash)} images that are validation, held-out or verification "
                            f"images (e.g. {clash[0]}); the figures must score faces the student never saw: "
                            "remove them from extra_data")
    seen = set(resolved_paths(t.paths))
    kept: dict[Path, Path] = {}  # each extra face once, and none that is already a training image
    for p, r in zip(paths, resolved):
        kept.setdefault(r, p)
    paths = [p for r, p in kept.items() if r not in seen]
    return dataclasses.replace(t, paths=list(t.paths) + paths, keys=None,
                               labels=np.concatenate([t.labels, np.full(len(paths), -1, np.int64)]))


def teacher_table(cfg: TrainConfig, folder: FaceFolder, embedding_size: int, augment: Augment | None,
                  out: Path, procs: distributed.Processes) -> np.ndarray:
    """The teacher's unit embeddings of the student's images (cached in ``teacher_cache`` or else ``out``, saved in parts as it goes:
    a resumed or interrupted run reads them back). ``teacher_views`` V >= 1: row ``i * V + v`` holds view
    ``v`` of image ``i``, the pixels the student is shown (facedata.augment.teacher_view); 0: one row per
    plain image."""
    from id_rate.embeddings import embed_paths
    from models_definition.zoo import load_model

    try:  # a missing or broken weights file; anything else is a bug and keeps its traceback
        teacher = load_model("teacher", {"teacher": cfg.teacher}, device=str(procs.device))
    except (FaceKitError, OSError) as exc:
        raise TrainingError(f"teacher {cfg.teacher}: {error_message(exc)}") from None
    if teacher.embedding_size != embedding_size:
        raise TrainingError(f"teacher {cfg.teacher} gives {teacher.embedding_size}-D embeddings but the "
                            f"student's embedding_size is {embedding_size}: set embedding_size="
                            f"{teacher.embedding_size} (the student regresses the teacher's vector, no projection)")
    views, seed = max(1, cfg.teacher_views), cfg.seed
    out = Path(cfg.teacher_cache) if cfg.teacher_cache else out
    if procs.is_main:
        print(f"distillation: embedding {len(folder)} images x {views} view(s) with the teacher "
              f"(cached in {out})", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    if not procs.is_main:
        distributed.barrier(procs)  # rank 0 computes the table; the others then read it from the cache
    with _cache_lock(out):  # a run sharing the cache waits for the table another run is making, then reads it
        emb = embed_paths(teacher, folder.paths, cache_dir=out, progress=cfg.progress and procs.is_main, views=views,
                          view_fn=lambda crop, i, v: teacher_view(augment, crop, i, v, seed),
                          view_key={"augment": None if augment is None else augment.to_dict(), "seed": seed,
                                    "teacher_view": TEACHER_VIEW_VERSION})
    if procs.is_main:
        distributed.barrier(procs)
    return emb


@contextmanager
def _cache_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder``'s teacher tables for the block (blocking: the table another run is
    computing is worth the wait; released when the process ends, however it ends)."""
    import fcntl

    with open(folder / ".teacher.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def set_teacher_targets(head: torch.nn.Module, folder: FaceFolder, table: np.ndarray, views: int) -> None:
    """Hand the table to the distillation head, with each row's class (-1: an unlabelled extra face)."""
    head.set_targets(torch.from_numpy(table), torch.from_numpy(np.repeat(folder.labels, max(1, views))))

