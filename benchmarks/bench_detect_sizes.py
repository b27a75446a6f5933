"""How MTCNN's time grows with photo size, and what ``detect_max_side_px`` buys, on CFP's photos (66 to 2,270 px).

    python benchmarks/bench_detect_sizes.py [--per-bin 12] [--cfp data/cfp]

Photos are drawn (seeded) from each size bin of the longer side; each is detected once per setting after a
warm-up, in one run, the settings taking turns at going first, so the ratios between settings hold on a
noisy machine. Every setting detects on a copy
padded by 0.3 of the longer side (CFP's photos end at the face; ``--pad 0.3``). Baseline: ``detect_max_side_px``
1280, prepare's default; against it, 640 (what `make benchmarks` aligns CFP with) and 480. Also: whether each setting still finds the face the
default finds (box IoU >= 0.5).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata.detect import DetectorConfig, FaceDetector, pick_main_face  # noqa: E402
from facedata.io import image_files, load_image  # noqa: E402
from facedata.prepare import box_iou  # noqa: E402

BINS = ((0, 250), (250, 500), (500, 1000), (1000, 4000))  # longer side, pixels
SETTINGS = {"max side 1280 (default)": 1280, "max side 640": 640, "max side 480": 480}
PAD = 0.3  # CFP's photos end at the face: detected on a padded copy, as `make benchmarks` aligns them


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cfp", type=Path, default=config.CFP_ROOT)
    p.add_argument("--per-bin", type=int, default=12)
    args = p.parse_args()
    torch.set_num_threads(2)
    images = args.cfp / "Data" / "Images"
    if not images.is_dir():
        sys.exit(f"error: {images} not found; run `python -m facedata.fetch cfp` first")
    from PIL import Image

    files = sorted(image_files(images, recursive=True))
    sides = np.array([max(Image.open(f).size) for f in files])
    rng = np.random.default_rng(0)
    detectors = {k: FaceDetector(DetectorConfig(detect_max_side_px=v, pad_frac=PAD)) for k, v in SETTINGS.items()}
    for det in detectors.values():  # warm-up
        det.detect_rgb(load_image(files[0]))
    rows = []
    for lo, hi in BINS:
        idx = np.flatnonzero((sides >= lo) & (sides < hi))
        if not len(idx):
            continue
        pick = rng.choice(idx, min(args.per_bin, len(idx)), replace=False)
        times = {k: [] for k in SETTINGS}
        same = {k: 0 for k in SETTINGS}
        for n, i in enumerate(pick):
            rgb = load_image(files[i])
            found = {}
            order = list(detectors)[n % len(detectors):] + list(detectors)[:n % len(detectors)]  # no setting always first
            for k in order:
                t = time.perf_counter()
                found[k] = pick_main_face(detectors[k].detect_rgb(rgb), rgb.shape)
                times[k].append((time.perf_counter() - t) * 1000)
            ref = found["max side 1280 (default)"]
            for k, face in found.items():
                same[k] += int(ref is not None and face is not None and box_iou(ref.box, face.box) >= 0.5)
        base = statistics.median(times["max side 1280 (default)"])
        for k in SETTINGS:
            ms = statistics.median(times[k])
            rows.append({"longer side px": f"{lo}-{hi}", "photos in set": int(len(idx)), "timed": int(len(pick)),
                         "setting": k, "median ms": round(ms, 1), "speed-up vs default": round(base / ms, 2),
                         "same face as default": f"{same[k]}/{len(pick)}"})
    for r in rows:
        print(" | ".join(str(v) for v in r.values()))
    print(record("detect_sizes", {"rows": rows, "per_bin": args.per_bin, "photos": len(files), "pad_frac": PAD}))


if __name__ == "__main__":
    main()
