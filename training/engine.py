"""The training engine: one loop for every backbone and head, used by ``train.py`` and the notebooks.

``Trainer(config, out_dir).fit()`` trains and validates every epoch, writing to ``out_dir``:
``config.json``, ``log.csv`` (one row per epoch; epoch 0 is the untrained model), ``loss.png``,
``last.pt`` (everything needed to resume exactly) and ``best.pt`` (the best epoch by the monitored
metric; only the embedder and its spec: heads are thrown away after training).

Exact resume: the sampler draws from (seed, epoch), augmentation from (seed, epoch, batch, position),
and ``last.pt`` holds the optimizer, scheduler, AMP scaler, torch RNG, epoch and history. Started with
``torchrun``, the engine runs DistributedDataParallel (NCCL on GPUs, gloo on CPU); rank r trains on
every world-th batch and rank 0 validates and writes.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from facedata.audit import AuditError, check_trainable
from facedata.augment import TEACHER_VIEW_VERSION, Augment, teacher_view
from facedata.datasets import FaceDataset, FaceFolder, held_out_split, scan_face_folder, stratified_split
from facedata.errors import DatasetError, FaceKitError
from facedata.io import write_bytes_atomic
from facedata.preprocess import Preprocess, get_preset
from facedata.samplers import PairSampler, PKSampler, ShuffleSampler
from id_rate.metrics import MetricError, nearest_mean_accuracy
from id_rate.protocols import idrate
from models_definition.backbones import Embedder, build_embedder
from models_definition.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models_definition.heads import CLASSIFIER_HEADS, build_head
from models_definition.thresholds import record

from .config import RESUMABLE_CHANGES, TrainConfig, monitor_mode
from .log import write_log


class TrainingError(FaceKitError, RuntimeError):
    """Training cannot go on (NaN loss, a run folder in the way, a resume that does not match)."""


class TrainModule(nn.Module):
    """Embedder + head as one module, so DDP synchronises the head's class weights too."""

    def __init__(self, model: Embedder, head: nn.Module) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.model(x), y)


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


@dataclass
class Splits:
    train: FaceFolder
    val: FaceFolder  # closed-set: training identities, other images (may be empty)
    query: FaceFolder  # open-set, unseen identities (may be empty)
    distractor: FaceFolder


def make_splits(cfg: TrainConfig) -> Splits:
    """Identity filter, identity-disjoint open-set hold-out, then the per-identity closed-set split."""
    held = held_out_split(cfg.to_dict())  # evaluation rebuilds the same split from the checkpoint's config
    folder, rest, query, distractor = held.train, held.train, held.query, held.distractor
    if cfg.max_train_classes is not None and len(np.unique(rest.labels)) > cfg.max_train_classes:
        chosen = np.random.default_rng(cfg.split_seed).choice(np.unique(rest.labels), cfg.max_train_classes, replace=False)
        rest = rest.subset(np.flatnonzero(np.isin(rest.labels, chosen)))
    if cfg.val_fraction > 0:
        train, val = stratified_split(rest, (1 - cfg.val_fraction, cfg.val_fraction), cfg.split_seed)
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

    return Splits(relabel(train, False), relabel(val, False), relabel(query, True), relabel(distractor, True))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
    return dev


class Trainer:
    """Builds data, model, head, optimizer and schedule from a :class:`TrainConfig` and trains."""

    def __init__(self, cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False) -> None:
        # wall-clock mark: each log row's wall_seconds runs from the previous row (or this process's start, so
        # epoch 0 and the first epoch after a resume count the set-up: data, teacher table) to that row, and
        # includes the previous row's checkpoint and log writing
        self._mark = time.perf_counter()
        self.cfg, self.out = cfg, Path(out_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.distributed = self.world > 1
        if self.distributed and not dist.is_initialized():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            use_cuda = cfg.device != "cpu" and torch.cuda.is_available()
            if use_cuda:
                torch.cuda.set_device(local)
            dist.init_process_group("nccl" if use_cuda else "gloo")
            self.device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
        else:
            self.device = _device(cfg.device)
        self.is_main = self.rank == 0
        self.cuda = self.device.type == "cuda"
        self.amp = cfg.amp and self.cuda
        self.channels_last = cfg.channels_last

        last = self.out / "last.pt"
        if last.exists() and not resume:
            raise TrainingError(f"{self.out} already holds a run (last.pt); resume it (--resume / resume=True) "
                                "or choose another output folder")
        state = self._check_resume(last) if resume and last.exists() else None

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
        self.verify_sets = self._load_verify_sets()
        self.model = build_embedder(cfg.backbone, cfg.embedding_size, cfg.pretrained, self.preprocess.size_px,
                                    cfg.dropout).to(self.device)
        self.head = build_head(cfg.head, self.model.embedding_size, len(self.classes), **cfg.head_kwargs).to(self.device)
        self.augment = Augment.from_dict(cfg.augment) if cfg.augment is not None else None
        # the folder the training loader reads: a distillation head is fed image numbers, not class labels,
        # and may learn from unlabelled faces besides the training identities (extra_data)
        self.train_folder = self.splits.train
        if getattr(self.head, "takes_index", False):
            t = self._distill_folder()
            self._set_teacher_targets(t)
            self.train_folder = t.relabel(t.classes, np.arange(len(t)))
        if cfg.bn_momentum is not None:
            for mod in self.model.modules():
                if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                    mod.momentum = cfg.bn_momentum
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.module: nn.Module = TrainModule(self.model, self.head)
        if self.distributed:
            self.module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.cuda else None)
        self.sampler = self._make_sampler(self.train_folder.labels, cfg.seed)
        self.steps_per_epoch = len(KeyedBatches(self.sampler, cfg.seed, 0, self.rank, self.world))
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.epoch = 0
        self._train_loader = None
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.stale = 0
        if state is not None:
            self._load_state(state)

    # --- construction ---------------------------------------------------------------------------
    def _load_verify_sets(self) -> list:
        """The pair sets scored every epoch; the monitored one must not be LFW View 2 (reported, never
        used to choose best.pt)."""
        from id_rate.evaluate import is_lfw_view2, pair_set

        try:
            sets = [pair_set(spec) for spec in self.cfg.verify_sets]
        except (MetricError, DatasetError) as exc:
            raise TrainingError(f"verify_sets: {exc}") from None
        names = [ps.name for ps in sets]
        if len(set(names)) != len(names):
            raise TrainingError(f"verify_sets: two sets are named alike ({names}); rename one of the files")
        for ps in sets:
            if self.monitor in (f"verify_{ps.name}_acc", f"verify_{ps.name}_tar@1e-3") and is_lfw_view2(ps):
                raise TrainingError(f"monitor {self.monitor!r} would choose best.pt on LFW View 2 ({ps.name}), the "
                                    "set its figures are reported on; monitor View 1 (pairsDevTest) or held-out "
                                    "identities instead")
        if self.monitor.startswith("verify_") and not any(self.monitor.startswith(f"verify_{n}_") for n in names):
            raise TrainingError(f"monitor {self.monitor!r} names no set of verify_sets ({names or 'none'})")
        return sets

    def _distill_folder(self) -> FaceFolder:
        """The student's images: the training split, then every face of ``extra_data`` (unlabelled, class -1:
        no identity is needed to regress a teacher, and a label term skips them). Refused: a pack, and any
        extra image that is also a validation, held-out or per-epoch verification image (those figures would
        score faces the student saw)."""
        cfg, t = self.cfg, self.splits.train

        def refuse_pack(pack: Path | None, what: str) -> None:  # the teacher's cache keys on image files
            if pack is not None:
                raise TrainingError(f"{what}{pack}: distillation embeds image files with the teacher; unpack it "
                                    "first (python -m facedata.pack unpack REC DIR) and give DIR")

        refuse_pack(t.pack, "")
        if not cfg.extra_data:
            return t
        paths: list[Path] = []
        for folder in cfg.extra_data:
            try:
                extra = scan_face_folder(folder)
            except DatasetError as exc:
                raise TrainingError(f"extra_data: {exc}") from None
            refuse_pack(extra.pack, "extra_data ")
            paths += extra.paths
        resolved = _resolver()
        scored = {resolved(p) for part in (self.splits.val, self.splits.query, self.splits.distractor)
                  for p in part.paths}
        scored |= {resolved(p) for ps in self.verify_sets for p in ps.paths if p is not None}
        clash = [p for p in paths if resolved(p) in scored]
        if clash:
            raise TrainingError(f"extra_data holds {len(clash)} images that are validation, held-out or verification "
                                f"images (e.g. {clash[0]}); the figures must score faces the student never saw: "
                                "remove them from extra_data")
        seen = {resolved(p) for p in t.paths}
        kept: dict[Path, Path] = {}  # each extra face once, and none that is already a training image
        for p in paths:
            kept.setdefault(resolved(p), p)
        paths = [p for r, p in kept.items() if r not in seen]
        return dataclasses.replace(t, paths=list(t.paths) + paths, keys=None,
                                   labels=np.concatenate([t.labels, np.full(len(paths), -1, np.int64)]))

    def _set_teacher_targets(self, folder: FaceFolder) -> None:
        """Embed the student's images with the teacher once (cached in the run folder, saved in parts as it
        goes: a resumed or interrupted run reads them back) and hand the table to the distillation head.
        ``teacher_views`` V >= 1: row ``i * V + v`` holds view ``v`` of image ``i``, the pixels the student
        is shown (facedata.augment.teacher_view); 0: one row per plain image."""
        from id_rate.embeddings import embed_paths
        from models_definition.zoo import ModelNotFoundError, load_model

        try:
            teacher = load_model("teacher", {"teacher": self.cfg.teacher}, device=str(self.device))
        except (ModelNotFoundError, RuntimeError, OSError) as exc:
            raise TrainingError(f"teacher {self.cfg.teacher}: {exc}") from None
        if teacher.embedding_size != self.model.embedding_size:
            raise TrainingError(f"teacher {self.cfg.teacher} gives {teacher.embedding_size}-D embeddings but the "
                                f"student's embedding_size is {self.model.embedding_size}: set embedding_size="
                                f"{teacher.embedding_size} (the student regresses the teacher's vector, no projection)")
        views, seed, augment = max(1, self.cfg.teacher_views), self.cfg.seed, self.augment
        if self.is_main:
            print(f"distillation: embedding {len(folder)} images x {views} view(s) with the teacher "
                  f"(cached in {self.out})", file=sys.stderr)
        self.out.mkdir(parents=True, exist_ok=True)
        if self.distributed and not self.is_main:
            dist.barrier()  # rank 0 computes the table; the others then read it from the cache
        emb = embed_paths(teacher, folder.paths, cache_dir=self.out, checkpoint=teacher.checkpoint,
                          progress=self.cfg.progress and self.is_main, views=views,
                          view_fn=lambda crop, i, v: teacher_view(augment, crop, i, v, seed),
                          view_key={"augment": None if augment is None else augment.to_dict(), "seed": seed,
                                    "teacher_view": TEACHER_VIEW_VERSION})
        if self.distributed and self.is_main:
            dist.barrier()
        self.head.set_targets(torch.from_numpy(emb), torch.from_numpy(np.repeat(folder.labels, views)))

    def _make_sampler(self, labels: np.ndarray, seed: int):
        cfg = self.cfg
        all_pairs = cfg.head_kwargs.get("pairs") == "all"
        if cfg.head == "contrastive" and cfg.sampler != ("pk" if all_pairs else "pairs"):
            raise TrainingError("the contrastive head needs pairs back to back (sampler='pairs'), or with "
                                "head_kwargs pairs='all' a P x K batch (sampler='pk')")
        if cfg.head == "triplet" and cfg.sampler != "pk":
            raise TrainingError("the triplet head mines inside P x K batches: use sampler='pk'")
        try:
            if cfg.sampler == "pk":
                return PKSampler(labels, p=max(2, cfg.batch_size // cfg.pk_k), k=cfg.pk_k,
                                 batches_per_epoch=cfg.batches_per_epoch, seed=seed,
                                 min_images=2 if cfg.augment is None else 1)
            if cfg.sampler == "pairs":
                return PairSampler(labels, pairs=cfg.batch_size // 2, batches_per_epoch=cfg.batches_per_epoch, seed=seed,
                                   repeat_single=cfg.augment is not None)
            return ShuffleSampler(labels, cfg.batch_size, seed=seed)
        except DatasetError as exc:
            raise DatasetError(f"{cfg.data}: training split too small for the {cfg.sampler!r} sampler: {exc}") from None

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        # No weight decay on BatchNorm and bias parameters (they set scale and offset, not capacity).
        # The backbone may learn slower than the head (fine-tuning a pretrained face network).
        backbone = {id(p) for p in self.model.parameters()}
        parts = ((cfg.lr, None),) if cfg.backbone_lr_factor == 1.0 else \
            ((cfg.lr * cfg.backbone_lr_factor, True), (cfg.lr, False))  # None: one pair of groups (as before)
        groups = []
        for part_lr, in_backbone in parts:
            decay, no_decay = [], []
            for p in self.module.parameters():
                if in_backbone is None or (id(p) in backbone) == in_backbone:
                    (no_decay if p.ndim <= 1 else decay).append(p)
            groups += [{"params": decay, "weight_decay": cfg.weight_decay, "lr": part_lr},
                       {"params": no_decay, "weight_decay": 0.0, "lr": part_lr}]
        groups = [g for g in groups if g["params"]]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        return cls(groups, lr=cfg.lr)

    def _make_scheduler(self):
        cfg = self.cfg
        if cfg.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode=monitor_mode(self.monitor),
                                                              factor=cfg.plateau_factor, patience=cfg.plateau_patience)
        if cfg.schedule == "constant":
            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        total = max(1, cfg.epochs * self.steps_per_epoch)
        warm = int(cfg.warmup_epochs * self.steps_per_epoch)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = min(1.0, (step - warm) / max(1, total - warm))
            return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))

        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    # --- checkpoints ------------------------------------------------------------------------------
    def spec(self, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "backbone": cfg.backbone, "embedding_size": self.model.embedding_size, "dropout": cfg.dropout,
            "preprocess": self.preprocess.to_dict(), "head": cfg.head, "head_kwargs": dict(cfg.head_kwargs),
            "train_config": cfg.to_dict(), "metrics": metrics, "classes": list(self.classes), "epoch": self.epoch,
            **({"audit": self.audit} if self.audit is not None else {}),
        }

    def _check_resume(self, last: Path) -> dict[str, Any]:
        ckpt = load_checkpoint(last, map_location="cpu")
        now = self.cfg.to_dict()
        # a field added after the run was saved reads as its default: what that run did without it
        defaults = TrainConfig().to_dict()
        saved = {k: ckpt["spec"]["train_config"].get(k, defaults[k]) for k in now}
        diff = [f"{k}: run {saved[k]!r} vs now {now[k]!r}" for k in now
                if k not in RESUMABLE_CHANGES and saved[k] != now[k]]
        if diff:
            raise TrainingError(f"{last}: cannot resume with other settings ({'; '.join(diff)}); "
                                "use the run's config.json or another output folder")
        return ckpt

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.head.load_state_dict(ckpt["head"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng_cpu"])
        if self.cuda and ckpt.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng_cuda"], self.device)
        self.epoch = int(ckpt["spec"]["epoch"])
        self.history = list(ckpt["history"])
        self.best, self.stale = ckpt["best"], int(ckpt["stale"])

    def _save(self, metrics: dict[str, Any], improved: bool) -> None:
        spec = self.spec(metrics)
        if improved:
            save_checkpoint(self.out / "best.pt", self.model, spec)
        save_checkpoint(self.out / "last.pt", self.model, spec, head=self.head.state_dict(),
                        optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict(), rng_cpu=torch.get_rng_state(),
                        rng_cuda=torch.cuda.get_rng_state(self.device) if self.cuda else None,
                        history=self.history, best=self.best, stale=self.stale)

    # --- data ----------------------------------------------------------------------------------------
    def _loader(self, folder: FaceFolder, batches, augment: bool, persistent: bool = False) -> torch.utils.data.DataLoader:
        ds = FaceDataset(folder, self.preprocess, self.augment if augment else None,
                         views=self.cfg.teacher_views if augment else 0, view_seed=self.cfg.seed)
        workers = self.cfg.workers
        return torch.utils.data.DataLoader(
            ds, batch_sampler=batches, num_workers=workers, pin_memory=self.cuda,
            generator=torch.Generator().manual_seed(self.cfg.seed), persistent_workers=persistent,
            prefetch_factor=4 if workers else None)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _forward_eval(self, x: torch.Tensor, flip: bool) -> torch.Tensor:
        """Raw embeddings of a preprocessed batch on the CPU; with ``flip`` the sum with the mirror's
        (mirroring the normalised tensor = normalising the mirrored crop: the normalisation is per channel)."""
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            e = self.model(x).float()
            if flip:
                e = e + self.model(torch.flip(x, dims=[3])).float()
        return e.cpu()

    @torch.no_grad()
    def embed_folder(self, folder: FaceFolder, batch_size: int = 128, flip: bool = False) -> np.ndarray:
        """Raw (not normalised) embeddings of a folder's crops, in eval mode, in folder order; with
        ``flip`` the sum of each crop's and its mirror's (flip TTA, as evaluation's ``--flip``)."""
        if len(folder) == 0:
            return np.zeros((0, self.model.embedding_size), np.float32)
        idx = list(range(len(folder)))
        batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
        was_training = self.model.training
        self.model.eval()
        out = []
        try:
            for x, _ in self._loader(folder, batches, augment=False):
                out.append(self._forward_eval(self._to_device(x), flip))
        finally:
            self.model.train(was_training)
        return torch.cat(out).numpy()

    # --- validation --------------------------------------------------------------------------------
    def validate(self) -> dict[str, Any]:
        """Closed-set accuracy and loss on ``val``; open-set ROC-AUC, TPR@FPR and the cosine threshold at
        FPR 1e-3 on the held-out query / distractor identities. Missing parts give None."""
        m: dict[str, Any] = {"val_loss": None, "val_acc": None, "val_auc": None, "val_tpr@1e-3": None,
                             "val_tpr@1e-2": None, "threshold_cos@fpr=1e-3": None}
        s = self.splits
        if len(s.val):
            raw = torch.from_numpy(self.embed_folder(s.val))
            labels = torch.from_numpy(s.val.labels)
            m["val_loss"] = self._val_loss(raw, labels)
            if self.cfg.head in CLASSIFIER_HEADS and hasattr(self.head, "logits"):
                with torch.no_grad():
                    logits = self.head.logits(raw.to(self.device)).cpu()
                m["val_acc"] = float((logits.argmax(1) == labels).float().mean())
            else:
                ref = s.train.subset(self._per_class_subset(s.train, 20))
                ref_emb = _normalise(self.embed_folder(ref))
                m["val_acc"] = nearest_mean_accuracy(_normalise(raw.numpy()), s.val.labels, ref_emb, ref.labels)
        if len(s.query):
            q = _normalise(self.embed_folder(s.query))
            d = _normalise(self.embed_folder(s.distractor))
            try:  # the evaluation package's ID-rate protocol, on the held-out identities
                r = idrate(q, s.query.labels, d, fprs=(1e-3, 1e-2), device="cpu")
                m["val_auc"] = r.auc
                m["val_tpr@1e-3"], m["val_tpr@1e-2"] = r.tpr(1e-3), r.tpr(1e-2)
                m["threshold_cos@fpr=1e-3"] = r.points[0].threshold
                m["n_pos"], m["n_neg"] = r.n_pos, r.n_neg
                # thresholds per FPR and flip setting, for load_model: a flip-TTA embedder never uses a
                # threshold measured without flip (models_definition.thresholds)
                rf = idrate(_normalise(self.embed_folder(s.query, flip=True)), s.query.labels,
                            _normalise(self.embed_folder(s.distractor, flip=True)), fprs=(1e-3, 1e-2), device="cpu")
                where = f"held-out identities of the training run ({r.n_neg} negative pairs)"
                m["thresholds"] = [record(p.threshold, p.target_fpr, flip, data=where)
                                   for flip, res in ((False, r), (True, rf)) for p in res.points
                                   if p.threshold is not None]
            except MetricError as exc:
                raise TrainingError(f"open-set validation failed: {exc}") from None
        m.update(self.verify())
        return m

    @torch.no_grad()
    def verify(self) -> dict[str, Any]:
        """Every verification set: 10-fold accuracy and TAR@FAR=1e-3 of the current model, through the same
        scoring as ``python -m id_rate`` (``id_rate.evaluate.score_pairs``)."""
        from id_rate.evaluate import score_pairs

        out: dict[str, Any] = {}
        for ps in self.verify_sets:
            if ps.images is not None:
                e = self.embed_arrays(ps.images, flip=self.cfg.verify_flip)
            else:  # a pair with a missing image is counted wrong: embed each image that exists once
                unique = sorted({p for p in ps.paths if p is not None and p.is_file()})
                folder = FaceFolder(Path("."), ["pairs"], unique, np.zeros(len(unique), np.int64))
                table = dict(zip(unique, self.embed_folder(folder, flip=self.cfg.verify_flip)))
                missing = np.ones(self.model.embedding_size, np.float32)
                e = np.stack([table.get(p, missing) for p in ps.paths]) if ps.paths else np.zeros(
                    (0, self.model.embedding_size), np.float32)
            r = score_pairs(ps, _normalise(e[0::2]), _normalise(e[1::2]))
            out[f"verify_{ps.name}_acc"], out[f"verify_{ps.name}_tar@1e-3"] = r.accuracy_mean, r.tar_at_far_1e3
        return out

    @torch.no_grad()
    def embed_arrays(self, crops: list[np.ndarray], batch_size: int = 128, flip: bool = False) -> np.ndarray:
        """Raw embeddings of decoded crops (a .bin's images), in eval mode."""
        was_training = self.model.training
        self.model.eval()
        out = []
        try:
            for i in range(0, len(crops), batch_size):
                out.append(self._forward_eval(self._to_device(self.preprocess.batch(crops[i:i + batch_size])), flip))
        finally:
            self.model.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0, self.model.embedding_size), np.float32)

    def _per_class_subset(self, folder: FaceFolder, per_class: int) -> list[int]:
        rng = np.random.default_rng(0)
        out: list[int] = []
        for c in np.unique(folder.labels):
            idx = np.flatnonzero(folder.labels == c)
            out += sorted(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
        return out

    @torch.no_grad()
    def _val_loss(self, raw: torch.Tensor, labels: torch.Tensor) -> float | None:
        """The training loss on validation embeddings, batched the way the sampler batches training."""
        if getattr(self.head, "takes_index", False):  # the teacher table covers training images only
            return None
        try:
            sampler = self._make_sampler(labels.numpy(), seed=0)
        except (DatasetError, TrainingError):
            return None
        losses = []
        for batch in list(sampler)[:16]:
            idx = torch.as_tensor(batch)
            try:
                losses.append(float(self.head(raw[idx].to(self.device), labels[idx].to(self.device))))
            except ValueError:  # a triplet batch without positives
                continue
        return float(np.mean(losses)) if losses else None

    # --- training -------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        cfg = self.cfg
        if self._train_loader is None:  # one loader for the run: worker processes persist across epochs
            self._train_batches = KeyedBatches(self.sampler, cfg.seed, self.epoch, self.rank, self.world)
            self._train_loader = self._loader(self.train_folder, self._train_batches, augment=True,
                                              persistent=cfg.workers > 0)
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
        bar = None
        if cfg.progress and self.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(batches), desc=f"epoch {self.epoch}/{cfg.epochs}", unit="batch", file=sys.stderr,
                       dynamic_ncols=True)
        for step, (x, y) in enumerate(loader):
            x, y = self._to_device(x), y.to(self.device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp) if self.cuda else nullcontext():
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
            if not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step()
            total += float(loss.detach())
            count += 1
            seen += len(x)
            if bar is not None:
                rate = seen * self.world / max(1e-9, time.perf_counter() - start)
                bar.set_postfix(loss=f"{total / count:.4f}", img_s=f"{rate:.0f}")
                bar.update(1)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - start
        mean = total / max(1, count)
        if self.distributed:
            t = torch.tensor([mean], device=self.device)
            dist.all_reduce(t)
            mean = float(t) / self.world
        return {"train_loss": mean, "images_per_s": seen * self.world / max(1e-9, seconds), "seconds": seconds}

    def fit(self, max_epochs: int | None = None) -> list[dict[str, Any]]:
        """Train until ``epochs`` or early stopping (or, with ``max_epochs``, that many more epochs in this
        call: a later ``fit`` or a resumed run continues); returns the history (one dict per epoch)."""
        cfg = self.cfg
        stop_at = cfg.epochs if max_epochs is None else min(cfg.epochs, self.epoch + max_epochs)
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(json.dumps(cfg.to_dict(), indent=2).encode(), self.out / "config.json")
            if not self.history:  # epoch 0: the untrained model, the baseline every epoch is compared to
                row = {"epoch": 0, "lr": self.optimizer.param_groups[0]["lr"], "train_loss": None,
                       "images_per_s": None, "seconds": None, **self.validate()}
                row["wall_seconds"] = self._lap()
                self.history.append(row)
                write_log(self.out, self.history)
        while self.epoch < stop_at:
            if self.stale_out():
                break
            self.epoch += 1
            stats = self.train_epoch()
            metrics = self.validate() if self.is_main else {}
            value = self._broadcast(metrics.get(self.monitor, stats.get(self.monitor)))
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and value is not None:
                self.scheduler.step(value)
            improved = value is not None and (self.best is None or (
                value > self.best if monitor_mode(self.monitor) == "max" else value < self.best))
            if improved:
                self.best, self.stale = value, 0
            else:
                self.stale += 1
            # wall_seconds: training plus the per-epoch checks and writing ("seconds" is training alone)
            row = {"epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"], **stats, **metrics,
                   "wall_seconds": self._lap()}
            self.history.append(row)
            if self.is_main:
                self._save(row, improved)
                write_log(self.out, self.history)
            if self.distributed:
                dist.barrier()
        return self.history

    def _lap(self) -> float:
        """Seconds since the previous mark, and a new mark."""
        now = time.perf_counter()
        seconds, self._mark = now - self._mark, now
        return seconds

    def stale_out(self) -> bool:
        p = self.cfg.early_stop_patience
        return p is not None and self.stale >= p

    def _broadcast(self, value: float | None) -> float | None:
        if not self.distributed:
            return value
        t = torch.tensor([math.nan if value is None else float(value)], device=self.device)
        dist.broadcast(t, 0)
        v = float(t)
        return None if math.isnan(v) else v


def _resolver():
    """path -> resolved path, resolving each folder once (a CASIA-size list has few folders, many files)."""
    folders: dict[Path, Path] = {}

    def resolve(p: Path | str) -> Path:
        p = Path(p)
        parent = folders.get(p.parent)
        if parent is None:
            parent = folders[p.parent] = p.parent.resolve()
        return parent / p.name

    return resolve


def _normalise(e: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(n, 1e-12)


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False) -> Trainer:
    """Train (or resume) a run and return its :class:`Trainer` (``.history``, ``.model``)."""
    trainer = Trainer(cfg, out_dir, resume)
    trainer.fit()
    return trainer


__all__ = ["Trainer", "TrainingError", "TrainConfig", "train", "make_splits", "CheckpointError"]
