"""Score models on the same data with the same protocols; write the table, a JSON and the plots.

    python -m id_rate --models random-init sample-triplet sface --data data/sample_aligned --query-ids 3 --distractor-ids 150
    python -m id_rate --models sface dlib --benchmark lfw          # LFW people + View 2 pairs (make lfw)
    python -m id_rate --models sface --benchmark cfp-fp            # CFP people + frontal-profile pairs
    python -m id_rate --embeddings mine.npz other.npz

``--data``: an aligned folder. A checkpoint trained on that folder is scored on the identities its run held
out, rebuilt from the checkpoint (every model gets that split); otherwise a seeded identity-disjoint split
(``--query-ids``, ``--distractor-ids``). A model is refused if the split scores identities it trained on.
``--benchmark lfw``: LFW's own protocol on the aligned LFW folder (see ``id_rate.evaluate.lfw_protocol``).
``--benchmark cfp-ff`` / ``cfp-fp``: CFP's frontal-frontal / frontal-profile pairs and its 500 people on the
aligned CFP folder (``--cfp-dir``, ``--cfp-root``; see ``id_rate.evaluate.cfp_protocol``).
``--embeddings``: ``.npz`` files with ``embeddings`` (N x D) and ``labels`` (N), optionally ``split``
("query" / "distractor" / "unused" per row; else a seeded split by label).

The protocols live in ``id_rate.evaluate`` (``evaluate(...) -> Report``); this is only the command line.
Output in ``--out`` (default ``id_rate/results``): table.md, table.csv, results.json, roc.png,
similarity.png, tpr_at_fpr.png, accuracy_threshold.png, tsne.png. ``--write-thresholds FPR`` stores each model's cosine
threshold at that FPR, for its flip setting, in ``config.MEASURED_THRESHOLDS``, read when a model loads.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import config  # the script layer's settings (torch-free): models by name, data roots, the thresholds file
from facedata.cli import at_least, command, torch_device
from facedata.datasets import choose_open_set_identities, scan_face_folder
from facedata.errors import UsageError
from facedata.io import create_output_file, output_folder
from facedata.splits import DEFAULT_SPLIT_SEED
from models_definition.onnx_backend import add_backend_option

from .evaluate import (PairSet, Protocol, Report, bin_pairs, cfp_protocol, evaluate, evaluate_embeddings, held_out_protocol,
                       lfw_protocol, split_protocol, write_thresholds)
from .metrics import SEED_FPRS, MetricError

ROOT = Path(__file__).resolve().parent
THRESHOLDS = config.MEASURED_THRESHOLDS
SPLIT_VALUES = ("query", "distractor", "unused")


def load_npz(path: Path, n_query: int | None, n_dist: int | None, seed: int) -> tuple[np.ndarray, ...]:
    """(query, query labels, distractors, distractor labels) from an embeddings file; every way the file
    can be wrong is a MetricError naming it."""
    if not path.is_file():
        raise MetricError(f"{path}: embeddings file not found")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise MetricError(f"{path}: a single .npy array, not an .npz archive; save with "
                          "np.savez(path, embeddings=..., labels=...)")
    if not magic.startswith(b"PK"):  # an .npz is a zip archive
        raise MetricError(f"{path}: cannot read embeddings: not a NumPy .npz file (it does not start like one); save with "
                          "np.savez(path, embeddings=..., labels=...)")
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as exc:
        why = "it holds pickled objects, which are never loaded (save plain numeric / string arrays)" \
            if "pickle" in str(exc) else f"not a NumPy file ({exc})"
        raise MetricError(f"{path}: cannot read embeddings: {why}") from None
    except (OSError, EOFError) as exc:
        raise MetricError(f"{path}: cannot read embeddings: not a NumPy .npz file ({exc})") from None
    if not hasattr(z, "files"):
        raise MetricError(f"{path}: a single .npy array, not an .npz archive; save with "
                          "np.savez(path, embeddings=..., labels=...)")
    try:
        for key in ("embeddings", "labels"):
            if key not in z.files:
                raise MetricError(f"{path}: no {key!r} array (found {sorted(z.files)}); expected embeddings (N x D) "
                                  "and labels (N)")
        emb, labels = z["embeddings"], z["labels"]
        split = z["split"] if "split" in z.files else None
    except ValueError as exc:  # an object array inside the archive
        raise MetricError(f"{path}: cannot read embeddings: {exc}; save plain numeric / string arrays") from None
    if emb.ndim != 2 or not np.issubdtype(emb.dtype, np.number):
        raise MetricError(f"{path}: 'embeddings' must be a numeric (N, D) array, got {emb.dtype} {emb.shape}")
    if len(emb) != len(labels):
        raise MetricError(f"{path}: {len(emb)} embeddings but {len(labels)} labels")
    if split is None:
        q_ids, d_ids, _ = choose_open_set_identities(labels, n_query, n_dist, seed, where=str(path))
        split = np.where(np.isin(labels, q_ids), "query", np.where(np.isin(labels, d_ids), "distractor", "unused"))
    split = split.astype(str)
    if len(split) != len(labels):
        raise MetricError(f"{path}: 'split' has {len(split)} values for {len(labels)} embeddings (one per row)")
    bad = sorted(set(str(v) for v in np.unique(split)) - set(SPLIT_VALUES))
    if bad:
        raise MetricError(f"{path}: 'split' values must be one of {SPLIT_VALUES} (lower case); found {bad[:5]}")
    q, d = split == "query", split == "distractor"
    return emb[q], labels[q], emb[d], labels[d]


def data_protocol(args: argparse.Namespace, specs: dict[str, dict]) -> Protocol:
    """The split of ``--data``: a checkpoint's held-out identities when it trained on this folder, else seeded."""
    folder = scan_face_folder(args.data)
    trained_here = {name: spec for name, spec in specs.items() if set(spec.get("classes") or ()) & set(folder.classes)}
    if trained_here and args.query_ids is None and args.distractor_ids is None:
        splits = {name: held_out_protocol(spec, args.data) for name, spec in trained_here.items()}
        first = next(iter(splits.values()))
        differ = [n for n, p in splits.items() if p.identities() != first.identities()]
        if differ:
            raise MetricError(f"models {sorted(splits)} trained on {args.data} but held out different identities "
                              f"({differ[0]!r} differs from {next(iter(splits))!r}); evaluate them separately")
        print(f"id_rate: scoring on the identities {', '.join(sorted(splits))} held out in training "
              f"({first.description})", file=sys.stderr)
        return first
    return split_protocol(args.data, 50 if args.query_ids is None else args.query_ids,
                          50 if args.distractor_ids is None else args.distractor_ids, args.seed,
                          args.query_images, args.distractor_images)


def build_protocol(args: argparse.Namespace, specs: dict[str, dict], cfg) -> Protocol:
    if args.benchmark == "lfw":
        root = args.lfw_dir or cfg.LFW_ALIGNED
        pairs = args.lfw_pairs or (cfg.LFW_ROOT / "pairs.txt")
        n = args.query_images or 6  # LFW's query people: >= 6 images, 6 of them (the seed's 6 per query identity)
        return lfw_protocol(root, pairs, query_min_images=n, query_images=n, seed=args.seed, missing=args.missing_pairs)
    if args.benchmark in ("cfp-ff", "cfp-fp"):
        return cfp_protocol(args.cfp_root or cfg.CFP_ROOT, args.cfp_dir or cfg.CFP_ALIGNED,
                            kind=args.benchmark[-2:].upper(), missing=args.missing_pairs)
    if args.data is None:
        raise MetricError("--models needs --data (an aligned face folder) or --benchmark lfw / cfp-ff / cfp-fp")
    proto = data_protocol(args, specs)
    if Path(args.data).resolve() == Path(cfg.CELEBA_ALIGNED).resolve():
        proto.audit_set = "celeba"  # the CelebA people reserved for evaluation (facedata.audit)
    if args.lfw_pairs or args.lfw_dir:  # LFW pairs scored beside another protocol
        if not (args.lfw_pairs and args.lfw_dir):
            raise MetricError("--lfw-pairs and --lfw-dir go together (the pairs file and the aligned LFW folder)")
        proto.pairs = lfw_protocol(args.lfw_dir, args.lfw_pairs, missing=args.missing_pairs).pairs
    return proto


@command("python -m id_rate", interrupted="embeddings already cached are kept; run again to continue")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m id_rate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--models", nargs="+", help="names in config.MODELS")
    src.add_argument("--embeddings", nargs="+", type=Path, help=".npz files (embeddings, labels[, split])")
    p.add_argument("--data", type=Path, help="aligned face folder (with --models)")
    p.add_argument("--benchmark", choices=("lfw", "cfp-ff", "cfp-fp"),
                   help="lfw: LFW's people and View 2 pairs (default folders config.LFW_ALIGNED and "
                        "config.LFW_ROOT/pairs.txt; --lfw-dir / --lfw-pairs override them); cfp-ff / cfp-fp: CFP's "
                        "people and frontal-frontal / frontal-profile pairs (--cfp-dir, --cfp-root)")
    p.add_argument("--query-ids", type=int, default=None, help="query identities (default: 50 with --data)")
    p.add_argument("--distractor-ids", type=int, default=None, help="distractor identities (default: 50 with --data)")
    p.add_argument("--query-images", type=int, default=None, help="images per query identity (seed: 6)")
    p.add_argument("--distractor-images", type=int, default=None, help="images per distractor identity (seed: 60)")
    p.add_argument("--seed", type=int, default=DEFAULT_SPLIT_SEED, help=f"the split seed (default {DEFAULT_SPLIT_SEED}: the one training runs hold out)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="N", help="95%% intervals from N identity resamples")
    p.add_argument("--lfw-pairs", type=Path, help="an LFW-style pairs file (View 2 pairs.txt); with --lfw-dir")
    p.add_argument("--lfw-dir", type=Path, help="aligned LFW folder, <name>/<name>_NNNN.jpg")
    p.add_argument("--cfp-dir", type=Path, help="aligned CFP folder, NNN/{frontal,profile}/NN.jpg (default "
                   "config.CFP_ALIGNED)")
    p.add_argument("--cfp-root", type=Path, help="the fetched CFP with Protocol/ and Data/list_name.txt (default "
                   "config.CFP_ROOT)")
    p.add_argument("--missing-pairs", choices=("error", "wrong"), default="error",
                   help="a pair whose image is missing: stop with an error (default) or count it as a wrong answer")
    p.add_argument("--bin", type=Path, help="an insightface verification .bin (lfw.bin, cfp_fp.bin, ...)")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--write-thresholds", type=float, metavar="FPR",
                   help=f"store each model's cosine threshold at this FPR in {THRESHOLDS}")
    p.add_argument("--thresholds-file", type=Path, default=THRESHOLDS, help=argparse.SUPPRESS)
    p.add_argument("--device", default=None)
    add_backend_option(p)
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    check_args(args)
    # Outputs created before any work: a result is never computed and then lost.
    with output_folder(args.out, "--out"):
        if args.write_thresholds is not None:
            create_output_file(args.thresholds_file, "--thresholds-file")
        # a .bin is read before any model loads: a damaged or empty one costs nothing yet
        bin_set = bin_pairs(args.bin) if args.bin is not None else None
        report = run(args, bin_set)
        written = report.write(args.out)
        if args.write_thresholds is not None:
            written.append(write_thresholds(report, args.write_thresholds, args.thresholds_file))
    print(report.table_markdown())
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Refuse counts and rates no protocol can use, before anything is read."""
    for option, minimum in (("query_ids", 1), ("distractor_ids", 1), ("query_images", 1), ("distractor_images", 1),
                            ("bootstrap", 0)):
        at_least("--" + option.replace("_", "-"), getattr(args, option), minimum)
    fpr = args.write_thresholds
    # a threshold is read off the table's operating points (Report.thresholds): another FPR would fail only
    # after every model has embedded every face
    if fpr is not None and fpr not in SEED_FPRS:
        raise UsageError(f"--write-thresholds {fpr:g}: thresholds are measured at the table's FPRs; use one of "
                         f"{', '.join(f'{f:g}' for f in SEED_FPRS)} (e.g. 1e-3)")
    torch_device("--device", args.device)


def run(args: argparse.Namespace, bin_set: PairSet | None = None) -> Report:
    """The report the arguments ask for (the script layer: reads config.MODELS and passes entries down)."""
    if args.embeddings:
        sets = {path.stem: load_npz(path, args.query_ids, args.distractor_ids, args.seed) for path in args.embeddings}
        return evaluate_embeddings(sets, args.seed, args.bootstrap, args.device)
    from models_definition.zoo import check_model_names, load_model

    check_model_names(args.models, config.MODELS)  # before any embedding work
    embedders = [load_model(name, config.MODELS, device=args.device, flip_tta=args.flip, backend=args.backend)
                 for name in args.models]
    specs = {e.name: e.spec for e in embedders if e.checkpoint is not None}
    protocol = build_protocol(args, specs, config)
    if bin_set is not None:
        protocol.pairs = bin_set
    cache = None if args.no_cache else config.DATA_DIR / "cache" / "embeddings"
    return evaluate(embedders, protocol, bootstrap=args.bootstrap, cache_dir=cache, progress=not args.no_progress,
                    device=args.device)


if __name__ == "__main__":
    sys.exit(main())
