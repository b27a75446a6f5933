"""The training run's settings: one flat dataclass, saved in every checkpoint and in ``config.json``.

Every field is a plain value, so a run is reproducible from its JSON and a resumed run can check that
it continues the same experiment.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from facedata.errors import FaceKitError, UsageError
from facedata.splits import SplitSpec
from models_definition.heads import check_head_options

SAMPLERS = ("shuffle", "pk", "pairs")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "plateau", "constant")
MONITORS = {  # metric -> which direction is better
    "val_auc": "max", "val_tpr@1e-3": "max", "val_tpr@1e-2": "max", "val_acc": "max",
    "val_loss": "min", "train_loss": "min",
    # the mean of every verification set's 10-fold accuracy and the held-out identities' ROC-AUC
    # (training.callbacks.Selection): best.pt chosen on LFW View 1 DevTest and a held-out slice of the training set
    "select": "max",
}
def _is_verify_metric(name: str) -> bool:
    return name.startswith("verify_") and name.endswith(("_acc", "_tar@1e-3"))


def monitor_mode(name: str) -> str:
    """'max' or 'min': which direction of ``name`` is better."""
    return "max" if _is_verify_metric(name) else MONITORS[name]


# Fields that may change when a run is resumed (they do not change what is computed).
# amp may change on resume only where the precision stays the same (training.checkpoints.load_state checks it)
RESUMABLE_CHANGES = ("epochs", "workers", "progress", "device", "early_stop_patience", "in_memory_gb",
                     "teacher_cache", "amp")


class SettingError(FaceKitError, ValueError):
    """A training setting with a value of the wrong type or out of range; ``key`` names it."""

    def __init__(self, key: str, value: Any, expected: str) -> None:
        self.key, self.value = key, value
        super().__init__(f"training option {key}={value!r}: {expected}")


# Allowed ranges, checked with the types (a string lr or a val_fraction of 2.0 would fail deep in the run).
RANGES: dict[str, tuple[float | None, float | None, bool]] = {  # key -> (low, high, high excluded)
    "min_images_per_class": (1, None, False), "max_classes": (1, None, False), "val_fraction": (0, 1, True),
    "open_set_query": (0, None, False), "open_set_distractor": (0, None, False),
    "open_set_query_images": (1, None, False), "open_set_distractor_images": (1, None, False),
    "max_train_classes": (1, None, False), "embedding_size": (1, None, False), "dropout": (0, 1, True),
    "bn_momentum": (0, 1, False), "batch_size": (2, None, False), "pk_k": (1, None, False),
    "batches_per_epoch": (1, None, False), "epochs": (1, None, False), "lr": (0, None, False),
    "weight_decay": (0, None, False), "momentum": (0, 1, False), "warmup_epochs": (0, None, False),
    "min_lr_factor": (0, 1, False), "plateau_factor": (0, 1, True), "plateau_patience": (0, None, False),
    "grad_clip_norm": (0, None, False), "early_stop_patience": (1, None, False), "workers": (0, None, False),
    "freeze_backbone_epochs": (0, None, False), "backbone_lr_factor": (0, None, False),
    "teacher_views": (0, None, False), "in_memory_gb": (0, None, False),
    "benchmark_query": (0, None, False), "benchmark_distractor": (0, None, False), "benchmark_query_images": (2, None, False),
}
_POSITIVE = {"lr", "grad_clip_norm", "plateau_factor"}  # strictly above their low bound


def _expected(key: str, kind: type, optional: bool) -> str:
    """'a float in [0, 1)', 'an integer >= 1 or None', ..."""
    name = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a dict",
            list: "a list of strings"}[kind]
    low, high, open_high = RANGES.get(key, (None, None, False))
    if low is not None and high is not None:
        name += f" in {'(' if key in _POSITIVE else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    elif low is not None:
        name += f" {'>' if key in _POSITIVE else '>='} {low:g}"
    return name + (" or None" if optional else "")


def _check_types_and_ranges(cfg: "TrainConfig") -> None:
    """Every field against its annotation and RANGES; ints are accepted (and stored) for float fields."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        optional = type(None) in args
        kind = next(typing.get_origin(a) or a for a in args if a is not type(None))
        if value is None and optional:
            continue
        ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))) or (
            kind is float and isinstance(value, int) and not isinstance(value, bool))
        if ok and kind is list:
            ok = all(isinstance(v, str) for v in value)
        low, high, open_high = RANGES.get(f.name, (None, None, False))
        if ok and kind in (int, float):
            ok = (low is None or (value > low if f.name in _POSITIVE else value >= low)) and (
                high is None or (value < high if open_high else value <= high)) and value == value  # NaN fails
        if not ok:
            raise SettingError(f.name, value, f"expected {_expected(f.name, kind, optional)}")
        if kind is float:
            setattr(cfg, f.name, float(value))


@dataclass
class TrainConfig:
    # data
    # the split (facedata.splits.SplitSpec, whose defaults these are: one copy)
    data: str = SplitSpec.data  # aligned crops, <identity>/<image>
    min_images_per_class: int = SplitSpec.min_images_per_class
    max_classes: int | None = SplitSpec.max_classes
    val_fraction: float = SplitSpec.val_fraction  # closed-set validation: this share of each training identity's images
    open_set_query: int = SplitSpec.open_set_query  # held-out identities with >= 2 images: same-identity pairs
    open_set_distractor: int = SplitSpec.open_set_distractor  # held-out identities used as negatives only
    open_set_query_images: int | None = SplitSpec.open_set_query_images  # caps per identity (seed protocol: 6, 60)
    open_set_distractor_images: int | None = SplitSpec.open_set_distractor_images
    max_train_classes: int | None = SplitSpec.max_train_classes  # after the hold-out: this many identities (seeded)
    split_seed: int = SplitSpec.split_seed
    benchmark_query: int = SplitSpec.benchmark_query  # identities set aside for the benchmark alone (never seen)
    benchmark_distractor: int = SplitSpec.benchmark_distractor
    benchmark_query_images: int = SplitSpec.benchmark_query_images
    # a composed set (facedata.compose) trains only if its identity-overlap audit covered every one of these
    # evaluation sets and dropped what it flagged: the sets this project reports on (facedata.audit)
    audit_eval_sets: list[str] = field(default_factory=lambda: ["lfw", "cfp", "celeba"])
    # train on a composed set anyway (unaudited, or keeping flagged identities); recorded in the checkpoint, and
    # evaluation then warns that the model may have seen the people of those sets
    allow_overlap: bool = False
    # model
    backbone: str = "mobilefacenet"
    pretrained: str | None = None
    embedding_size: int = 512
    dropout: float = 0.0
    preprocess: str = "arcface112"  # a facedata.preprocess preset
    bn_momentum: float | None = 0.1  # every BatchNorm; efficientnet-pytorch's 0.01 leaves eval-mode statistics
    # near their initial values for thousands of steps, so short runs validate a miscalibrated model. None: keep
    # objective
    head: str = "arcface"
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    # head "distill": the model whose embeddings the student regresses, as a model-registry entry
    # (config.MODELS style, e.g. {"reference": "sface"}); its embedding size must equal embedding_size
    teacher: dict[str, Any] | None = None
    # distillation: how many fixed views of each image the teacher embeds (view 0 the plain crop, the others
    # augmented, seeded); the student is shown one of exactly those views a step, so its target matches its
    # pixels. 0: the teacher embeds the plain crop once and the student sees freshly augmented crops
    # (the first distillation recipes; the target then disagrees with what the student sees).
    teacher_views: int = 0
    # distillation: the folder the teacher's table is cached in (None: the run folder). The table is
    # content-addressed (teacher, image list, views, augmentation, seed), so runs that share it (the composed
    # distillation recipes) compute it once
    teacher_cache: str | None = None
    # distillation: more aligned-face folders (<identity>/<image>, identities ignored) whose faces the student
    # also learns from, through the teacher term only (a label term skips them); the run's validation,
    # held-out and verification images are refused (checked by file); no set you report later (LFW) belongs here
    extra_data: list[str] = field(default_factory=list)
    sampler: str = "shuffle"  # shuffle | pk (P x K identities) | pairs (Siamese)
    batch_size: int = 64  # images per step (pk: P = batch_size // pk_k; pairs: batch_size // 2 pairs)
    pk_k: int = 4
    batches_per_epoch: int | None = None  # None: about one pass over the training images
    augment: dict[str, Any] | None = field(default_factory=dict)  # facedata.augment.Augment options; None: off
    # optimisation
    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"
    warmup_epochs: float = 1.0  # cosine only: linear warm-up, in epochs
    min_lr_factor: float = 0.01  # cosine floor as a share of lr
    plateau_factor: float = 0.2  # the seed project's ReduceLROnPlateau
    plateau_patience: int = 4
    grad_clip_norm: float | None = 5.0  # None: no clipping
    # fine-tuning a pretrained face network: the first N epochs train only the head (backbone frozen, its
    # BatchNorm statistics too), so a random head cannot wreck the pretrained features; then everything
    freeze_backbone_epochs: int = 0
    backbone_lr_factor: float = 1.0  # the backbone's learning rate as a share of lr (a pretrained start: < 1)
    monitor: str | None = None  # None: val_auc with an open set, else val_acc, else train_loss; or verify_<set>_acc; or select
    early_stop_patience: int | None = None  # epochs without improvement of the monitor
    # verification during training (insightface's CallBackVerification): pair sets scored every epoch, logged
    # as verify_<set>_acc and verify_<set>_tar@1e-3; "PAIRS_FILE@ALIGNED_DIR" (LFW-style pairs) or a .bin
    verify_sets: list[str] = field(default_factory=list)
    verify_flip: bool = True  # score the flip-summed embedding, as LFW figures are reported
    # machine
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # mixed precision (models_definition.precision): float16 + GradScaler on CUDA; bfloat16 autocast on a CPU with
    # bf16 units (AVX512-BF16 / AMX), 1.3-1.6x the float32 images/s here with the loss within 0.5% (tests,
    # benchmarks/README.md); the head and its loss stay float32 (ArcFace's margin needs the precision)
    amp: bool = True
    # decode the training crops once and keep them in memory (uint8) when they take at most this many GB: an epoch
    # then decodes no JPEG (the composed set at 112 px: 0.8 GB). 0: read every file every step
    in_memory_gb: float = 4.0
    channels_last: bool = True  # NHWC: faster convolutions on GPUs (tensor cores) and, measured, on this CPU too
    # loader processes. None: none for crops held in memory on a CPU (the processes would take the cores the model
    # trains on: 553 against 488 images/s with 2 of them on 2 cores, benchmarks/README.md), else 2
    workers: int | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        _check_types_and_ranges(self)
        for name, value, valid in (("sampler", self.sampler, SAMPLERS), ("optimizer", self.optimizer, OPTIMIZERS),
                                   ("schedule", self.schedule, SCHEDULES)):
            if value not in valid:
                raise UsageError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
        if self.monitor == "select" and not (self.verify_sets and self.open_set_query):
            raise SettingError("monitor", self.monitor, "'select' averages the verify_sets' accuracy and the held-out "
                               "identities' AUC: it needs verify_sets and open_set_query > 0")
        if self.monitor is not None and self.monitor not in MONITORS and not _is_verify_metric(self.monitor):
            raise UsageError(f"unknown monitor {self.monitor!r}; valid: {', '.join(MONITORS)}, or "
                             "verify_<set>_acc for a set of verify_sets")
        if (self.head == "distill") != (self.teacher is not None):
            raise SettingError("teacher", self.teacher, "the distill head needs a teacher (a model-registry entry "
                               "such as {'reference': 'sface'}) and only it takes one")
        if self.teacher_views > 1 and self.augment is None:
            raise SettingError("teacher_views", self.teacher_views, "more than one view needs augmentation "
                               "(augment is None: every view would be the same crop); use 1, or set augment")
        if self.head == "distill" and self.sampler != "shuffle":
            raise SettingError("sampler", self.sampler, "the distill head learns per image, not per identity: "
                               "use sampler='shuffle'")
        if self.sampler == "pk" and (self.batch_size % self.pk_k or self.batch_size // self.pk_k < 2):
            # P = batch_size // pk_k identities of pk_k images: anything else trained on another batch size
            need = max(2, -(-self.batch_size // self.pk_k)) * self.pk_k
            raise SettingError("batch_size", self.batch_size, f"the pk sampler fills a batch with P >= 2 identities "
                               f"of pk_k={self.pk_k} images: set batch_size to a multiple of pk_k of at least "
                               f"{2 * self.pk_k} (e.g. batch_size={need}), or change pk_k")
        if (self.teacher_views or self.extra_data) and self.head != "distill":
            raise SettingError("teacher_views" if self.teacher_views else "extra_data",
                               self.teacher_views or self.extra_data, "only the distill head takes it")
        try:
            check_head_options(self.head, self.head_kwargs)
        except ValueError as exc:
            raise SettingError("head_kwargs", self.head_kwargs, str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def split(self) -> SplitSpec:
        """The run's split settings (stored in every checkpoint as ``spec["split"]``)."""
        return SplitSpec.from_dict(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UsageError(f"unknown training options {sorted(unknown)}; valid: "
                             f"{', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
