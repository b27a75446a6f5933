"""The training loop: one for every backbone and head, used by ``train.py`` and the notebooks.

``Trainer(config, out_dir).fit()`` trains and runs its callbacks every epoch (``training.callbacks``:
validation, verification, early stopping, the log), writing to ``out_dir``: ``config.json``, ``log.csv``
(one row per epoch; epoch 0 is the untrained model), ``loss.png``, ``last.pt`` (everything needed to
resume exactly) and ``best.pt`` (the best epoch by the monitored metric; ``training.checkpoints``).

Exact resume: the sampler draws from (seed, epoch), augmentation from (seed, epoch, batch, position)
(``training.data``), and ``last.pt`` holds the optimizer, scheduler, AMP scaler, torch RNG, epoch and
history. Started with ``torchrun`` the loop runs DistributedDataParallel (``training.distributed``). While a
Trainer builds or fits, its folder is locked: a second run into it is refused, naming the one at work.
"""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ContextManager, Sequence

import numpy as np
import torch
from torch import nn

from facedata.audit import AuditError, check_trainable
from facedata.augment import Augment
from facedata.datasets import CropSizeError, FaceFolder
from facedata.errors import FaceDataError, ImageReadError
from facedata.io import write_bytes_atomic
from facedata.preprocess import Preprocess, get_preset
from models_definition.backbones import build_embedder
from models_definition.heads import build_head

from . import checkpoints, distributed, teacher
from .callbacks import Callback, default_callbacks, load_verify_sets
from .config import TrainConfig, monitor_mode
from .data import KeyedBatches, ReadFailure, checked, make_loader, make_sampler, make_splits
from .errors import TrainingError
from .log import progress_bar
from .objective import TrainModule, make_optimizer, make_scheduler, per_epoch_schedule, set_bn_momentum


class Trainer:
    """Builds data, model, head, optimizer and schedule from a :class:`TrainConfig` and trains;
    ``callbacks`` (default: ``training.callbacks.default_callbacks()``) run around every epoch."""

    def __init__(self, cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False,
                 callbacks: Sequence[Callback] | None = None) -> None:
        # wall-clock mark: each log row's wall_seconds runs from the previous row (or this process's start, so
        # epoch 0 and the first epoch after a resume count the set-up: data, teacher table) to that row, and
        # includes the previous row's checkpoint and log writing
        self._mark = time.perf_counter()
        self.cfg, self.out = cfg, Path(out_dir)
        self.procs = distributed.setup(cfg.device)
        self.device, self.rank, self.world = self.procs.device, self.procs.rank, self.procs.world
        self.distributed, self.is_main = self.procs.distributed, self.procs.is_main
        self.cuda = self.device.type == "cuda"
        self.amp = cfg.amp  # mixed precision where the device has it (models_definition.precision)
        self.channels_last = cfg.channels_last
        self.callbacks = default_callbacks() if callbacks is None else list(callbacks)
        created = [p for p in (self.out, *self.out.parents) if not p.exists()]  # folders the lock will create
        try:
            with self._locked():
                self._build(resume)
        except BaseException:  # a refused build (or Ctrl+C) leaves no empty run folder behind, only its lock
            if self.is_main and created:
                _remove_if_only_lock(self.out, created)
            raise

    def _build(self, resume: bool) -> None:
        cfg, last = self.cfg, self.out / "last.pt"
        if last.exists() and not resume:
            raise TrainingError(f"{self.out} already holds a run (last.pt); resume it (--resume / resume=True) "
                                "or choose another output folder")
        state = checkpoints.check_resume(cfg, last) if resume and last.exists() else None
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.preprocess: Preprocess = get_preset(cfg.preprocess)
        try:  # a composed set must have been audited against every set we report on
            self.audit = check_trainable(Path(cfg.data), cfg.audit_eval_sets, cfg.allow_overlap)
        except AuditError as exc:
            raise TrainingError(str(exc)) from None
        self.splits = make_splits(cfg)
        self.classes = self.splits.train.classes
        self.monitor = cfg.monitor or ("val_auc" if len(self.splits.query) else
                                       "val_acc" if len(self.splits.val) else "train_loss")
        self.verify_sets = load_verify_sets(cfg.verify_sets, self.monitor)
        self.model = build_embedder(cfg.backbone, cfg.embedding_size, cfg.pretrained, self.preprocess.size_px,
                                    cfg.dropout).to(self.device)
        self.head = build_head(cfg.head, self.model.embedding_size, len(self.classes),
                               **cfg.head_kwargs).to(self.device)
        self.augment = Augment.from_dict(cfg.augment) if cfg.augment is not None else None
        # the folder the training loader reads: a distillation head is fed image numbers, not class labels,
        # and may learn from unlabelled faces besides the training identities (extra_data)
        self.train_folder = self.splits.train
        if getattr(self.head, "takes_index", False):
            t = teacher.student_folder(cfg, self.splits, [p for ps in self.verify_sets for p in ps.paths])
            table = teacher.teacher_table(cfg, t, self.model.embedding_size, self.augment, self.out, self.procs)
            teacher.set_teacher_targets(self.head, t, table, cfg.teacher_views)
            self.train_folder = t.relabel(t.classes, np.arange(len(t)))
        self.train_folder = self._in_memory(self.train_folder)
        set_bn_momentum(self.model, cfg.bn_momentum)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.module: nn.Module = TrainModule(self.model, self.head, self.amp)
        if self.distributed:
            self.module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.cuda else None)
        self.sampler = make_sampler(cfg, self.train_folder.labels, cfg.seed)
        self.steps_per_epoch = len(KeyedBatches(self.sampler, cfg.seed, 0, self.rank, self.world))
        self.optimizer = make_optimizer(cfg, self.model, self.module)
        self.scheduler = make_scheduler(cfg, self.optimizer, self.monitor, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.cuda)  # float16 only: bf16 needs none
        self.epoch, self.history, self.best, self.stale = 0, [], None, 0
        self.stop_training, self._train_loader = False, None
        if state is not None:
            checkpoints.load_state(self, state)

    def _in_memory(self, folder: FaceFolder) -> FaceFolder:
        """``folder`` with its crops decoded into memory when they fit ``in_memory_gb`` (else as it is)."""
        if not len(folder) or not self.cfg.in_memory_gb:
            return folder
        side = folder.read(0).shape[0]
        if folder.memory_bytes(side) > self.cfg.in_memory_gb * 1e9:
            return folder
        try:
            return folder.in_memory(side, threads=max(1, torch.get_num_threads()))
        except CropSizeError as exc:  # it trains from the files, resized per step as before: slower, not wrong
            if self.is_main:
                print(f"note: crops not kept in memory ({exc}); reading them from disk each step", file=sys.stderr)
            return folder
        except ImageReadError as exc:  # the named error a training step would give
            raise ReadFailure(exc.path, exc.detail).error("loading the training crops") from None
        except FaceDataError as exc:  # a crop of another size, a pack record that is not an image
            raise TrainingError(f"{exc}; training stopped before it began") from None

    def _locked(self) -> ContextManager[None]:
        """The run folder's lock (rank 0 writes; the other ranks only read what it wrote)."""
        if not self.is_main:
            return nullcontext()
        from facedata.io import folder_lock

        self.out.mkdir(parents=True, exist_ok=True)
        return folder_lock(self.out, "trained in")

    def spec(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint spec for the current weights (``training.checkpoints.run_spec``)."""
        return checkpoints.run_spec(self, metrics)

    # --- data ------------------------------------------------------------------------------------------
    def _loader(self, folder: FaceFolder, batches, augment: bool, persistent: bool = False):
        return make_loader(self.cfg, folder, self.preprocess, batches, self.augment if augment else None,
                           persistent, device_type=self.device.type)

    # --- the loop ------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        cfg = self.cfg
        if self._train_loader is None:  # one loader for the run: worker processes persist across epochs
            self._train_batches = KeyedBatches(self.sampler, cfg.seed, self.epoch, self.rank, self.world)
            self._train_loader = self._loader(self.train_folder, self._train_batches, augment=True,
                                              persistent=True)
        batches, loader = self._train_batches, self._train_loader
        batches.epoch = self.epoch  # read in this process when the epoch's iteration starts
        self.module.train()
        frozen = self.epoch <= cfg.freeze_backbone_epochs
        for p in self.model.parameters():
            p.requires_grad_(not frozen)
        if frozen:  # head only: the pretrained backbone and its BatchNorm statistics stay as they are
            self.model.eval()
        params = [p for p in self.module.parameters() if p.requires_grad]
        total, count, seen = 0.0, 0, 0
        start = time.perf_counter()
        bar = progress_bar(cfg.progress and self.is_main, len(batches), f"epoch {self.epoch}/{cfg.epochs}")
        for step, (x, y) in enumerate(checked(loader, f"training (epoch {self.epoch})")):
            x, y = self._to_device(x), y.to(self.device, non_blocking=True)
            loss = self.module(x, y)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss is {float(loss.detach())} at epoch {self.epoch}, step {step}: training stopped. "
                    f"{self.out / 'last.pt'} still holds the last good epoch ({self.epoch - 1}); lower the learning "
                    f"rate (now {self.optimizer.param_groups[0]['lr']:.3g}) or enable gradient clipping, then resume")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip_norm:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if not per_epoch_schedule(self.scheduler):
                self.scheduler.step()
            total, count, seen = total + float(loss.detach()), count + 1, seen + len(x)
            if bar is not None:
                bar.set_postfix(loss=f"{total / count:.4f}",
                                img_s=f"{seen * self.world / max(1e-9, time.perf_counter() - start):.0f}")
                bar.update(1)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - start
        mean = distributed.mean(total / max(1, count), self.procs)
        return {"train_loss": mean, "images_per_s": seen * self.world / max(1e-9, seconds), "seconds": seconds}

    def fit(self, max_epochs: int | None = None) -> list[dict[str, Any]]:
        """Train until ``epochs`` or early stopping (or, with ``max_epochs``, that many more epochs in this
        call: a later ``fit`` or a resumed run continues); returns the history (one dict per epoch)."""
        stop_at = self.cfg.epochs if max_epochs is None else min(self.cfg.epochs, self.epoch + max_epochs)
        with self._locked():
            try:
                return self._fit(stop_at)
            finally:  # the loader's workers were forked while the folder was locked: they hold its lock too
                self._stop_workers()

    def _fit(self, stop_at: int) -> list[dict[str, Any]]:
        if not self.history and (self.out / "last.pt").exists():  # written by another run since this one was built
            raise TrainingError(f"{self.out} already holds a run (last.pt); choose another output folder")
        self.stop_training = False
        self._call("on_fit_start")
        if self.is_main:
            write_bytes_atomic(json.dumps(self.cfg.to_dict(), indent=2).encode(), self.out / "config.json")
            if not self.history:  # epoch 0: the untrained model, the baseline every epoch is compared to
                self._end_epoch({"train_loss": None, "images_per_s": None, "seconds": None})
        while self.epoch < stop_at and not self.stop_training:
            self.epoch += 1
            self._end_epoch(self.train_epoch())
            distributed.barrier(self.procs)
        return self.history

    def _end_epoch(self, stats: dict[str, Any]) -> None:
        """The epoch's callbacks, the monitored value and schedule, then its row: history, checkpoints, log."""
        row = {"epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"], **stats}
        self._call("on_epoch_end", row)
        improved = False
        if self.epoch > 0:  # epoch 0 is the untrained baseline: nothing to choose or schedule
            value = distributed.broadcast(row.get(self.monitor), self.procs)
            if per_epoch_schedule(self.scheduler) and value is not None:
                self.scheduler.step(value)
                # the row logs the rate after this epoch's plateau step (the rate the next epoch trains at)
                row["lr"] = self.optimizer.param_groups[0]["lr"]
            improved = value is not None and (self.best is None or (
                value > self.best if monitor_mode(self.monitor) == "max" else value < self.best))
            self.best, self.stale = (value, 0) if improved else (self.best, self.stale + 1)
        # wall_seconds: training plus the per-epoch checks and writing ("seconds" is training alone)
        row["wall_seconds"] = self._lap()
        self.history.append(row)
        if self.is_main and self.epoch > 0:
            checkpoints.save(self, row, improved)
        self._call("on_row", row)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            method = getattr(cb, hook, None)
            if method is not None and (self.is_main or getattr(cb, "every_rank", False)):
                method(self, *args)

    def _stop_workers(self) -> None:
        """End the training loader's persistent worker processes (a later fit() starts new ones)."""
        loader, self._train_loader = self._train_loader, None
        running = getattr(loader, "_iterator", None)
        if running is not None and hasattr(running, "_shutdown_workers"):
            running._shutdown_workers()

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A loader's uint8 batch -> the normalised float batch on the device (uint8 crosses the bus: 1/4 the bytes)."""
        x = self.preprocess.normalize(x.to(self.device, non_blocking=True))  # channels_last memory already
        return x if self.channels_last else x.contiguous()

    def _lap(self) -> float:
        """Seconds since the previous mark, and a new mark."""
        now = time.perf_counter()
        seconds, self._mark = now - self._mark, now
        return seconds


def _remove_if_only_lock(out: Path, created: list[Path]) -> None:
    """Remove ``out``'s lock and the ``created`` folders (deepest first) when the lock is all ``out`` holds;
    anything else there (a teacher table already cached) is kept, and so is the folder."""
    if not out.is_dir() or [p.name for p in out.iterdir()] != [".lock"]:
        return
    (out / ".lock").unlink()
    for folder in created:  # out first, then each parent the run created, while empty
        try:
            folder.rmdir()
        except OSError:  # not empty: something else lives there now
            return


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False) -> Trainer:
    """Train (or resume) a run and return its :class:`Trainer` (``.history``, ``.model``)."""
    trainer = Trainer(cfg, out_dir, resume)
    trainer.fit()
    return trainer


__all__ = ["Trainer", "train", "KeyedBatches"]  # KeyedBatches: benchmarks/bench_pack.py imports it from here
