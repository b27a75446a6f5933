"""Score models with the seed's ID-rate protocol and write the table and plots.

    python -m id_rate --models sface sample-triplet --data data/sample_aligned --query-ids 3 --distractor-ids 150
    python -m id_rate --embeddings mine.npz other.npz

``--data``: an aligned folder; a seeded identity-disjoint split gives query identities (>= 2 images) and
distractor identities. ``--embeddings``: ``.npz`` files with ``embeddings`` (N x D) and ``labels`` (N),
optionally ``split`` ("query" / "distractor" per row; else the same seeded split by label) and ``paths``.
Output in ``--out`` (default ``id_rate/results``): table.md, table.csv, results.json, roc.png.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facedata.datasets import identity_disjoint_split, scan_face_folder
from facedata.errors import FaceDataError

from .embeddings import embed_paths
from .metrics import MetricError
from .protocols import IdRateResult, idrate
from .report import write_report

ROOT = Path(__file__).resolve().parent


def _split_labels(labels: np.ndarray, n_query: int | None, n_dist: int | None, seed: int) -> np.ndarray:
    """'query' / 'distractor' per row by identity: seeded choice of query identities among those with >= 2 rows."""
    ids, counts = np.unique(labels, return_counts=True)
    multi = ids[counts >= 2]
    rng = np.random.default_rng(seed)
    nq = len(multi) if n_query is None else n_query
    if nq > len(multi):
        raise MetricError(f"{nq} query identities need >= 2 images each; only {len(multi)} identities have that")
    q = rng.choice(multi, nq, replace=False)
    rest = np.setdiff1d(ids, q)
    d = rest if n_dist is None else rng.choice(rest, min(n_dist, len(rest)), replace=False)
    return np.where(np.isin(labels, q), "query", np.where(np.isin(labels, d), "distractor", "unused"))


def score_npz(path: Path, args: argparse.Namespace) -> IdRateResult:
    if not path.is_file():
        raise MetricError(f"{path}: embeddings file not found")
    z = np.load(path, allow_pickle=False)
    for key in ("embeddings", "labels"):
        if key not in z:
            raise MetricError(f"{path}: no {key!r} array (found {sorted(z.files)}); expected embeddings (N x D) and labels (N)")
    emb, labels = z["embeddings"], z["labels"]
    if len(emb) != len(labels):
        raise MetricError(f"{path}: {len(emb)} embeddings but {len(labels)} labels")
    split = z["split"].astype(str) if "split" in z else _split_labels(labels, args.query_ids, args.distractor_ids, args.seed)
    return idrate(emb[split == "query"], labels[split == "query"], emb[split == "distractor"], device=args.device)


def score_model(name: str, args: argparse.Namespace) -> IdRateResult:
    from models_definition.zoo import load_model

    folder = scan_face_folder(args.data)
    held = identity_disjoint_split(folder, args.query_ids, args.distractor_ids, args.seed,
                                   args.query_images, args.distractor_images)
    emb = load_model(name, device=args.device, flip_tta=args.flip)
    import config

    ckpt = config.MODELS[name].get("checkpoint")
    cache = None if args.no_cache else config.DATA_DIR / "cache" / "embeddings"
    q = embed_paths(emb, held.query.paths, cache, ckpt, progress=not args.no_progress)
    d = embed_paths(emb, held.distractor.paths, cache, ckpt, progress=not args.no_progress)
    return idrate(q, held.query.labels, d, device=args.device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m id_rate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--models", nargs="+", help="names in config.MODELS")
    src.add_argument("--embeddings", nargs="+", type=Path, help=".npz files (embeddings, labels[, split, paths])")
    p.add_argument("--data", type=Path, help="aligned face folder (with --models)")
    p.add_argument("--protocol", default="idrate", choices=["idrate"])
    p.add_argument("--query-ids", type=int, default=None, help="query identities (default: 50 with --data)")
    p.add_argument("--distractor-ids", type=int, default=None, help="distractor identities (default: 50 with --data)")
    p.add_argument("--query-images", type=int, default=None, help="images per query identity (seed: 6)")
    p.add_argument("--distractor-images", type=int, default=None, help="images per distractor identity (seed: 60)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        results: dict[str, IdRateResult] = {}
        if args.embeddings:
            for path in args.embeddings:
                results[path.stem] = score_npz(path, args)
        else:
            if args.data is None:
                raise MetricError("--models needs --data (an aligned face folder)")
            args.query_ids = 50 if args.query_ids is None else args.query_ids
            args.distractor_ids = 50 if args.distractor_ids is None else args.distractor_ids
            for name in args.models:
                results[name] = score_model(name, args)
        written = write_report(results, args.out, {k: str(v) for k, v in vars(args).items()})
    except (MetricError, FaceDataError, KeyError, FileNotFoundError) as exc:
        print(f"id_rate: error: {exc}", file=sys.stderr)
        return 2
    print((args.out / "table.md").read_text())
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
