"""Detection time on a 640x480 frame (median of repeated runs), per detector setting.

Baseline in the same run: facenet-pytorch's MTCNN called directly on a PIL image with its defaults.
    python benchmarks/bench_detect.py [--repeats 30]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata.detect import DetectorConfig, FaceDetector  # noqa: E402
from facedata.sample_data import read_video_frames  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(2)
    frames = dict(read_video_frames(config.SAMPLE_VIDEO, [30, 180]))  # one face; two faces
    from facenet_pytorch import MTCNN

    naive = MTCNN(keep_all=True)
    settings = {
        "facedata default (min face 20 px)": DetectorConfig(),
        "real-time config (min face 60 px, seed thresholds)": config.REALTIME_DETECTOR,
        "real-time config on a 0.5x copy (detect_max_side 320)": DetectorConfig(
            thresholds=(0.65, 0.75, 0.85), min_face_size_px=60, detect_max_side_px=320),
    }
    rows = []
    for idx, frame in frames.items():
        pil = Image.fromarray(frame)
        base = median_ms(lambda: naive.detect(pil, landmarks=True), args.repeats)
        rows.append({"frame": idx, "setting": "baseline: MTCNN(keep_all=True).detect(PIL)", "median_ms": round(base, 1), "speedup": 1.0})
        for name, cfg in settings.items():
            det = FaceDetector(cfg)
            n = len(det.detect_rgb(frame))
            ms = median_ms(lambda: det.detect_rgb(frame), args.repeats)
            rows.append({"frame": idx, "setting": name, "faces": n, "median_ms": round(ms, 1), "speedup": round(base / ms, 2)})
    path = record("detect", {"frame_size": "640x480", "repeats": args.repeats, "rows": rows})
    print("| frame | setting | faces | median ms | vs baseline |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['frame']} | {r['setting']} | {r.get('faces', '')} | {r['median_ms']} | {r['speedup']}x |")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
