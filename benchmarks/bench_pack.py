"""Reading training data from an insightface pack (``train.rec``) against the same images in a folder.

The folder is packed first (``facedata.pack.write_pack``: the same JPEG bytes). Then, alternating folder and
pack so machine noise falls on both alike, two figures in images/s:
* loader: the training DataLoader alone (2 worker processes, seeded augmentation, preprocessing), N images;
* training: ``training.Trainer`` steps (EfficientNet-B0, softmax head, batch 64), after a warm-up epoch.

    python benchmarks/bench_pack.py [--data data/celeba_aligned] [--images 2048] [--steps 8] [--rounds 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata.pack import write_pack  # noqa: E402
from training import TrainConfig, Trainer  # noqa: E402


def _trainer(data: Path, out: Path, batch: int) -> Trainer:
    cfg = TrainConfig(data=str(data), backbone="efficientnet_b0", head="softmax", sampler="shuffle", batch_size=batch,
                      val_fraction=0.0, epochs=1, workers=2, progress=False,
                      in_memory_gb=0.0)  # what is timed is reading the pack against reading the files
    return Trainer(cfg, out)


def loader_rate(data: Path, images: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        tr = _trainer(data, Path(out), batch)
        tr.sampler.batches = max(1, images // batch)
        from training.engine import KeyedBatches

        batches = KeyedBatches(tr.sampler, 0, 1)
        loader = tr._loader(tr.train_folder, batches, augment=True)
        start, seen = time.perf_counter(), 0
        for x, _ in loader:
            seen += len(x)
        return seen / (time.perf_counter() - start)


def train_rate(data: Path, steps: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        tr = _trainer(data, Path(out), batch)
        tr.sampler.batches = steps
        tr.train_epoch()  # warm-up: worker start-up, allocator, first kernels
        tr.epoch = 1
        return tr.train_epoch()["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="aligned folder (default: the CelebA subset when "
                   "aligned, else the sample set)")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    data = args.data or (config.CELEBA_ALIGNED if config.CELEBA_ALIGNED.is_dir() else config.SAMPLE_ALIGNED)
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "train.rec"
        t0 = time.perf_counter()
        n, c = write_pack(data, rec)
        pack_s = time.perf_counter() - t0
        print(f"packed {n} images of {c} identities in {pack_s:.1f} s ({rec.stat().st_size / 1e6:.0f} MB)")
        res: dict[str, dict[str, list[float]]] = {"loader": {"folder": [], "pack": []}, "train": {"folder": [], "pack": []}}
        for _ in range(args.rounds):
            for name, src in (("folder", data), ("pack", rec)):
                res["loader"][name].append(loader_rate(src, args.images, args.batch))
                print(f"loader {name}: {res['loader'][name][-1]:.0f} img/s")
            for name, src in (("folder", data), ("pack", rec)):
                res["train"][name].append(train_rate(src, args.steps, args.batch))
                print(f"train {name}: {res['train'][name][-1]:.1f} img/s")
    summary = {k: {n: statistics.median(v) for n, v in d.items()} for k, d in res.items()}
    for k, d in summary.items():
        print(f"{k}: folder {d['folder']:.1f} img/s, pack {d['pack']:.1f} img/s, pack/folder {d['pack'] / d['folder']:.2f}x")
    print(record("pack", {"data": str(data), "images": n, "identities": c, "pack_seconds": pack_s,
                          "rounds": res, "median": summary}))


if __name__ == "__main__":
    main()
