"""Inference throughput of load_model(...) embedders: images/s at batch 64 against one face per call.

Models: random-init checkpoints of MobileFaceNet, ResNet18, EfficientNet-B0 (speed does not depend on
the weights), SFace's network in PyTorch at 112 and 64 px, ResNet18 at 64 px (the distilled students'
sizes) and the SFace reference, on real aligned sample crops. Same run, same faces.
``backbone@preset`` runs a backbone at a preprocess preset's input size (default arcface112); a ``+bf16`` suffix
runs it with bfloat16 autocast (the registry's ``"cpu_bf16": True``), to compare with the float32 row.
    python benchmarks/bench_inference.py [--faces 128] [--device cpu|cuda] [--threads 2] [--models ...]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata.io import load_image  # noqa: E402
from facedata.preprocess import get_preset  # noqa: E402
from models_definition.backbones import build_embedder  # noqa: E402
from models_definition.checkpoint import save_checkpoint  # noqa: E402
from models_definition.zoo import load_model  # noqa: E402


def rate(fn, faces, batch: int) -> float:
    fn(faces[:batch])  # warm-up
    t = time.perf_counter()
    for i in range(0, len(faces), batch):
        fn(faces[i:i + batch])
    return len(faces) / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--faces", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--models", nargs="+", default=["mobilefacenet", "resnet18", "efficientnet_b0", "sface",
                                                   "sface_mobilefacenet@sface112", "sface_mobilefacenet@sface64",
                                                   "resnet18@arcface64", "resnet18_half", "resnet18_half+bf16",
                                                   "mobilefacenet+bf16"])
    p.add_argument("--threads", type=int, default=2)  # 2 cores here; 1 when another job holds a core
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = sorted(config.SAMPLE_ALIGNED.glob("*/*.jpg"))[: args.faces]
    faces = [load_image(p) for p in paths]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = {"sface": config.MODELS["sface"]}
        for name in args.models:
            if name != "sface":
                plain, bf16 = name.removesuffix("+bf16"), name.endswith("+bf16")
                backbone, _, preset = plain.partition("@")
                pre = get_preset(preset or "arcface112")
                size = 128 if backbone in ("sface_mobilefacenet", "resnet18_half") else 512  # SFace's size; ours
                ckpt = Path(tmp) / f"{backbone}-{pre.size_px}.pt"
                save_checkpoint(ckpt, build_embedder(backbone, size, input_px=pre.size_px).eval(),
                                {"backbone": backbone, "embedding_size": size, "preprocess": pre.to_dict()})
                registry[name] = {"checkpoint": ckpt, "recipe": backbone, "cpu_bf16": bf16}
            emb = load_model(name, registry, device=args.device, batch_size=64)
            batched = rate(emb, faces, 64)
            single = rate(emb, faces, 1)
            emb.flip_tta = True
            flipped = rate(emb, faces, 64)
            rows.append({"model": name, "batch64_img_s": round(batched, 1), "one_at_a_time_img_s": round(single, 1),
                         "ratio": round(batched / single, 2), "batch64_flip_tta_img_s": round(flipped, 1)})
            print(rows[-1], flush=True)
    path = record(f"inference_{args.device}", {"faces": len(faces), "device": args.device, "threads": args.threads,
                                               "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
