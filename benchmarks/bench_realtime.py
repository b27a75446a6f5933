"""End-to-end FPS of the real-time loop on 640x480 video, against the seed-style loop in the same run.

Ours: detection on a half-size copy every 3rd frame, IoU tracking, all faces of a frame embedded in one
batch, frames read on a thread. Seed-style: detection on every full frame, each face embedded alone, no
tracking, frames read inline. Both draw every frame and use the seed's MTCNN settings (config.REALTIME_DETECTOR).
Clips: data/sample_video.mp4 (1 face, then 2) and a 3-face clip built from the same real faces.
Also: latency from frame read to drawn label (median, p95), where the time goes, and recognition on the
sample video (the enrolled man named, the woman not enrolled labelled Unknown) for the models that can.

    python benchmarks/bench_realtime.py [--models mobilefacenet efficientnet_b0] [--frames 216]
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata.detect import FaceDetector  # noqa: E402
from facedata.sample_data import read_video_frames  # noqa: E402
from models_definition.zoo import ModelNotFoundError, load_model  # noqa: E402
from recognition.gallery import UNKNOWN, enrol  # noqa: E402
from recognition.realtime import Recognizer, SpeedOptions, run  # noqa: E402
from recognition.recorder import FaceLog  # noqa: E402
from recognition.sources import iterate, open_source  # noqa: E402


def three_face_clip(video: Path, dest: Path, frames: int) -> Path:
    """640x480: the man and the woman side by side on top, the man mirrored below (three real faces)."""
    src = read_video_frames(video)
    both = [f for i, f in src if i >= 144][:frames]  # the sample video's two-face segment
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 480))
    for f in both:
        top = cv2.resize(f, (640, 240), interpolation=cv2.INTER_AREA)  # two faces, squeezed to half height
        man = f[:, :320]
        bottom = np.zeros((240, 640, 3), np.uint8)
        bottom[:, 160:480] = cv2.resize(man[:, ::-1], (320, 240), interpolation=cv2.INTER_AREA)
        out.write(cv2.cvtColor(np.vstack([top, bottom]), cv2.COLOR_RGB2BGR))
    out.release()
    return dest


def one_run(embedder, gallery, threshold: float, clip: Path, speed: SpeedOptions, log: Path | None = None) -> dict:
    rec = Recognizer(embedder, gallery, threshold, config.REALTIME_DETECTOR, speed)
    frames, reader = iterate(open_source(clip), speed.threaded_reader)
    try:
        s = run(frames, rec, log=FaceLog(log) if log else None)
    finally:
        if reader is not None:
            reader.close()
    faces = sum(1 for _ in open(log)) - 1 if log else None
    total = s.seconds
    return {"fps": round(s.fps, 2), "frames": s.frames, "latency_ms_median": round(s.latency_ms(50), 1),
            "latency_ms_p95": round(s.latency_ms(95), 1), "face_rows": faces,
            "share": {k: round(v / total, 3) for k, v in s.stage_seconds.items()}}


def recognition_shares(log: Path) -> dict:
    """On data/sample_video.mp4: frames 0-71 the man, 72-143 the woman, 144-215 both (man left)."""
    with open(log) as f:
        rows = list(csv.DictReader(f))
    man = [r for r in rows if int(r["frame"]) < 72 or (int(r["frame"]) >= 144 and float(r["x2"]) < 330)]
    woman = [r for r in rows if 72 <= int(r["frame"]) < 144 or (int(r["frame"]) >= 144 and float(r["x1"]) > 310)]
    man_frames = {int(r["frame"]) for r in man}
    woman_frames = {int(r["frame"]) for r in woman}
    return {"man_found_frames": len(man_frames),
            "man_named_share": round(len({int(r["frame"]) for r in man if r["name"] == "pyfeat_man"}) / max(1, len(man_frames)), 3),
            "woman_found_frames": len(woman_frames),
            "woman_unknown_share": round(len({int(r["frame"]) for r in woman if r["name"] == UNKNOWN}) / max(1, len(woman_frames)), 3)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", default=["mobilefacenet", "efficientnet_b0"])
    p.add_argument("--recognition-models", nargs="+", default=["sface", "sample-triplet"])
    p.add_argument("--frames", type=int, default=72, help="frames of the 3-face clip")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_realtime_"))
    clips = {"sample video (1-2 faces)": config.SAMPLE_VIDEO,
             "3-face clip": three_face_clip(config.SAMPLE_VIDEO, tmp / "three.mp4", args.frames)}
    gallery_detector = FaceDetector(config.DATASET_DETECTOR)
    results: dict = {"fps": {}, "recognition": {}}
    for backbone in args.models:
        # Speed does not depend on the weights: a seeded random-init model of the backbone.
        emb = load_model(backbone, {backbone: dict(random_init=backbone, seed=0)}, device="cpu")
        gallery = enrol(config.PEOPLE_FACES, emb, gallery_detector)
        for clip_name, clip in clips.items():
            row = {}
            for loop, speed in (("ours", SpeedOptions()), ("seed-style", SpeedOptions.seed_style())):
                row[loop] = one_run(emb, gallery, 0.5, clip, speed, tmp / f"{backbone}-{loop}.csv")
                print(f"{backbone:16s} {clip_name:26s} {loop:10s} {row[loop]}", flush=True)
            row["speed-up"] = round(row["ours"]["fps"] / row["seed-style"]["fps"], 2)
            results["fps"][f"{backbone} / {clip_name}"] = row
    for name in args.recognition_models:
        try:
            emb = load_model(name, config.MODELS, device="cpu")
        except ModelNotFoundError as exc:
            print(f"skipping {name}: {exc}")
            continue
        if emb.threshold is None:
            print(f"skipping {name}: no threshold")
            continue
        gallery = enrol(config.PEOPLE_FACES, emb, gallery_detector)
        log = tmp / f"{name}-recognition.csv"
        r = one_run(emb, gallery, emb.threshold, config.SAMPLE_VIDEO, SpeedOptions(), log)
        results["recognition"][name] = {"threshold": round(float(emb.threshold), 4), "fps": r["fps"],
                                        **recognition_shares(log)}
        print(name, results["recognition"][name], flush=True)
    print(record("realtime", results))


if __name__ == "__main__":
    main()
