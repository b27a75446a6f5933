"""Train a face-embedding model: ``python train.py --recipe sample-triplet``.

A recipe (``config.TRAIN_RECIPES``) gives every setting; ``--set key=value`` overrides any of them
(values are Python literals: ``--set lr=3e-4 --set head_kwargs="{'margin': 0.3}"``). The run goes to
``checkpoints/<recipe>/`` unless ``--out`` says otherwise; ``--resume`` continues an interrupted run
exactly. Multi-GPU: ``torchrun --nproc_per_node=4 train.py --recipe arcface-efficientnet``.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import torch

import config
from facedata.errors import FaceDataError
from models_definition.checkpoint import CheckpointError
from training import TrainConfig, TrainingError, train


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value  # a bare string such as a path or a name
    return out


def build_config(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    if args.config:
        base = json.loads(Path(args.config).read_text())
        out = Path(args.out or Path(args.config).parent)
    else:
        if args.recipe not in config.TRAIN_RECIPES:
            raise ValueError(f"unknown recipe {args.recipe!r}; valid: {', '.join(config.TRAIN_RECIPES)}")
        base = dict(config.TRAIN_RECIPES[args.recipe])
        out = Path(args.out or config.CHECKPOINTS / args.recipe)
    base.update(parse_set(args.set))
    for key in ("data", "epochs", "device", "workers"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.no_progress:
        base["progress"] = False
    return TrainConfig.from_dict(base), out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--recipe", help=f"one of: {', '.join(config.TRAIN_RECIPES)}")
    src.add_argument("--config", help="a run's config.json (repeat or resume that run)")
    p.add_argument("--out", help="run folder (default checkpoints/<recipe>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--data", help="aligned face folder, <identity>/<image>")
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, help="data-loading processes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe setting")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg, out = build_config(args)
        trainer = train(cfg, out, resume=args.resume)
    except (TrainingError, FaceDataError, CheckpointError, ValueError, KeyError) as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    if trainer.is_main:
        last = trainer.history[-1]
        shown = {k: last.get(k) for k in ("epoch", "train_loss", "val_auc", "val_tpr@1e-2", "val_acc")}
        print(f"done: {out}/best.pt and last.pt; last epoch {shown}; log {out}/log.csv, curves {out}/loss.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
