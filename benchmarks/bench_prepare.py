"""Alignment throughput of the dataset CLI against a naive loop, on the sample identity set.

Naive: one image at a time in one process: open, detect, align, save. CLI: facedata.prepare with
worker processes. Same files, same run.
    python benchmarks/bench_prepare.py [--limit N] [--workers 2]
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
from facedata.detect import FaceDetector  # noqa: E402
from facedata.io import load_image  # noqa: E402
from facedata.prepare import list_source_files, prepare_folder  # noqa: E402


def naive(src: Path, dst: Path, files: list[Path]) -> int:
    torch.set_num_threads(2)
    det = FaceDetector()
    ok = 0
    for rel in files:
        try:
            rgb = load_image(src / rel)
        except Exception:
            continue
        faces = det.detect_rgb(rgb)
        if faces:
            out = dst / rel.with_suffix(".jpg")
            out.parent.mkdir(parents=True, exist_ok=True)
            from PIL import Image

            Image.fromarray(align_face(rgb, faces[0])).save(out, quality=95)
            ok += 1
    return ok


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--limit", type=int, default=None, help="use the first N files (default: all)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--src", type=Path, default=config.SAMPLE_IDENTITIES,
                   help="folder of <identity>/<image> (e.g. data/lfw/lfw-deepfunneled)")
    p.add_argument("--every", type=int, default=1, help="take every k-th file (a spread sample of a large set)")
    p.add_argument("--name", default="prepare", help="results/<name>.json")
    args = p.parse_args()
    src = args.src.resolve()  # the symlinks below must point at an absolute path
    files = list_source_files(src)[:: args.every][: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp, "src")
        for rel in files:  # the CLI aligns whole folders: give it exactly the same files
            (sub / rel).parent.mkdir(parents=True, exist_ok=True)
            (sub / rel).symlink_to(src / rel)
        t = time.perf_counter()
        n_naive = naive(src, Path(tmp, "naive"), files)
        naive_s = time.perf_counter() - t
        t = time.perf_counter()
        result = prepare_folder(sub, Path(tmp, "cli"), workers=args.workers, progress=False)
        cli_s = time.perf_counter() - t
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(files)
    rows = {
        "images": n,
        "naive": {"seconds": round(naive_s, 1), "img_per_s": round(n / naive_s, 2), "aligned": n_naive},
        "cli": {"seconds": round(cli_s, 1), "img_per_s": round(n / cli_s, 2), "aligned": result.counts["ok"],
                "workers": args.workers},
        "speedup": round(naive_s / cli_s, 2),
    }
    rows["source"] = str(src)
    path = record(args.name, rows)
    print(f"{n} images: naive {rows['naive']['img_per_s']} img/s ({naive_s:.1f} s), "
          f"CLI with {args.workers} workers {rows['cli']['img_per_s']} img/s ({cli_s:.1f} s, includes process start), "
          f"speed-up {rows['speedup']}x; saved {path}")


if __name__ == "__main__":
    main()
