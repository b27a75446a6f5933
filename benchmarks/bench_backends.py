"""Embedding backends of one model in one run: faces/s per core, one face at a time and batched.

The shipped model (config.DEFAULT_MODEL) under PyTorch float32, PyTorch bfloat16 autocast, onnxruntime float32 and
onnxruntime int8 (static, calibrated on sample faces that are not the timed ones), and SFace under OpenCV DNN (the
reference), each with 1 thread (per core) and 2 threads, on the same real aligned crops. The ONNX models are made
here with the exporter's own functions (``models_definition.export``); the cosine of each backend's embeddings to
PyTorch float32 on the timed faces is printed beside its speed.
    python benchmarks/bench_backends.py [--faces 256] [--threads 1 2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record  # noqa: E402

import config  # noqa: E402
from facedata.io import image_files, load_image  # noqa: E402
from models_definition.export import onnx_embedder, quantize_int8, to_onnx, torch_network  # noqa: E402
from models_definition.zoo import load_model  # noqa: E402


def rate(fn, faces, batch: int, rounds: int) -> float:
    """Best of ``rounds`` passes over ``faces`` (faces/s): the machine is shared, the best pass is the least
    disturbed one."""
    fn(faces[:batch])  # warm-up
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(0, len(faces), batch):
            fn(faces[i:i + batch])
        best = max(best, len(faces) / (time.perf_counter() - t))
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=config.DEFAULT_MODEL)
    p.add_argument("--faces", type=int, default=256)
    p.add_argument("--calibration", type=int, default=256)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    paths = image_files(config.SAMPLE_ALIGNED, recursive=True)
    if len(paths) < args.faces + 16:
        sys.exit(f"{config.SAMPLE_ALIGNED}: {len(paths)} aligned faces; `make demo` aligns the sample set")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(paths))
    timed = [load_image(paths[i]) for i in order[:args.faces]]
    calib = [load_image(paths[i]) for i in order[args.faces:args.faces + args.calibration]]
    torch.set_num_threads(2)
    ref = load_model(args.model, config.MODELS, device="cpu", backend="torch")
    fp32 = to_onnx(torch_network(ref), ref.preprocess.size_px)
    int8 = quantize_int8(fp32, calib, ref)
    ref_emb = ref(timed)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)  # the onnxruntime sessions below take torch's thread count
        cv2.setNumThreads(threads)  # SFace's OpenCV DNN
        backends = {
            "PyTorch float32": load_model(args.model, config.MODELS, device="cpu", backend="torch"),
            "PyTorch bfloat16": load_model(args.model, {args.model: dict(config.MODELS[args.model], cpu_bf16=True)},
                                           device="cpu", backend="torch"),
            "onnxruntime float32": onnx_embedder(fp32, ref, "onnx-fp32"),
            "onnxruntime int8": onnx_embedder(int8, ref, "onnx-int8"),
            "SFace (OpenCV DNN, int8)": load_model("sface", config.MODELS, device="cpu"),
        }
        for name, emb in backends.items():
            batched, single = rate(emb, timed, 64, args.rounds), rate(emb, timed, 1, args.rounds)
            cos = float(np.einsum("ij,ij->i", emb(timed), ref_emb).min()) if not name.startswith("SFace") else None
            rows.append({"backend": name, "threads": threads, "batch64_faces_s": round(batched, 1),
                         "single_faces_s": round(single, 1), "batch64_per_core": round(batched / threads, 1),
                         "single_per_core": round(single / threads, 1),
                         "min_cos_to_torch_fp32": None if cos is None else round(cos, 6)})
            print(rows[-1], flush=True)
    print(f"\n{machine()}; {args.model}; {len(timed)} faces; best of {args.rounds} passes\n")
    print("| backend | threads | batch 64 faces/s | one at a time faces/s | per core (batch / single) | "
          "min cos to PyTorch fp32 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cos = "-" if r["min_cos_to_torch_fp32"] is None else f"{r['min_cos_to_torch_fp32']:.6f}"
        print(f"| {r['backend']} | {r['threads']} | {r['batch64_faces_s']} | {r['single_faces_s']} | "
              f"{r['batch64_per_core']} / {r['single_per_core']} | {cos} |")
    print(f"\nwrote {record('backends', {'model': args.model, 'faces': len(timed), 'rows': rows})}")


if __name__ == "__main__":
    main()
