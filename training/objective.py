"""What a run optimises: the embedder with its head as one module, the optimiser and the learning-rate schedule."""
from __future__ import annotations

import math

import torch
from torch import nn

from models_definition.backbones import Embedder
from models_definition.precision import autocast

from .config import TrainConfig, monitor_mode


class TrainModule(nn.Module):
    """Embedder + head as one module, so DDP synchronises the head's class weights too. With ``amp`` the
    embedder runs in mixed precision (``models_definition.precision``); the head and its loss in float32."""

    def __init__(self, model: Embedder, head: nn.Module, amp: bool = False) -> None:
        super().__init__()
        self.model, self.head, self.amp = model, head, amp

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(x.device, self.amp):
            emb = self.model(x)
        with torch.autocast(x.device.type, enabled=False):
            return self.head(emb.float(), y)


def set_bn_momentum(model: nn.Module, momentum: float | None) -> None:
    """Every BatchNorm's momentum (None: keep each layer's own)."""
    if momentum is None:
        return
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = momentum


def make_optimizer(cfg: TrainConfig, model: nn.Module, module: nn.Module) -> torch.optim.Optimizer:
    """The optimiser over ``module``'s parameters; ``model`` (the backbone) may learn at its own rate."""
    # No weight decay on BatchNorm and bias parameters (they set scale and offset, not capacity).
    # The backbone may learn slower than the head (fine-tuning a pretrained face network).
    backbone = {id(p) for p in model.parameters()}
    parts = ((cfg.lr, None),) if cfg.backbone_lr_factor == 1.0 else \
        ((cfg.lr * cfg.backbone_lr_factor, True), (cfg.lr, False))  # None: one pair of groups (as before)
    groups = []
    for part_lr, in_backbone in parts:
        decay, no_decay = [], []
        for p in module.parameters():
            if in_backbone is None or (id(p) in backbone) == in_backbone:
                (no_decay if p.ndim <= 1 else decay).append(p)
        groups += [{"params": decay, "weight_decay": cfg.weight_decay, "lr": part_lr},
                   {"params": no_decay, "weight_decay": 0.0, "lr": part_lr}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr)


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, monitor: str, steps_per_epoch: int):
    """Plateau (stepped per epoch on ``monitor``), constant, or cosine with linear warm-up (stepped per batch)."""
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=monitor_mode(monitor),
                                                          factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def per_epoch_schedule(scheduler) -> bool:
    """Whether the schedule steps once an epoch on the monitored value (plateau) rather than every batch."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
