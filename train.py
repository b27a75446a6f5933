"""Train a face-embedding model: ``python train.py --recipe sample-triplet``.

A recipe (``config.TRAIN_RECIPES``) gives every setting; ``--set key=value`` overrides any of them
(values are Python literals: ``--set lr=3e-4 --set head_kwargs="{'margin': 0.3}"``); a value of the
wrong type or out of range is refused with the key and what it expects (exit code 2). The run goes to
``checkpoints/<recipe>/`` unless ``--out`` says otherwise; ``--resume`` continues an interrupted run
exactly, and where the folder holds no run yet it says so and starts one. Ctrl+C stops the run and says
which epoch last.pt holds and the command that resumes it.
Multi-GPU: ``torchrun --nproc_per_node=4 train.py --recipe arcface-efficientnet``.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import sys
from pathlib import Path

import torch

import config
from facedata.cli import at_least, command
from facedata.errors import UsageError
from facedata.io import check_output_folder
from models_definition.checkpoint import CheckpointError, load_checkpoint
from models_definition.zoo import check_model_names
from training import TrainConfig, Trainer


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set {item!r}: expected key=value")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value  # a bare string such as a path or a name
    return out


def build_config(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    if args.config:
        try:
            base = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--config {args.config}: cannot be read as a run's config.json ({exc})") from None
        if not isinstance(base, dict):
            raise UsageError(f"--config {args.config}: expected a JSON object of training options")
        out = Path(args.out or Path(args.config).parent)
    else:
        check_model_names([args.recipe], config.TRAIN_RECIPES, "recipe", sort=False)  # config's order: seed's first
        base = dict(config.TRAIN_RECIPES[args.recipe])
        out = Path(args.out or config.CHECKPOINTS / args.recipe)
    base.update(parse_set(args.set))
    for key in ("data", "epochs", "device", "workers"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.no_progress:
        base["progress"] = False
    return TrainConfig.from_dict(base), out


def _say_what_was_saved(out: Path) -> None:
    """Ctrl+C: which epoch last.pt holds (the last completed one) and the command that resumes it, or that
    nothing was saved yet (interrupted while the data was scanned or the teacher table built, or in epoch 1)."""
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 speaks for the run
        return
    last = out / "last.pt"
    if last.is_file():
        try:
            epoch = load_checkpoint(last, mmap=True)["spec"]["epoch"]  # mmap: the spec only, at once
        except CheckpointError:
            epoch = "?"
        cmd = f"python train.py --config {shlex.quote(str(out / 'config.json'))} --resume"
        print(f"\ntrain.py: interrupted (Ctrl+C). Saved: {last} holds epoch {epoch}, the last completed one (best.pt "
              f"the best so far); the epoch in progress is lost. Resume with:\n  {cmd}", file=sys.stderr)
    else:
        print("\ntrain.py: interrupted (Ctrl+C) before an epoch was completed: no checkpoint was saved; run the same "
              "command again to start over", file=sys.stderr)


@command("train.py")  # Ctrl+C after the run folder is known: main says what was saved (it depends on last.pt)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--recipe", help=f"one of: {', '.join(config.TRAIN_RECIPES)}")
    src.add_argument("--config", help="a run's config.json (repeat or resume that run)")
    p.add_argument("--out", help="run folder (default checkpoints/<recipe>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt; when the "
                   "folder holds no run yet (no last.pt), a notice says so and a new run starts")
    p.add_argument("--data", help="aligned face folder, <identity>/<image>")
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, help="data-loading processes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe setting")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    args = p.parse_args(argv)
    at_least("--threads", args.threads, 1)  # torch would raise it as a RuntimeError
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, out = build_config(args)  # every setting checked: type, range, head options
    check_output_folder(out, "--out")  # before the data is scanned and the model built
    if args.resume and not (out / "last.pt").is_file():
        print(f"train.py: nothing to resume in {out} (no last.pt): starting a new run there", file=sys.stderr)
    try:
        trainer = Trainer(cfg, out, resume=args.resume)  # inside: scanning data / a teacher table takes a while
        trainer.fit()
    except KeyboardInterrupt:
        _say_what_was_saved(out)  # the one message: the runner's generic one would contradict it
        return 130
    if trainer.is_main:
        last = trainer.history[-1]
        shown = {k: last.get(k) for k in ("epoch", "train_loss", "val_auc", "val_tpr@1e-2", "val_acc")}
        print(f"done: {out}/best.pt and last.pt; last epoch {shown}; log {out}/log.csv, curves {out}/loss.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
