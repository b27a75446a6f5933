"""SFace speed: the PyTorch conversion (sface_mobilefacenet, pretrained="sface") against the OpenCV ONNX
reference, on the same real aligned crops, on CPU with 2 threads.

- torch: batches of 64 under inference_mode, as built (BatchNorm separate, NCHW), and as the zoo runs a
  checkpoint (Conv+BN folded, channels_last);
- OpenCV DNN: one face per forward, as ``SFaceNet`` must (the graph overflows for batches > 1).

Crops: the first ``--faces`` faces MTCNN finds in data/sample_identities, ArcFace-aligned at 112 px.
The timed part is the network only (inputs preprocessed once with SFACE_PREPROCESS), chunk by chunk of
``--batch`` faces, ``--repeats`` rounds, the three interleaved; best and median chunk.
    python benchmarks/bench_sface_torch.py [--faces 256] [--repeats 5]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from facedata.align import align_face  # noqa: E402
from facedata.detect import FaceDetector  # noqa: E402
from facedata.io import load_image  # noqa: E402
from facedata.sample_data import DEFAULT_DATA_DIR  # noqa: E402
from models_definition.backbones import build_embedder, fuse_conv_bn  # noqa: E402
from models_definition.reference import SFACE_PREPROCESS, SFaceNet  # noqa: E402


def aligned_crops(n: int) -> list[np.ndarray]:
    detector = FaceDetector()
    crops = []
    for path in sorted((DEFAULT_DATA_DIR / "sample_identities").glob("*/*.jpg")):
        img = load_image(path)
        faces = detector.detect_rgb(img)
        if faces:
            crops.append(align_face(img, faces[0], method="arcface", size=112))
            if len(crops) == n:
                return crops
    raise SystemExit(f"only {len(crops)} faces found in {DEFAULT_DATA_DIR / 'sample_identities'}; run `make data`")


def rates(fns: dict, chunks: list[np.ndarray], repeats: int) -> dict[str, dict[str, float]]:
    """Images/s of each function on chunks of ``--batch`` faces: every chunk timed ``repeats`` times,
    the functions interleaved chunk by chunk so that load from other work on the machine falls on all
    alike. "best" is the fastest chunk (the figure for an idle machine), "median" the typical one."""
    for fn in fns.values():
        fn(chunks[0])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for chunk in chunks:
            for name, fn in fns.items():
                t = time.perf_counter()
                fn(chunk)
                times[name].append((time.perf_counter() - t) / len(chunk))
    return {name: {"best": 1 / min(ts), "median": 1 / float(np.median(ts))} for name, ts in times.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--faces", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)

    x = np.stack([SFACE_PREPROCESS.to_array(c) for c in aligned_crops(args.faces)])
    t = time.perf_counter()
    model = build_embedder("sface_mobilefacenet", 128, pretrained="sface").eval()
    load_s = time.perf_counter() - t
    zoo_style = fuse_conv_bn(copy.deepcopy(model)).to(memory_format=torch.channels_last)
    onnx = SFaceNet()

    def torch_forward(m, channels_last=False):
        @torch.inference_mode()
        def run(chunk: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(chunk)
            return m(t.contiguous(memory_format=torch.channels_last) if channels_last else t).numpy()
        return run

    chunks = [x[i:i + args.batch] for i in range(0, len(x), args.batch)]
    rows = rates({
        "torch_batch64": torch_forward(model),
        "torch_batch64_fused_channels_last": torch_forward(zoo_style, True),
        "opencv_onnx_one_per_forward": onnx,
    }, chunks, args.repeats)
    ours = np.concatenate([torch_forward(model)(c) for c in chunks])
    ref = onnx(x)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    print(f"{len(x)} aligned crops, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads); build with cached weights {load_s:.2f} s")
    print(f"  {'img/s':42s} {'best':>7s} {'median':>7s}")
    for name, r in rows.items():
        print(f"  {name:42s} {r['best']:7.1f} {r['median']:7.1f}")
    print(f"  cosine torch vs ONNX: min {cos.min():.7f}, mean {cos.mean():.7f}")
    path = record("sface_torch", {"faces": len(x), "batch": args.batch, "repeats": args.repeats,
                                  **{f"{k}_img_s_{stat}": round(v, 1) for k, r in rows.items() for stat, v in r.items()},
                                  "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())})
    print(f"written {path}")


if __name__ == "__main__":
    main()
