"""The training run's settings: one flat dataclass, saved in every checkpoint and in ``config.json``.

Every field is a plain value, so a run is reproducible from its JSON and a resumed run can check that
it continues the same experiment.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SAMPLERS = ("shuffle", "pk", "pairs")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "plateau", "constant")
MONITORS = {  # metric -> which direction is better
    "val_auc": "max", "val_tpr@1e-3": "max", "val_tpr@1e-2": "max", "val_acc": "max",
    "val_loss": "min", "train_loss": "min",
}
# Fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_CHANGES = ("epochs", "workers", "progress", "device", "early_stop_patience")


@dataclass
class TrainConfig:
    # data
    data: str = "data/sample_aligned"  # aligned crops, <identity>/<image>
    min_images_per_class: int = 1
    max_classes: int | None = None
    val_fraction: float = 0.1  # closed-set validation: this share of each training identity's images
    open_set_query: int = 0  # held-out identities with >= 2 images: same-identity pairs for open-set metrics
    open_set_distractor: int = 0  # held-out identities used as negatives only
    open_set_query_images: int | None = None  # caps per identity (seed protocol: 6 and 60)
    open_set_distractor_images: int | None = None
    max_train_classes: int | None = None  # after the hold-out: train on this many identities (seeded choice)
    split_seed: int = 42
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
    monitor: str | None = None  # None: val_auc with an open set, else val_acc, else train_loss
    early_stop_patience: int | None = None  # epochs without improvement of the monitor
    # machine
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # float16 autocast + GradScaler, CUDA only
    channels_last: bool = True  # NHWC: faster convolutions on GPUs (tensor cores) and, measured, on this CPU too
    workers: int = 2
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        for name, value, valid in (("sampler", self.sampler, SAMPLERS), ("optimizer", self.optimizer, OPTIMIZERS),
                                   ("schedule", self.schedule, SCHEDULES)):
            if value not in valid:
                raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
        if self.monitor is not None and self.monitor not in MONITORS:
            raise ValueError(f"unknown monitor {self.monitor!r}; valid: {', '.join(MONITORS)}")
        if self.batch_size < 2 or self.epochs < 1:
            raise ValueError(f"batch_size must be >= 2 and epochs >= 1, got {self.batch_size} and {self.epochs}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}; valid: "
                             f"{', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
