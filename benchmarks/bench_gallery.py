"""Large galleries: real mated searches against 1e3 .. 1e6 distractors, exact and approximate FAISS indexes.

    python benchmarks/bench_gallery.py [--distractors 1000000] [--sizes 1e3 1e4 1e5 1e6] [--kinds flat ivf hnsw]

The shipped model (config.DEFAULT_MODEL; bfloat16 batched unless --fp32). Mated searches: LFW people with >= 2
images (config.LFW_ALIGNED), the first image enrolled and the others searched; non-mated searches: LFW people
with one image, every other one (the rest are distractors). Without LFW, data/sample_aligned's people with several
images are the mates. Distractors, in this order: real faces of people not searched (the LFW singles not searched,
then --distractor-dirs: the CFP, CelebA and sample aligned folders that exist, minus any searched name), then
augmented copies of the --distractor-dirs faces (facedata.augment: flip, crop and scale jitter, rotation, colour
jitter, blur; cached in --cache, blocks of --views-per-block views, so a larger run reuses a smaller one's; a view
of a face is a near-duplicate of that person, so they add fewer independent people than real faces), then, with
--synthetic,
synthetic embeddings (a Gaussian fitted to the real distractors' embeddings, normalised: not faces). Each row says
how many of each. The gallery of a row: the enrolled mates plus the first N distractors.

Per gallery size and index kind: build time, index size, recall@1 against exact search, query latency one search at
a time and batched, rank-1 and DIR at FPIR 0.1 / 0.01 (by the evaluation's rule, the exact index), and the
threshold at each FPIR: measured on the non-mated searches, predicted by recognition.open_set from the model's
threshold records, and predicted from this data's own per-comparison non-mated scores (the independence
assumption's check). Prints markdown tables; --out writes them and a JSON record.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

FPIRS = (0.1, 0.01)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    import config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--distractors", type=float, default=1e6, help="distractors at most (default 1e6)")
    p.add_argument("--sizes", type=float, nargs="+", default=[1e3, 1e4, 1e5, 1e6], help="distractor counts")
    p.add_argument("--kinds", nargs="+", default=["flat", "ivf", "hnsw"], help="index kinds measured")
    p.add_argument("--ivf-nprobe", type=int, nargs="*", default=[], help="IVF: measure these nprobe values too "
                   "(the index built once; default: config.GALLERY_INDEX's alone)")
    p.add_argument("--hnsw-max", type=float, default=1e6, help="skip HNSW above this many distractors (build time)")
    p.add_argument("--lfw-dir", type=Path, default=config.LFW_ALIGNED)
    p.add_argument("--distractor-dirs", type=Path, nargs="*",
                   default=[d for d in (config.CFP_ALIGNED, config.CELEBA_ALIGNED, config.SAMPLE_ALIGNED) if d.is_dir()])
    p.add_argument("--views-per-block", type=int, default=8, help="augmented views of every distractor face a block")
    p.add_argument("--synthetic", action="store_true", help="pad beyond the augmented blocks computed with synthetic "
                   "embeddings (without it, the run embeds as many augmented blocks as needed)")
    p.add_argument("--max-blocks", type=int, default=None, help="embed at most this many augmented blocks")
    p.add_argument("--fp32", action="store_true", help="float32 inference (default bfloat16 batched)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--latency-queries", type=int, default=200, help="searches timed one at a time")
    p.add_argument("--max-searches", type=int, default=None, help="a seeded sample of this many searches (mated and "
                   "non-mated in proportion): exact search of every LFW search against 1e6 takes minutes on 2 cores")
    p.add_argument("--cache", type=Path, default=config.DATA_DIR / "cache" / "gallery_bench")
    p.add_argument("--out", type=Path, default=None, help="write the tables (markdown) here, and a .json beside")
    return p.parse_args(argv)


def faces_of(root: Path) -> list[tuple[str, Path]]:
    """(identity, crop) for every image under ``root/<identity>/`` (any depth: CFP's NNN/frontal/NN.jpg)."""
    from facedata.io import image_files

    return [(p.relative_to(root).parts[0], p) for p in image_files(root, recursive=True)
            if len(p.relative_to(root).parts) > 1]


def searches(args: argparse.Namespace) -> tuple[list[Path], np.ndarray, list[Path], np.ndarray, list[Path], str]:
    """(enrolled crops, their labels, search crops, their labels (-1: non-mated), spare distractor crops, what)."""
    import config

    lfw = faces_of(args.lfw_dir) if args.lfw_dir.is_dir() else []
    if lfw:
        what = f"LFW at {args.lfw_dir}"
        people = sorted({n for n, _ in lfw})
    else:
        lfw = faces_of(config.SAMPLE_ALIGNED)
        what = f"sample faces at {config.SAMPLE_ALIGNED} (no LFW)"
        people = sorted({n for n, _ in lfw})
    label = {n: i for i, n in enumerate(people)}
    by = {}
    for n, p in lfw:
        by.setdefault(n, []).append(p)
    enrolled, el, search, sl, spare = [], [], [], [], []
    singles = 0
    for n in people:
        files = sorted(by[n])
        if len(files) >= 2:
            enrolled.append(files[0])
            el.append(label[n])
            search += files[1:]
            sl += [label[n]] * (len(files) - 1)
        else:  # every other single-image person is a non-mated search, the rest distractors
            (search if singles % 2 == 0 else spare).append(files[0])
            if singles % 2 == 0:
                sl.append(-1)
            singles += 1
    return enrolled, np.array(el), search, np.array(sl), spare, what


def distractor_paths(args: argparse.Namespace, searched_names: set[str]) -> list[Path]:
    """The --distractor-dirs faces of people not searched (their augmented views pad the gallery)."""
    return [p for d in args.distractor_dirs for n, p in faces_of(d) if n not in searched_names]


def embed(embedder, paths: list[Path], cache: Path, block: int | None = None, views: int = 1) -> np.ndarray:
    """Embeddings of ``paths`` (block None), or of augmented views ``block * views + 1 ..`` of each (cached)."""
    from facedata.augment import Augment, teacher_view
    from id_rate.embeddings import embed_paths

    if block is None:
        return embed_paths(embedder, paths, cache, progress=False)
    augment = Augment(flip_p=0.5, jitter=0.3, jitter_p=0.8, blur_p=0.25)
    first = block * views + 1  # view 0 is the crop itself: the real embedding

    def view(crop: np.ndarray, image: int, v: int) -> np.ndarray:
        return teacher_view(augment, crop, image, first + v, seed=2100)

    if views == 1:  # embed_paths takes views > 1 only: one view a block is a block of one-view images
        return embed_paths(embedder, paths, cache, progress=False, views=2, view_fn=lambda c, i, v: view(c, i, 0),
                           view_key={"block": block, "augment": augment.to_dict()})[::2]
    return embed_paths(embedder, paths, cache, progress=False, views=views, view_fn=view,
                       view_key={"block": block, "views": views, "augment": augment.to_dict(), "seed": 2100})


def synthetic(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors from a Gaussian with the real embeddings' mean and covariance (not faces)."""
    from id_rate.scoring import l2_normalize

    rng = np.random.default_rng(seed)
    mean, cov = real.mean(0), np.cov(real, rowvar=False)
    out = np.empty((n, real.shape[1]), np.float32)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        out[lo:hi] = rng.multivariate_normal(mean, cov, hi - lo, method="cholesky").astype(np.float32)
    return l2_normalize(out)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def run(args: argparse.Namespace) -> dict:
    import faiss
    import torch

    import config
    from models_definition.thresholds import entry_records
    from models_definition.zoo import load_model
    from recognition.index import GalleryIndex, IndexPolicy
    from recognition.open_set import empirical_fpir_threshold, fmr_table, model_fpir_threshold, threshold_for_fpir

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    registry = dict(config.MODELS)
    name = config.DEFAULT_MODEL
    registry[name] = dict(registry[name], cpu_bf16=not args.fp32)
    embedder = load_model(name, registry, device="cpu", batch_size=256)
    entry = config.MODELS[name]

    enrolled, el, search, sl, spare, what = searches(args)
    if args.max_searches is not None and args.max_searches < len(search):
        keep = np.sort(np.random.default_rng(0).choice(len(search), args.max_searches, replace=False))
        search, sl = [search[i] for i in keep], sl[keep]
    searched = {p.parent.name for p in enrolled} | {p.parent.name for p in search}
    dpaths = distractor_paths(args, searched)
    print(f"mates: {what}: {len(enrolled)} people enrolled, {int((sl >= 0).sum())} mated and {int((sl < 0).sum())} "
          f"non-mated searches; {len(dpaths) + len(spare)} real distractor faces", file=sys.stderr)
    (g_emb, q_emb, real), t_embed = timed(lambda: (
        embed(embedder, enrolled, args.cache), embed(embedder, search, args.cache),
        np.concatenate([embed(embedder, spare, args.cache) if spare else np.zeros((0, embedder.embedding_size),
                                                                                  np.float32),
                        embed(embedder, dpaths, args.cache)])))
    print(f"embedded the real faces in {t_embed:.0f} s", file=sys.stderr)

    want = int(min(args.distractors, max(args.sizes)))
    parts, kinds_of = [real[:want]], [("real", min(len(real), want))]
    block = 0
    while sum(len(p) for p in parts) < want and (args.max_blocks is None or block < args.max_blocks):
        (aug, t) = timed(lambda: embed(embedder, dpaths, args.cache, block, args.views_per_block))
        print(f"augmented block {block}: {len(aug)} views in {t:.0f} s", file=sys.stderr)
        need = want - sum(len(p) for p in parts)
        parts.append(aug[:need])
        kinds_of.append(("augmented", len(parts[-1])))
        block += 1
    if sum(len(p) for p in parts) < want and args.synthetic:
        need = want - sum(len(p) for p in parts)
        parts.append(synthetic(real, need))
        kinds_of.append(("synthetic", need))
    dist = np.ascontiguousarray(np.concatenate(parts), np.float32)
    bounds = np.cumsum([0] + [n for _, n in kinds_of])

    def mix(n: int) -> str:
        return ", ".join(f"{min(max(n - lo, 0), hi - lo)} {k}" for (k, _), lo, hi in zip(kinds_of, bounds[:-1], bounds[1:])
                         if n > lo)

    mated = sl >= 0
    enrolled_row = {lab: i for i, lab in enumerate(el)}
    mate_row = np.array([enrolled_row.get(lab, -1) for lab in sl])
    # this data's per-comparison non-mated scores: non-mated searches against the enrolled mates and 1e3 distractors
    nm = q_emb[~mated] @ np.concatenate([g_emb, dist[:1000]]).T
    nm = np.sort(nm.ravel())
    own_table = [(f, float(nm[len(nm) - int(f * len(nm)) - 1])) for f in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
                 if f * len(nm) >= 10]
    lat_q = q_emb[np.random.default_rng(0).choice(len(q_emb), min(args.latency_queries, len(q_emb)), replace=False)]

    rows, thr_rows = [], []
    for size in sorted({int(min(s, len(dist))) for s in args.sizes}):
        gallery = np.concatenate([g_emb, dist[:size]])
        G = len(gallery)
        exact_top = None
        for kind in args.kinds:
            if kind == "hnsw" and size > args.hnsw_max:
                continue
            policy = IndexPolicy(**dict(config.GALLERY_INDEX, exact_max_faces=0 if kind != "flat" else G,
                                        approx=kind if kind != "flat" else config.GALLERY_INDEX["approx"]))
            idx, t_build = timed(lambda: GalleryIndex.build(gallery, policy, "bench", name))
            nprobes = [policy.ivf_nprobe] + [n for n in args.ivf_nprobe if n != policy.ivf_nprobe]
            for nprobe in nprobes if kind == "ivf" else [None]:
                if nprobe is not None:
                    idx.index.nprobe = nprobe
                label = kind if nprobe is None else f"ivf, nprobe {nprobe}"
                (scores, top), t_batch = timed(lambda idx=idx: idx.search(q_emb, 1))
                t0 = time.perf_counter()
                for q in lat_q:
                    idx.search(q[None], 1)
                t_one = (time.perf_counter() - t0) / len(lat_q)
                faiss.omp_set_num_threads(1)  # one search a time: OpenMP threads only wait on each other (see results)
                t0 = time.perf_counter()
                for q in lat_q:
                    idx.search(q[None], 1)
                t_one1 = (time.perf_counter() - t0) / len(lat_q)
                faiss.omp_set_num_threads(args.threads)
                # float64: a float32 score compared with a Python float is compared in float32 (NumPy 2), which would
                # count a score equal to the boundary under a threshold a hair above it
                top, scores = top[:, 0], scores[:, 0].astype(np.float64)
                if kind == "flat":
                    exact_top = top
                recall = float(np.mean(top == exact_top)) if exact_top is not None else float("nan")
                hit = mated & (top == mate_row)
                row = {"distractors": size, "gallery": G, "mix": mix(size), "kind": label, "build_s": t_build,
                       "index_mb": idx.memory_bytes() / 1e6, "recall@1": recall, "one_ms": 1e3 * t_one,
                       "one_ms_1thread": 1e3 * t_one1,
                       "batch_ms": 1e3 * t_batch / len(q_emb), "rank1": float(hit[mated].mean())}
                for f in FPIRS:
                    t = empirical_fpir_threshold(scores[~mated], f, np.sort(scores[hit]))
                    row[f"dir@{f:g}"] = float("nan") if t is None else float(np.sum(scores[hit] >= t) / mated.sum())
                    row[f"thr@{f:g}"] = t
                rows.append(row)
                print(row, file=sys.stderr)
            if kind == "flat":  # the exact index's scores (the row just measured)
                thr = {"gallery": G}
                for f in FPIRS:
                    thr[f"measured@{f:g}"] = row[f"thr@{f:g}"]
                    thr[f"fpir_reached@{f:g}"] = (float(np.mean(scores[~mated] >= row[f"thr@{f:g}"]))
                                                  if row[f"thr@{f:g}"] is not None else None)
                    for key, fn in (("records", lambda: model_fpir_threshold(embedder, entry, f, G)),
                                    ("own", lambda: threshold_for_fpir(own_table, f, G))):
                        try:
                            t = fn()
                            thr[f"{key}@{f:g}"] = t.cos
                            thr[f"{key}_fpir@{f:g}"] = float(np.mean(scores[~mated] >= t.cos))
                            thr[f"{key}_how@{f:g}"] = t.how.split(" ")[0]
                        except Exception as exc:  # a refusal (too far below the records) is a result here
                            thr[f"{key}@{f:g}"] = None
                            thr[f"{key}_how@{f:g}"] = type(exc).__name__
                thr_rows.append(thr)
    return {"what": what, "enrolled": len(enrolled), "mated": int(mated.sum()), "nonmated": int((~mated).sum()),
            "real_distractors": len(real), "mix": kinds_of, "rows": rows, "thresholds": thr_rows,
            "own_table": own_table, "records": fmr_table(entry_records(entry, embedder.spec), embedder.flip_tta),
            "precision": "float32" if args.fp32 else "bfloat16"}


def _f(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def tables(res: dict) -> str:
    out = ["| distractors | gallery | distractor faces | index | build s | index MB | recall@1 vs exact | ms/search one "
           "| ms/search one, 1 thread | ms/search batched | rank-1 | DIR@FPIR 0.1 | DIR@FPIR 0.01 |", "|" + "---|" * 13]
    for r in res["rows"]:
        out.append(f"| {r['distractors']:,} | {r['gallery']:,} | {r['mix']} | {r['kind']} | {r['build_s']:.2f} | "
                   f"{r['index_mb']:.1f} | {_f(r['recall@1'], 4)} | {r['one_ms']:.3f} | {r['one_ms_1thread']:.3f} | {r['batch_ms']:.4f} | "
                   f"{_f(r['rank1'])} | {_f(r['dir@0.1'])} | {_f(r['dir@0.01'])} |")
    out += ["", "| gallery | FPIR | measured threshold (non-mated searches) | from the model's records (FPIR reached) | "
            "from this data's per-comparison scores (FPIR reached) |", "|---|---|---|---|---|"]
    for t in res["thresholds"]:
        for f in FPIRS:
            rec = (f"{_f(t[f'records@{f:g}'], 4)} ({_f(t.get(f'records_fpir@{f:g}'))}, {t[f'records_how@{f:g}']})")
            own = (f"{_f(t[f'own@{f:g}'], 4)} ({_f(t.get(f'own_fpir@{f:g}'))}, {t[f'own_how@{f:g}']})")
            out.append(f"| {t['gallery']:,} | {f:g} | {_f(t[f'measured@{f:g}'], 4)} (reached "
                       f"{_f(t[f'fpir_reached@{f:g}'])}) | {rec} | {own} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import json

    args = parse_args(argv)
    t0 = time.perf_counter()
    res = run(args)
    text = tables(res)
    head = (f"{res['what']}: {res['enrolled']} enrolled, {res['mated']} mated / {res['nonmated']} non-mated searches; "
            f"{res['real_distractors']} real distractor faces; embeddings {res['precision']}; machine: {machine()}; "
            f"{time.perf_counter() - t0:.0f} s in all\nmodel records (FPR, cos): {res['records']}; this data's "
            f"per-comparison (FMR, cos): {[(f, round(c, 4)) for f, c in res['own_table']]}")
    print(head + "\n\n" + text)
    if args.out:
        from facedata.io import write_bytes_atomic

        write_bytes_atomic((head + "\n\n" + text + "\n").encode(), args.out)
        write_bytes_atomic(json.dumps(res, indent=1, default=str).encode(), args.out.with_suffix(".json"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
