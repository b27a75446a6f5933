"""MTCNN against YuNet (facedata.detect.DETECTORS): time a 640x480 frame, LFW and CFP-FP accuracy through each
detector's alignment, and the live loop on `make demo`'s video, each part in one run for both detectors.

    python benchmarks/bench_detectors.py                   # all three parts
    python benchmarks/bench_detectors.py --parts speed live --repeats 40 --live-runs 2

* speed: median ms a frame (frames 30 and 180 of data/sample_video.mp4: one face, two faces), the two detectors
  timed in turn on every repeat (a busy shared CPU slows both alike; the fastest call is shown too, the best
  estimate of an idle machine's time while others run), at the dataset settings on the whole frame
  and at the live loop's (config.REALTIME_DETECTOR on the 0.5x copy SpeedOptions detects on);
* accuracy: `python -m id_rate.benchmark --sets lfw cfp-fp` with config.DEFAULT_MODEL on the folders each detector
  aligned (MTCNN: config.LFW_ALIGNED / CFP_ALIGNED; YuNet: data/lfw_aligned_yunet / data/cfp_aligned_yunet, made by
  `python -m facedata.prepare ... --detector yunet` with the Makefile's fallbacks), with how each folder's crops
  were found (its manifest's method column);
* live: `real-time-recognition.py -cam data/sample_video.mp4 --no-display` as `make demo` runs it, once per
  detector per --live-runs (in turn), everything else default: FPS from its summary, and the names of each frame
  from its log compared between the detectors.

Torch and OpenCV at 2 threads. Writes benchmarks/results/detectors-<part>.json and prints markdown tables.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, record  # noqa: E402

import config  # noqa: E402
from facedata.detect import FaceDetector  # noqa: E402
from facedata.sample_data import read_video_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DETECTOR_NAMES = ("mtcnn", "yunet")
ALIGNED = {  # (LFW, CFP) aligned folders per detector
    "mtcnn": (config.LFW_ALIGNED, config.CFP_ALIGNED),
    "yunet": (config.DATA_DIR / "lfw_aligned_yunet", config.DATA_DIR / "cfp_aligned_yunet"),
}


def speed(repeats: int) -> list[dict]:
    frames = dict(read_video_frames(config.SAMPLE_VIDEO, [30, 180]))  # one face; two faces
    settings = {
        "dataset settings, whole frame": lambda name: replace(config.DATASET_DETECTOR, backend=name),
        "live settings (REALTIME_DETECTOR, 0.5x copy)": lambda name: replace(config.REALTIME_DETECTOR, backend=name,
                                                                             detect_scale=0.5),
    }
    rows = []
    for idx, frame in frames.items():
        for label, make in settings.items():
            dets = {n: FaceDetector(make(n)) for n in DETECTOR_NAMES}
            faces = {n: len(d.detect_rgb(frame)) for n, d in dets.items()}
            for d in dets.values():  # warm-up
                d.detect_rgb(frame)
            times: dict[str, list[float]] = {n: [] for n in dets}
            for _ in range(repeats):
                for n, d in dets.items():  # in turn: a load spike slows both
                    t = time.perf_counter()
                    d.detect_rgb(frame)
                    times[n].append((time.perf_counter() - t) * 1000)
            ms = {n: statistics.median(v) for n, v in times.items()}
            best = {n: min(v) for n, v in times.items()}  # the least disturbed call: a busy machine's best estimate
            rows += [{"frame": idx, "setting": label, "detector": n, "faces": faces[n], "median_ms": round(ms[n], 2),
                      "min_ms": round(best[n], 2), "mtcnn_over_this": round(ms["mtcnn"] / ms[n], 2),
                      "mtcnn_over_this_min": round(best["mtcnn"] / best[n], 2)} for n in dets]
    return rows


def methods(folder: Path) -> dict[str, int]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as fh:
        return dict(Counter(r["method"] or r["status"] for r in csv.DictReader(fh)))


def _manifest_landmarks(folder: Path, method: str) -> dict[str, np.ndarray]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as fh:
        return {r["source"]: np.array(r["landmarks"].split(), np.float32).reshape(5, 2)
                for r in csv.DictReader(fh) if r["status"] == "ok" and r["method"] == method}


def landmark_offsets(mtcnn_folder: Path, yunet_folder: Path) -> dict:
    """Where MTCNN's five points lie from YuNet's on the images both detectors found, in the 112-px ArcFace
    template's pixels (both mapped by the similarity that aligns YuNet's points): the mean is the detectors'
    systematic difference, the std their per-image disagreement."""
    from facedata.align import ARCFACE_TEMPLATE_112

    a, b = _manifest_landmarks(mtcnn_folder, "mtcnn"), _manifest_landmarks(yunet_folder, "yunet")
    offsets = []
    for k in sorted(set(a) & set(b)):
        m, _ = cv2.estimateAffinePartial2D(b[k], ARCFACE_TEMPLATE_112, method=cv2.LMEDS)
        if m is not None:
            offsets.append((a[k] - b[k]) @ m[:, :2].T)  # a difference of points: the similarity's linear part
    off = np.stack(offsets)
    return {"images": len(off), "mean_px": off.mean(0).round(2).tolist(), "std_px": off.std(0).round(2).tolist(),
            "median_distance_px": np.median(np.linalg.norm(off, axis=2), axis=0).round(2).tolist()}


def accuracy(bootstrap: int, detectors: list[str]) -> list[dict]:
    from id_rate.benchmark import main as benchmark

    rows = []
    for name in detectors:
        lfw, cfp = ALIGNED[name]
        out = RESULTS / f"detectors-{name}"
        argv = ["--models", config.DEFAULT_MODEL, "--sets", "lfw", "cfp-fp", "--lfw-dir", str(lfw), "--cfp-dir",
                str(cfp), "--bootstrap", str(bootstrap), "--out", str(out), "--no-progress"]
        print("python -m id_rate.benchmark " + " ".join(argv), file=sys.stderr)
        if benchmark(argv) != 0:
            raise SystemExit(f"id_rate.benchmark failed for {name}")
        cells = json.loads((out / "results.json").read_text())["models"][config.DEFAULT_MODEL]
        for s, folder, mtcnn_folder in (("lfw", lfw, ALIGNED["mtcnn"][0]), ("cfp-fp", cfp, ALIGNED["mtcnn"][1])):
            c = cells[s]
            rows.append({"detector": name, "set": s, "folder": str(folder), "acc_mean": c.get("accuracy_mean"),
                         "acc_std": c.get("accuracy_std"), "auc": c.get("auc"), "cell": c, "methods": methods(folder),
                         "landmarks_vs_mtcnn": landmark_offsets(mtcnn_folder, folder) if name != "mtcnn" else None})
    return rows


def _names_by_frame(log: Path) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    with open(log, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            out.setdefault(int(r["frame"]), []).append(r["name"])
    return {k: sorted(v) for k, v in out.items()}


# The live runs: today's loop (MTCNN, the shipped model on PyTorch), YuNet, and YuNet with the shipped model's int8
# ONNX export on onnxruntime (config.MODELS' "-int8" entry; `make deploy` exports it), when that file is there.
LIVE_CONFIGS = {"mtcnn": ["--detector", "mtcnn"], "yunet": ["--detector", "yunet"],
                "yunet + int8 onnx": ["--detector", "yunet", f"-model_name={config.DEFAULT_MODEL}-int8"]}


def live(runs: int) -> dict:
    configs = {k: v for k, v in LIVE_CONFIGS.items()
               if "int8" not in k or Path(config.MODELS.get(f"{config.DEFAULT_MODEL}-int8", {}).get("onnx", "")).is_file()}
    results: dict[str, list[dict]] = {n: [] for n in configs}
    logs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            for name, extra in configs.items():
                base = Path(tmp) / f"{name.replace(' ', '_').replace('+', '')}-{i}"
                cmd = [sys.executable, str(ROOT / "real-time-recognition.py"), "-cam", str(config.SAMPLE_VIDEO),
                       "-output_path", f"{base}.gif", "--no-display", "--log", f"{base}.csv", "--summary",
                       f"{base}.json", *extra, "--quiet"]
                print(" ".join(cmd[1:]), file=sys.stderr)
                subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
                s = json.loads(Path(f"{base}.json").read_text())
                results[name].append({k: s[k] for k in ("fps", "frames", "frames_with_faces", "frames_unknown",
                                                        "frames_by_name", "latency_ms_median", "stage_seconds")})
                logs[name] = Path(f"{base}.csv")
        names = {n: _names_by_frame(p) for n, p in logs.items()}
        frames = sorted(set().union(*names.values()))
        # each configuration's names per frame against today's loop (MTCNN)
        differ = {n: [f for f in frames if names["mtcnn"].get(f) != names[n].get(f)] for n in names if n != "mtcnn"}
        diffs = {n: {f: {"mtcnn": names["mtcnn"].get(f, []), n: names[n].get(f, [])} for f in fs}
                 for n, fs in differ.items()}
    return {"runs": results, "frames_compared": len(frames),
            "frames_with_other_names": {n: len(fs) for n, fs in differ.items()}, "differences": diffs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", choices=("speed", "accuracy", "live"), default=["speed", "accuracy", "live"])
    p.add_argument("--repeats", type=int, default=30, help="timed calls per detector and setting")
    p.add_argument("--bootstrap", type=int, default=200, help="id_rate.benchmark's resamples (95%% intervals)")
    p.add_argument("--accuracy-detectors", nargs="+", choices=DETECTOR_NAMES, default=list(DETECTOR_NAMES),
                   help="whose aligned folders the accuracy part scores (one whose folders are still being made: later)")
    p.add_argument("--live-runs", type=int, default=1, help="live-script runs per detector")
    args = p.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    command = "python benchmarks/bench_detectors.py " + " ".join(sys.argv[1:])
    saved = []  # one results file a part (detectors-speed.json, ...): parts run at different times keep theirs
    if "speed" in args.parts:
        rows = speed(args.repeats)
        saved.append(record("detectors-speed", {"command": command, "repeats": args.repeats, "rows": rows}))
        print("| frame | setting | detector | faces | median ms | MTCNN / this (median) | min ms | MTCNN / this (min) |\n"
              "|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['frame']} | {r['setting']} | {r['detector']} | {r['faces']} | {r['median_ms']} | "
                  f"{r['mtcnn_over_this']}x | {r['min_ms']} | {r['mtcnn_over_this_min']}x |")
    if "accuracy" in args.parts:
        rows = accuracy(args.bootstrap, args.accuracy_detectors)
        saved.append(record("detectors-accuracy", {"command": command, "model": config.DEFAULT_MODEL, "rows": rows}))
        print(f"\n| detector | set | 10-fold acc. % ({config.DEFAULT_MODEL}) | AUC | crops by method |\n|---|---|---|---|---|")
        for r in rows:
            found = ", ".join(f"{k} {v}" for k, v in sorted(r["methods"].items()))
            print(f"| {r['detector']} | {r['set']} | {100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f} | "
                  f"{r['auc']:.4f} | {found} |")
        by = {(r["detector"], r["set"]): r for r in rows}
        for s in ("lfw", "cfp-fp"):  # the same pairs and folds through both: per-fold differences are paired
            if ("mtcnn", s) in by and ("yunet", s) in by:
                d = 100 * (np.array(by["mtcnn", s]["cell"]["fold_accuracy"]) - np.array(by["yunet", s]["cell"]["fold_accuracy"]))
                print(f"\n{s}: MTCNN minus YuNet per fold (points): {' '.join(f'{v:+.2f}' for v in d)}; mean {d.mean():+.2f}, "
                      f"MTCNN ahead in {(d > 0).sum()} of {len(d)} folds")
        print("\nMTCNN's points minus YuNet's on the images both found, in 112-px template pixels (x, y), mean (std); "
              "median distance\n\n| set | images | left eye | right eye | nose | mouth left | mouth right |\n"
              "|---|---|---|---|---|---|---|")
        for r in rows:
            lo = r["landmarks_vs_mtcnn"]
            if lo:
                cells = [f"{m[0]:+.1f}, {m[1]:+.1f} ({s[0]:.1f}, {s[1]:.1f}); {d:.1f}"
                         for m, s, d in zip(lo["mean_px"], lo["std_px"], lo["median_distance_px"])]
                print(f"| {r['set']} | {lo['images']} | " + " | ".join(cells) + " |")
    if "live" in args.parts:
        res = live(args.live_runs)
        saved.append(record("detectors-live", {"command": command, **res}))
        print("\n| detector | run | FPS | latency median ms | frames | with a face | with Unknown | named frames | "
              "detect s | embed s |\n|---|---|---|---|---|---|---|---|---|---|")
        for name, runs in res["runs"].items():
            for i, r in enumerate(runs):
                named = ", ".join(f"{k} {v}" for k, v in r["frames_by_name"].items())
                st = r["stage_seconds"]
                print(f"| {name} | {i + 1} | {r['fps']} | {r['latency_ms_median']} | {r['frames']} | "
                      f"{r['frames_with_faces']} | {r['frames_unknown']} | {named} | {st.get('detect', '-')} | "
                      f"{st.get('embed', '-')} |")
        for n, count in res["frames_with_other_names"].items():
            shown = "; ".join(f"{f}: {d['mtcnn']} vs {d[n]}" for f, d in list(res["differences"][n].items())[:20])
            print(f"\nnames per frame, {n} against mtcnn (last run of each): {count} of {res['frames_compared']} "
                  "frames differ" + (f": {shown}" if shown else ""))
    print("saved " + ", ".join(map(str, saved)))


if __name__ == "__main__":
    main()
