"""A run's checkpoints: ``last.pt`` (everything an exact resume needs: optimiser, schedule, AMP scaler, RNG,
epoch, history) and ``best.pt`` (the embedder and its spec only: heads are thrown away after training)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from models_definition.checkpoint import load_checkpoint, save_checkpoint
from models_definition.precision import autocast_dtype

from .config import RESUMABLE_CHANGES, TrainConfig

from .errors import TrainingError

if TYPE_CHECKING:
    from .engine import Trainer


def run_spec(trainer: "Trainer", metrics: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's ``spec``: what builds the embedder again, the run's settings, split and figures."""
    cfg = trainer.cfg
    return {
        "backbone": cfg.backbone, "embedding_size": trainer.model.embedding_size, "dropout": cfg.dropout,
        "preprocess": trainer.preprocess.to_dict(), "head": cfg.head, "head_kwargs": dict(cfg.head_kwargs),
        "train_config": cfg.to_dict(), "split": cfg.split.to_dict(), "metrics": metrics,
        "classes": list(trainer.classes), "epoch": trainer.epoch,
        **({"audit": trainer.audit} if trainer.audit is not None else {}),
    }


def check_resume(cfg: TrainConfig, last: Path) -> dict[str, Any]:
    """``last``'s contents, if it continues the same experiment as ``cfg`` (only RESUMABLE_CHANGES may differ)."""
    ckpt = load_checkpoint(last, map_location="cpu")
    now = cfg.to_dict()
    # a field added after the run was saved reads as its default: what that run did without it
    defaults = TrainConfig().to_dict()
    saved = {k: ckpt["spec"]["train_config"].get(k, defaults[k]) for k in now}
    diff = [f"{k}: run {saved[k]!r} vs now {now[k]!r}" for k in now
            if k not in RESUMABLE_CHANGES and saved[k] != now[k]]
    if diff:
        raise TrainingError(f"{last}: cannot resume with other settings ({'; '.join(diff)}); "
                            "use the run's config.json or another output folder")
    return ckpt


def forward_dtype(trainer: "Trainer") -> str:
    """The dtype the trainer's forward passes run in: 'float32', 'bfloat16' or 'float16'."""
    dtype = autocast_dtype(trainer.device, trainer.amp)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def load_state(trainer: "Trainer", ckpt: dict[str, Any]) -> None:
    """Put a ``last.pt``'s state back into the trainer: weights, optimiser, schedule, scaler, RNG, progress.
    A run continues only in the precision it trained in (exact resume): before this was recorded, CPU runs
    trained in float32 and CUDA runs with ``amp`` in float16."""
    saved_cfg = ckpt["spec"].get("train_config", {})
    was = ckpt.get("autocast_dtype") or ("float16" if trainer.cuda and saved_cfg.get("amp", True) else "float32")
    now = forward_dtype(trainer)
    if was != now:
        raise TrainingError(f"the run trained its forward passes in {was}; here they would run in {now}, so it would "
                            f"not continue exactly. Resume with --set amp={'false' if was == 'float32' else 'true'} "
                            f"(amp: mixed precision where the device has it), on a {trainer.device.type} that trains "
                            f"in {was}")
    trainer.model.load_state_dict(ckpt["model"])
    trainer.head.load_state_dict(ckpt["head"])
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    if ckpt.get("scheduler") is not None:
        trainer.scheduler.load_state_dict(ckpt["scheduler"])
    trainer.scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng_cpu"])
    if trainer.cuda and ckpt.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(ckpt["rng_cuda"], trainer.device)
    trainer.epoch = int(ckpt["spec"]["epoch"])
    trainer.history = list(ckpt["history"])
    trainer.best, trainer.stale = ckpt["best"], int(ckpt["stale"])


def save(trainer: "Trainer", metrics: dict[str, Any], improved: bool) -> None:
    """Write ``last.pt`` (and ``best.pt`` when the monitored value improved), each atomically."""
    spec, out = run_spec(trainer, metrics), trainer.out
    if improved:
        save_checkpoint(out / "best.pt", trainer.model, spec)
    save_checkpoint(out / "last.pt", trainer.model, spec, head=trainer.head.state_dict(),
                    optimizer=trainer.optimizer.state_dict(), scheduler=trainer.scheduler.state_dict(),
                    scaler=trainer.scaler.state_dict(), rng_cpu=torch.get_rng_state(),
                    autocast_dtype=forward_dtype(trainer),
                    rng_cuda=torch.cuda.get_rng_state(trainer.device) if trainer.cuda else None,
                    history=trainer.history, best=trainer.best, stale=trainer.stale)
