"""Embedding throughput of the evaluation path on aligned LFW crops: batched and cached
(``id_rate.embeddings.embed_paths``, what ``make lfw`` runs) against a naive loop that reads and embeds
one face per call, same crops, same run. Alignment is measured by ``bench_prepare.py --src``.

    python benchmarks/bench_lfw.py [--n 512] [--models sface random-init]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

import config  # noqa: E402
from facedata.io import load_image  # noqa: E402
from id_rate.embeddings import embed_paths  # noqa: E402
from models_definition.zoo import load_model  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=512, help="aligned crops (a spread sample of the folder)")
    p.add_argument("--models", nargs="+", default=["sface", "random-init"])
    p.add_argument("--aligned", type=Path, default=config.LFW_ALIGNED)
    args = p.parse_args()
    torch.set_num_threads(2)
    paths = sorted(args.aligned.glob("*/*.jpg"))
    if not paths:
        sys.exit(f"{args.aligned}: no aligned LFW crops; run `make lfw` first")
    paths = paths[:: max(1, len(paths) // args.n)][: args.n]
    rows = {"images": len(paths), "models": {}}
    for name in args.models:
        emb = load_model(name, config.MODELS, device="cpu")
        t = time.perf_counter()
        naive = np.stack([emb([load_image(q)])[0] for q in paths])  # read + embed one face per call
        naive_s = time.perf_counter() - t
        t = time.perf_counter()
        ours = embed_paths(emb, paths, None, progress=False)  # batched (the cache is off: cost of a first run)
        ours_s = time.perf_counter() - t
        assert np.allclose(naive, ours, atol=1e-4), name
        rows["models"][name] = {"naive_img_per_s": round(len(paths) / naive_s, 1),
                                "batched_img_per_s": round(len(paths) / ours_s, 1),
                                "speedup": round(naive_s / ours_s, 2)}
        print(f"{name}: naive {rows['models'][name]['naive_img_per_s']} img/s, batched "
              f"{rows['models'][name]['batched_img_per_s']} img/s ({rows['models'][name]['speedup']}x)")
    print(f"saved {record('lfw_embedding', rows)}")


if __name__ == "__main__":
    main()
