"""Training images/s of the engine's CPU settings against the previous defaults, in one run.

Each row trains the same backbone on the same data, batches and seed for ``--steps`` timed steps (after a
warm-up epoch), changing one setting at a time from the previous engine (float32, every crop decoded from
its JPEG every step, channels_last on) to today's defaults (bfloat16 autocast on a CPU with bf16 units,
crops kept in memory as uint8):

    python benchmarks/bench_train_speed.py --data data/composed [--backbones resnet18_half@112 resnet18@64] \
        [--before /path/to/older/checkout]

``--before`` also times an older checkout of this repository (``git worktree add DIR REV``) with its own defaults,
in a subprocess, on the same data and settings: the engine as it was, not only its settings.

The loss of each row's timed steps is printed too: mixed precision must train the same (the close check on real
batches is tests/test_precision.py).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from training import TrainConfig, Trainer  # noqa: E402

# (label, settings): the previous engine first, every later row a ratio against it
VARIANTS = [
    ("previous engine: fp32, JPEG per step", dict(amp=False, in_memory_gb=0.0)),
    ("bf16 autocast, JPEG per step", dict(amp=True, in_memory_gb=0.0)),
    ("fp32, crops in memory", dict(amp=False, in_memory_gb=4.0)),
    ("bf16 + crops in memory (default)", dict(amp=True, in_memory_gb=4.0)),
    ("default, channels_last off", dict(amp=True, in_memory_gb=4.0, channels_last=False)),
]
PRESETS = {64: "arcface64", 112: "arcface112"}


def rate(data: str, backbone: str, px: int, steps: int, batch: int, workers: int | None, **settings) -> tuple[float, float]:
    """(images/s, mean loss) over ``steps`` ArcFace steps after a warm-up epoch of 2 steps."""
    cfg = TrainConfig(data=data, backbone=backbone, preprocess=PRESETS[px], embedding_size=128, head="arcface",
                      head_kwargs=dict(scale=32.0, margin_rad=0.3), sampler="shuffle", batch_size=batch,
                      val_fraction=0.0, open_set_query=0, open_set_distractor=0, epochs=2, workers=workers,
                      progress=False, optimizer="adamw", lr=1e-3, schedule="constant", verify_sets=[],
                      allow_overlap=True, **settings)
    out = Path(tempfile.mkdtemp())
    try:
        tr = Trainer(cfg, out, callbacks=[])
        tr.sampler.batches = 2
        tr.train_epoch()  # warm-up: worker start-up, first kernels, allocator
        tr.epoch, tr.sampler.batches = 1, steps
        stats = tr.train_epoch()
        tr._stop_workers()
        return stats["images_per_s"], stats["train_loss"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


BEFORE_SCRIPT = """
import json, shutil, sys, tempfile, torch
from pathlib import Path
torch.set_num_threads({threads})
from training import TrainConfig, Trainer
cfg = TrainConfig(data={data!r}, backbone={backbone!r}, preprocess={preset!r}, embedding_size=128, head="arcface",
                  head_kwargs=dict(scale=32.0, margin_rad=0.3), sampler="shuffle", batch_size={batch}, val_fraction=0.0,
                  open_set_query=0, open_set_distractor=0, epochs=2, progress=False, optimizer="adamw", lr=1e-3,
                  schedule="constant", verify_sets=[], allow_overlap=True)
out = Path(tempfile.mkdtemp())
tr = Trainer(cfg, out, callbacks=[])
tr.sampler.batches = 2
tr.train_epoch()
tr.epoch, tr.sampler.batches = 1, {steps}
stats = tr.train_epoch()
tr._stop_workers()
shutil.rmtree(out, ignore_errors=True)
print(json.dumps([stats["images_per_s"], stats["train_loss"]]))
"""


def before_rate(checkout: Path, data: str, backbone: str, px: int, steps: int, batch: int,
                threads: int) -> tuple[float, float] | None:
    """(images/s, mean loss) of the same measurement run by an older checkout's engine with its defaults; None
    when that checkout cannot run it (a backbone it does not have)."""
    import json
    import os
    import subprocess

    code = BEFORE_SCRIPT.format(threads=threads, data=str(Path(data).resolve()), backbone=backbone,
                                preset=PRESETS[px], batch=batch, steps=steps)
    env = dict(os.environ, PYTHONPATH=str(checkout))
    r = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True)
    if r.returncode != 0:  # e.g. a backbone that checkout does not have
        return None
    img_s, loss = json.loads(r.stdout.strip().splitlines()[-1])
    return img_s, loss


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(config.SAMPLE_ALIGNED), help="aligned crops (<identity>/<image>)")
    p.add_argument("--backbones", nargs="+", default=["resnet18_half@112", "resnet18@64"], help="name@input_px")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", nargs="+", default=["2", "auto"],
                   help="loader processes, one set of rows each (auto: the engine's default, 0 for crops in memory)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--before", type=Path, default=None, help="an older checkout to time too (its own defaults)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for spec in args.backbones:
        backbone, px = spec.split("@")
        older = None
        if args.before is not None:
            got = before_rate(args.before, args.data, backbone, int(px), args.steps, args.batch, args.threads)
            if got is None:
                print(f"{args.before}: cannot train {backbone} (not in that checkout?): no older-engine row")
            img_s, loss = got if got is not None else (float("nan"), float("nan"))
            older = got[0] if got is not None else None
            rows.append({"backbone": backbone, "input_px": int(px), "workers": "its default",
                         "setting": f"older checkout {args.before.name}, its defaults", "images_per_s": round(img_s, 1),
                         "x_previous": None, "loss": round(loss, 4)})
            print(rows[-1], flush=True)
        for workers in args.workers:
            base = None
            for label, settings in VARIANTS:
                img_s, loss = rate(args.data, backbone, int(px), args.steps, args.batch,
                                   None if workers == "auto" else int(workers), **settings)
                base = base or img_s
                rows.append({"backbone": backbone, "input_px": int(px), "workers": workers, "setting": label,
                             "images_per_s": round(img_s, 1), "x_previous": round(img_s / base, 2),
                             "x_older_checkout": None if older is None else round(img_s / older, 2),
                             "loss": round(loss, 4)})
                print(rows[-1], flush=True)
    path = record("train_speed", {"data": args.data, "batch": args.batch, "steps": args.steps,
                                  "threads": args.threads, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
