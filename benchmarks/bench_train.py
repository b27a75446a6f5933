"""Training throughput (images/s) at 112x112 on this machine: the engine against a naive loop.

Engine: ``training.Trainer`` on the aligned sample crops (``make demo``), loader worker processes,
channels_last, seeded augmentation. Naive: the same model and head, but every step decodes the original
photos, detects and aligns each face (MTCNN) and runs NCHW in the main process. Same run, same batches. The engine is also timed with channels_last off.
    python benchmarks/bench_train.py [--backbones mobilefacenet resnet18 efficientnet_b0] [--steps 6]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata.align import align_face  # noqa: E402
from facedata.detect import FaceDetector, pick_main_face  # noqa: E402
from facedata.io import load_image  # noqa: E402
from training import TrainConfig, Trainer  # noqa: E402


def engine_rate(backbone: str, steps: int, batch: int, workers: int, channels_last: bool = True) -> tuple[float, Trainer]:
    cfg = TrainConfig(data=str(config.SAMPLE_ALIGNED), backbone=backbone, head="softmax", sampler="shuffle",
                      batch_size=batch, batches_per_epoch=None, val_fraction=0.0, epochs=1, workers=workers,
                      progress=False, channels_last=channels_last,
                      amp=False)  # the naive loop runs in float32: compare the pipelines, not the precision
    out = Path(tempfile.mkdtemp())
    try:
        tr = Trainer(cfg, out)
        tr.sampler.batches = steps + 1
        tr.train_epoch()  # warm-up epoch: allocator, worker start-up, first-batch kernels
        tr.epoch = 1
        stats = tr.train_epoch()
        return stats["images_per_s"], tr
    finally:
        shutil.rmtree(out, ignore_errors=True)


def naive_rate(tr: Trainer, steps: int, batch: int) -> float:
    """Seed style: decode the original photo, detect, align, preprocess, one image after another, every step."""
    det = FaceDetector()
    folder = tr.splits.train
    sources = {p.name: config.SAMPLE_IDENTITIES / p.parent.name / p.name for p in folder.paths}
    model = tr.model.to(memory_format=torch.contiguous_format).train()
    head = tr.head.train()
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-4)
    order = torch.randperm(len(folder), generator=torch.Generator().manual_seed(0)).tolist()
    t = None
    done = 0
    for step in range(steps + 1):
        if step == 1:
            t = time.perf_counter()
        idx = order[step * batch:(step + 1) * batch]
        xs, ys = [], []
        for i in idx:
            p = folder.paths[i]
            rgb = load_image(sources.get(p.name, p))
            face = pick_main_face(det.detect_rgb(rgb), rgb.shape)
            crop = align_face(rgb, face) if face is not None else load_image(p)
            xs.append(tr.preprocess(crop))
            ys.append(int(folder.labels[i]))
        loss = head(model(torch.stack(xs)), torch.tensor(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= 1:
            done += len(idx)
    return done / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backbones", nargs="+", default=["mobilefacenet", "resnet18", "efficientnet_b0"])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(2)
    rows = []
    for name in args.backbones:
        eng, tr = engine_rate(name, args.steps, args.batch, args.workers)
        nchw, _ = engine_rate(name, args.steps, args.batch, args.workers, channels_last=False)
        nai = naive_rate(tr, args.steps, args.batch)
        rows.append({"backbone": name, "engine_img_s": round(eng, 1), "engine_nchw_img_s": round(nchw, 1),
                     "naive_img_s": round(nai, 1), "ratio": round(eng / nai, 2)})
        print(rows[-1], flush=True)
    path = record("train", {"batch": args.batch, "steps": args.steps, "workers": args.workers, "input_px": 112,
                            "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
