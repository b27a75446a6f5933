"""Score models on the same data with the same protocols; write the table, a JSON and the plots.

    python -m id_rate --models random-init sample-triplet sface --data data/sample_aligned --query-ids 3 --distractor-ids 150
    python -m id_rate --embeddings mine.npz other.npz
    python -m id_rate --models sface --lfw-pairs pairs.txt --lfw-dir data/lfw_aligned   # adds LFW 10-fold

``--data``: an aligned folder; a seeded identity-disjoint split gives query identities (>= 2 images) and
distractor identities. ``--embeddings``: ``.npz`` files with ``embeddings`` (N x D) and ``labels`` (N),
optionally ``split`` ("query" / "distractor" per row; else a seeded split by label) and ``paths``.

Per model: the seed's ID-rate table (TPR at FPR 0.5 ... 0.001, exact ROC-AUC, with ``--bootstrap N``
95% intervals by resampling identities), open-set identification (gallery = the first image of each
query identity; mated probes = its other images; non-mated = distractors: rank-1, DIR at FPIR 0.1),
and verification at a fixed threshold chosen on half of the query identities and reported on the
other half. Output in ``--out`` (default ``id_rate/results``): table.md, table.csv, results.json,
roc.png, similarity.png, accuracy_threshold.png, tsne.png. ``--write-thresholds FPR`` stores each
model's cosine threshold at that FPR in ``id_rate/thresholds.json``, which ``config.MODELS`` reads.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facedata.datasets import choose_open_set_identities, identity_disjoint_split, scan_face_folder
from facedata.errors import FaceDataError
from facedata.io import write_bytes_atomic

from .metrics import MetricError, accuracy_curve, best_threshold, pair_distance, verification_at_threshold
from .protocols import (IdRateResult, bootstrap_idrate, check_embeddings, idrate, open_set_identification,
                        pair_verification)
from .report import plot_accuracy_vs_threshold, plot_similarity, plot_tsne, write_report

ROOT = Path(__file__).resolve().parent
THRESHOLDS = ROOT / "thresholds.json"


@dataclass
class EvalSet:
    query: np.ndarray
    query_labels: np.ndarray
    distractors: np.ndarray
    distractor_labels: np.ndarray


def _split_labels(labels: np.ndarray, n_query: int | None, n_dist: int | None, seed: int) -> np.ndarray:
    """'query' / 'distractor' / 'unused' per row: the identities a folder of these labels would hold out."""
    q, d, _ = choose_open_set_identities(labels, n_query, n_dist, seed, where="the embeddings file")
    return np.where(np.isin(labels, q), "query", np.where(np.isin(labels, d), "distractor", "unused"))


def load_npz(path: Path, args: argparse.Namespace) -> EvalSet:
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
    q, d = split == "query", split == "distractor"
    return EvalSet(emb[q], labels[q], emb[d], labels[d])


def embed_model(name: str, folder, held, args: argparse.Namespace) -> tuple[EvalSet, object]:
    """One model's embeddings of the split's query and distractor images (every model gets the same split)."""
    import config
    from models_definition.zoo import load_model

    from .embeddings import embed_paths

    emb = load_model(name, device=args.device, flip_tta=args.flip)
    ckpt = config.MODELS[name].get("checkpoint")
    cache = None if args.no_cache else config.DATA_DIR / "cache" / "embeddings"
    q = embed_paths(emb, held.query.paths, cache, ckpt, progress=not args.no_progress)
    d = embed_paths(emb, held.distractor.paths, cache, ckpt, progress=not args.no_progress)
    names = np.array(folder.classes)
    return EvalSet(q, names[held.query.labels], d, names[held.distractor.labels]), emb


def open_set(s: EvalSet):
    """Gallery: the first image of each query identity; mated probes: its others; non-mated: distractors."""
    ql = s.query_labels.astype(str)
    order = np.argsort(ql, kind="stable")
    ql, q = ql[order], s.query[order]
    first = np.r_[True, ql[1:] != ql[:-1]]
    probes = np.concatenate([q[~first], s.distractors])
    labels = np.concatenate([ql[~first], np.full(len(s.distractors), "\0non-mated")])
    return open_set_identification(q[first], ql[first], probes, labels, fpir=(0.1, 0.01))


def fixed_threshold(s: EvalSet, seed: int) -> tuple[dict, tuple[np.ndarray, np.ndarray, float]]:
    """Choose the best-accuracy cosine-distance threshold on one half of the query images and report
    accuracy / precision / recall / F1 on the other half (the seed chose it on its test split). With >= 4
    query identities the halves hold different identities; with fewer, each identity's images are halved."""
    q = check_embeddings(s.query, "query embeddings")
    ids = np.unique(s.query_labels)
    rng = np.random.default_rng(seed)
    if len(ids) >= 4:
        in_a = np.isin(s.query_labels, rng.choice(ids, len(ids) // 2, replace=False))
    else:
        in_a = np.zeros(len(q), bool)
        for i in ids:
            rows = rng.permutation(np.flatnonzero(s.query_labels == i))
            in_a[rows[::2]] = True

    def pairs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, lab = q[mask], s.query_labels[mask]
        i, j = np.triu_indices(len(e), 1)
        return pair_distance(e[i], e[j], "cosine"), lab[i] == lab[j]

    da, ya = pairs(in_a)
    db, yb = pairs(~in_a)
    if not (ya.any() and (~ya).any() and yb.any() and (~yb).any()):
        raise MetricError("fixed-threshold verification needs same- and different-identity pairs on both halves")
    t, _ = best_threshold(da, ya)
    tb, accb = accuracy_curve(db, yb)
    return verification_at_threshold(db, yb, t), (tb, accb, t)


def scores_for_plot(s: EvalSet) -> dict[str, np.ndarray]:
    q = check_embeddings(s.query, "query")
    i, j = np.triu_indices(len(q), 1)
    sim = (q @ q.T)[i, j]
    same = s.query_labels[i] == s.query_labels[j]
    out = {"pos": sim[same], "neg_qq": sim[~same]}
    if len(s.distractors):
        d = check_embeddings(s.distractors, "distractors")
        # a sample for the histogram: every query against the first distractors, about 200,000 scores
        # (the full product is what the protocol streams; a plot needs no 10^10 scores in memory)
        out["neg_qd"] = (q @ d[: max(1, 200_000 // len(q))].T).ravel()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m id_rate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--models", nargs="+", help="names in config.MODELS")
    src.add_argument("--embeddings", nargs="+", type=Path, help=".npz files (embeddings, labels[, split, paths])")
    p.add_argument("--data", type=Path, help="aligned face folder (with --models)")
    p.add_argument("--query-ids", type=int, default=None, help="query identities (default: 50 with --data)")
    p.add_argument("--distractor-ids", type=int, default=None, help="distractor identities (default: 50 with --data)")
    p.add_argument("--query-images", type=int, default=None, help="images per query identity (seed: 6)")
    p.add_argument("--distractor-images", type=int, default=None, help="images per distractor identity (seed: 60)")
    p.add_argument("--seed", type=int, default=42, help="the split seed (42: the one training runs hold out)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="N", help="95%% intervals from N identity resamples")
    p.add_argument("--lfw-pairs", type=Path, help="LFW pairs.txt (View 2); with --lfw-dir")
    p.add_argument("--lfw-dir", type=Path, help="aligned LFW folder, <name>/<name>_NNNN.jpg")
    p.add_argument("--bin", type=Path, help="an insightface verification .bin (lfw.bin, cfp_fp.bin, ...)")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--write-thresholds", type=float, metavar="FPR",
                   help=f"store each model's cosine threshold at this FPR in {THRESHOLDS}")
    p.add_argument("--thresholds-file", type=Path, default=THRESHOLDS, help=argparse.SUPPRESS)
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        sets: dict[str, EvalSet] = {}
        embedders: dict[str, object] = {}
        if args.embeddings:
            for path in args.embeddings:
                sets[path.stem] = load_npz(path, args)
        else:
            if args.data is None:
                raise MetricError("--models needs --data (an aligned face folder)")
            import config

            unknown = [m for m in args.models if m not in config.MODELS]
            if unknown:  # before any embedding work
                raise MetricError(f"unknown model {unknown[0]!r}; valid: {', '.join(sorted(config.MODELS))}")
            args.query_ids = 50 if args.query_ids is None else args.query_ids
            args.distractor_ids = 50 if args.distractor_ids is None else args.distractor_ids
            folder = scan_face_folder(args.data)
            held = identity_disjoint_split(folder, args.query_ids, args.distractor_ids, args.seed,
                                           args.query_images, args.distractor_images)
            for name in args.models:
                sets[name], embedders[name] = embed_model(name, folder, held, args)
        results: dict[str, IdRateResult] = {}
        extra: dict[str, dict] = {}
        curves, tsne, sims = {}, {}, {}
        for name, s in sets.items():
            results[name] = idrate(s.query, s.query_labels, s.distractors, device=args.device)
            e: dict = {}
            if args.bootstrap:
                e["bootstrap95"] = bootstrap_idrate(s.query, s.query_labels, s.distractors, s.distractor_labels,
                                                    n=args.bootstrap, seed=args.seed)
            if len(s.distractors):
                e["open_set"] = open_set(s).to_dict()
            try:
                e["fixed_threshold"], curves[name] = fixed_threshold(s, args.seed)
            except MetricError as exc:
                e["fixed_threshold"] = {"skipped": str(exc)}
            if name in embedders and (args.lfw_pairs or args.bin):
                e["lfw"] = lfw_result(embedders[name], args).to_dict()
            extra[name] = e
            ids = np.unique(s.query_labels)[:10]
            keep = np.isin(s.query_labels, ids)
            tsne[name] = (check_embeddings(s.query[keep], "query"), s.query_labels[keep])
            sims[name] = scores_for_plot(s)
        written = write_report(results, args.out, {k: str(v) for k, v in vars(args).items()}, extra)
        written.append(plot_similarity(sims, args.out / "similarity.png"))
        if curves:
            written.append(plot_accuracy_vs_threshold(curves, args.out / "accuracy_threshold.png"))
        if all(len(v[0]) >= 5 for v in tsne.values()):
            written.append(plot_tsne(tsne, args.out / "tsne.png", seed=args.seed))
        if args.write_thresholds:
            written.append(write_thresholds(results, sets, args))
    except (MetricError, FaceDataError, KeyError, FileNotFoundError) as exc:
        print(f"id_rate: error: {exc}", file=sys.stderr)
        return 2
    print((args.out / "table.md").read_text())
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def lfw_result(embedder, args: argparse.Namespace):
    """LFW View 2 10-fold accuracy from a pairs file and an aligned LFW folder, or from a .bin."""
    from facedata.io import load_image

    if args.bin:
        from facedata.insightface_io import load_verification_bin

        vs = load_verification_bin(args.bin)
        imgs = [vs.image(i) for i in range(2 * len(vs))]
        issame, folds = vs.issame, None
    else:
        from facedata.lfw import pair_paths, parse_pairs

        if args.lfw_dir is None:
            raise MetricError("--lfw-pairs needs --lfw-dir (the aligned LFW folder)")
        pairs = parse_pairs(args.lfw_pairs)
        imgs = [load_image(x) for ab in pair_paths(pairs, args.lfw_dir) for x in ab]
        issame, folds = np.array([pp.same for pp in pairs]), np.array([pp.fold for pp in pairs])
    emb = embedder(imgs)
    return pair_verification(emb[0::2], emb[1::2], issame, folds)


def write_thresholds(results: dict[str, IdRateResult], sets: dict[str, EvalSet], args: argparse.Namespace) -> Path:
    """Each model's cosine threshold at the chosen FPR on this data, merged into id_rate/thresholds.json.
    An FPR of the table's grid is read from its result; another one is computed."""
    import datetime as dt

    path = args.thresholds_file
    table = json.loads(path.read_text()) if path.exists() else {}
    for name, s in sets.items():
        r = results[name]
        pt = next((p for p in r.points if p.target_fpr == args.write_thresholds), None)
        if pt is None:
            r = idrate(s.query, s.query_labels, s.distractors, fprs=(args.write_thresholds,), device=args.device)
            pt = r.points[0]
        if pt.threshold is None:
            raise MetricError(f"{name}: FPR {args.write_thresholds} is below 1 / {r.n_neg} negative pairs on this data")
        table[name] = {"threshold_cos": pt.threshold, "threshold_fpr": args.write_thresholds, "tpr": pt.tpr,
                       "data": str(args.data or args.embeddings), "n_neg": r.n_neg, "date": dt.date.today().isoformat()}
    write_bytes_atomic(json.dumps(table, indent=1).encode(), path)
    return path


if __name__ == "__main__":
    sys.exit(main())
