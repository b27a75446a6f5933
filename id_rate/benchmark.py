"""Every model on LFW View 2, CFP-FF, CFP-FP and two sets of held-out people (CelebA's, the composed set's), in one
table, with paired comparisons.

    python -m id_rate.benchmark --models sface dlib random-init sface-torch --out id_rate/results/benchmark
    python -m id_rate.benchmark --models sface dlib --sets lfw cfp-fp --compare sface dlib

Per model and set, each image is embedded once (cached in data/cache/embeddings, shared with
``python -m id_rate``), then:

* pair sets (LFW View 2 ``pairs.txt``, CFP-FF and CFP-FP, 10 folds each): 10-fold accuracy mean +- std (each
  fold's threshold chosen on the other 9), TAR@FAR=1e-3, ROC-AUC, and 95% intervals of accuracy and AUC from
  ``--bootstrap`` resamples of whole folds (pairs share images and people, folds share no people; each pair's
  out-of-fold decision kept);
* ID-rate sets, each the seed's ID-rate table with 95% intervals of ROC-AUC and TPR@FPR=1e-3 from ``--bootstrap``
  resamples of identities:
  - CelebA held out (``--celeba-dir``, the aligned 239-person subset): a seeded split, 120 query identities x 6
    images and the other 119 as distractors (``make celeba``'s split);
  - composed held out (``--composed-dir``, ``make compose``'s set): the people config.COMPOSED_SPLIT sets aside
    for the benchmark alone before any training split (200 query identities x 6 images, 400 distractor identities
    with every image), which no composed-* recipe trains on or chooses an epoch with. ``make compose`` runs after
    ``make benchmarks``, so a run with the default --sets skips this set, with a note, while the folder is
    missing.

A checkpoint that trained on people a set scores gets that cell marked, not scored. Comparisons
(``--compare A B``, and every model against ``random-init`` when it is listed): on each pair set a paired
bootstrap over whole folds of the accuracy and AUC differences (the discordant-pair counts alongside, as a
description), and on the ID-rate sets a paired bootstrap over identities of the AUC and TPR@FPR=1e-3 differences
(``id_rate.paired``). Output in ``--out``: table.md
(table, published anchor, comparisons), table.csv, comparisons.csv, results.json. Exit 2 on bad input.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facedata.cli import at_least, command, torch_device
from facedata.datasets import BENCHMARK_SEED_OFFSET, held_out_split
from facedata.io import output_folder, write_bytes_atomic
from facedata.splits import DEFAULT_SPLIT_SEED, SplitSpec
from models_definition.onnx_backend import add_backend_option

from . import evaluate as ev
from .evaluate import (PairSet, Protocol, check_not_trained_on, lfw_protocol, score_embeddings, score_pairs,
                       split_protocol)
from .metrics import SEED_FPRS, MetricError
from .paired import (PairedDiff, bootstrap_pair_set, kfold_correct, mcnemar_exact, pair_folds, paired_bootstrap_idrate,
                     paired_bootstrap_pair_set, resampling_unit, verdict, verification_distance)
from .protocols import PairVerificationResult
from .report import at_rate, csv_bytes, fmt, markdown_rows

PAIR_SETS = ("lfw", "cfp-ff", "cfp-fp")
IDRATE_SETS = ("celeba", "composed")  # held-out people scored with the seed's ID-rate table
SETS = PAIR_SETS + IDRATE_SETS
TITLE = {"lfw": "LFW", "cfp-ff": "CFP-FF", "cfp-fp": "CFP-FP", "celeba": "CelebA", "composed": "Composed"}
# sets a default run skips, with a note, while their folder is missing, and what makes it: `make compose` needs
# `make benchmarks`' aligned sets first, so the first default run comes before the composed set exists
SKIPPED_WHEN_MISSING = {"composed": "`make compose` builds it, after `make benchmarks`"}
BASELINE = "random-init"  # compared against every other model when listed: is a model better than untrained?
TRAINED_ON = "trained on these people"
ANCHOR_FPR = 1e-3  # the TPR@FPR the ID-rate comparisons and intervals use (the seed table's last column)


class BenchmarkError(MetricError):
    """Bad benchmark input (a missing data folder, a comparison of an unlisted model); the message says what to do."""


# --- cells ----------------------------------------------------------------------------------------------------
@dataclass
class PairCell:
    """One model on one pair set: the reported figures and, per pair, what the comparisons need."""

    result: PairVerificationResult
    missing: int  # pairs with a missing image, counted wrong
    distance: np.ndarray
    issame: np.ndarray
    correct: np.ndarray  # each pair's decision under its out-of-fold threshold
    folds: np.ndarray  # each pair's fold: the bootstrap's resampling unit
    interval: dict[str, tuple[float, float]] | None  # bootstrap 95% of accuracy and auc

    def to_dict(self) -> dict[str, Any]:
        out = {**self.result.to_dict(), "missing_pairs_counted_wrong": self.missing}
        if self.interval is not None:  # bootstrap95_over_folds; _over_pairs only for a set without folds
            out[f"bootstrap95_over_{resampling_unit(self.folds)}"] = self.interval
        return out


@dataclass
class IdRateCell:
    """One model on the ID-rate protocol: its report and the embeddings the paired bootstrap resamples."""

    report: ev.ModelReport
    query: np.ndarray
    query_labels: np.ndarray
    distractors: np.ndarray
    distractor_labels: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        out = self.report.idrate.to_dict()
        if self.report.bootstrap95 is not None:
            out["bootstrap95_over_identities"] = self.report.bootstrap95
        return out


@dataclass
class Skipped:
    """A cell not scored; ``reason`` is the short mark, ``detail`` the full message."""

    reason: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"skipped": self.reason, "detail": self.detail}


Cell = PairCell | IdRateCell | Skipped


# --- data folders and protocols ---------------------------------------------------------------------------------
def set_paths(args: argparse.Namespace, cfg) -> dict[str, Path]:
    """Each set's folders: the flags, else config.py's roots."""
    lfw_root = args.lfw_pairs.parent if args.lfw_pairs else cfg.LFW_ROOT  # where the fetched LFW is (for messages)
    return {"lfw_dir": args.lfw_dir or cfg.LFW_ALIGNED, "lfw_pairs": args.lfw_pairs or cfg.LFW_ROOT / "pairs.txt",
            "lfw_root": lfw_root, "cfp_root": args.cfp_root or cfg.CFP_ROOT, "cfp_dir": args.cfp_dir or cfg.CFP_ALIGNED,
            "celeba_dir": args.celeba_dir or cfg.CELEBA_ALIGNED, "composed_dir": args.composed_dir or cfg.COMPOSED}


def _need(path: Path, is_file: bool, message: str) -> None:
    if not (path.is_file() if is_file else path.is_dir()):
        raise BenchmarkError(message)


def check_sources(sets: list[str], paths: dict[str, Path]) -> None:
    """Refuse a missing data folder before any work, naming it and the command that makes it."""
    p = paths
    if "lfw" in sets:
        _need(p["lfw_dir"], False, f"LFW's aligned folder {p['lfw_dir']} not found: `make lfw` fetches and aligns "
              f"it (or, on a fetched LFW, `python -m facedata.prepare {p['lfw_root']}/lfw-deepfunneled {p['lfw_dir']} "
              "--fallback centred --workers 2`); or pass --lfw-dir")
        _need(p["lfw_pairs"], True, f"LFW's View 2 pairs file {p['lfw_pairs']} not found: `python -m facedata.fetch "
              "lfw` (or `make lfw`) fetches it; or pass --lfw-pairs")
    if {"cfp-ff", "cfp-fp"} & set(sets):
        _need(p["cfp_root"], False, f"CFP's folder {p['cfp_root']} not found: `python -m facedata.fetch cfp "
              f"--from DIR --dest {p['cfp_root']}` (DIR: your cfp-dataset.zip or its folder; without --from it is "
              "downloaded) puts it there; or pass --cfp-root")
        from facedata.cfp import prepare_command

        _need(p["cfp_dir"], False, f"CFP's aligned folder {p['cfp_dir']} not found: "
              f"`{prepare_command(p['cfp_root'], p['cfp_dir'])}` makes it; or pass --cfp-dir")
    if "celeba" in sets:
        _need(p["celeba_dir"], False, f"the aligned CelebA subset {p['celeba_dir']} not found: `make celeba` "
              "(CELEBA_FROM=.../img_celeba) fetches and aligns it; or pass --celeba-dir")
    if "composed" in sets:
        _need(p["composed_dir"], False, f"the composed set {p['composed_dir']} not found: `make compose` (after `make "
              "benchmarks`, whose aligned sets its audit reads) builds it; or pass --composed-dir")


def drop_missing(sets: list[str], paths: dict[str, Path]) -> list[str]:
    """``sets`` without those of SKIPPED_WHEN_MISSING whose folder is missing, each with a one-line note: for the
    default --sets only (a set asked for by name is checked by :func:`check_sources`)."""
    missing = [name for name in sets if name in SKIPPED_WHEN_MISSING and not paths[f"{name}_dir"].is_dir()]
    for name in missing:
        print(f"benchmark: note: {TITLE[name]} skipped: {paths[f'{name}_dir']} not found "
              f"({SKIPPED_WHEN_MISSING[name]}; or pass --{name}-dir)", file=sys.stderr)
    return [name for name in sets if name not in missing]


def celeba_protocol(paths: dict[str, Path], args: argparse.Namespace, cfg) -> Protocol:
    """CelebA's held-out people: a seeded identity-disjoint split of the subset (``make celeba``'s)."""
    proto = split_protocol(paths["celeba_dir"], args.celeba_query_ids, args.celeba_distractor_ids, args.seed,
                           args.celeba_query_images)
    proto.audit_set = "celeba"  # the CelebA people reserved for evaluation (facedata.audit)
    return proto


def composed_split(data: Path, args: argparse.Namespace, cfg) -> SplitSpec:
    """The split every composed-* recipe trains with (config.COMPOSED_SPLIT) on ``data``, the benchmark counts
    overridden by the --composed-* flags when given. Without its open-set hold-out: the benchmark's people are
    drawn before it, from their own seed (facedata.datasets.held_out_split), so they are the same without it,
    and a small folder need not hold both."""
    counts = {"benchmark_query": args.composed_query_ids, "benchmark_distractor": args.composed_distractor_ids,
              "benchmark_query_images": args.composed_query_images}
    split = SplitSpec.from_dict({**cfg.COMPOSED_SPLIT, "data": str(data),
                                 **{k: v for k, v in counts.items() if v is not None}})
    return dataclasses.replace(split, open_set_query=0, open_set_distractor=0)


def composed_protocol(paths: dict[str, Path], args: argparse.Namespace, cfg) -> Protocol:
    """The composed set's held-out people: those its training split sets aside for the benchmark. A checkpoint
    trained with that split did not see them; one that did (another split, or other counts) is marked by name."""
    s = composed_split(paths["composed_dir"], args, cfg)
    held = held_out_split(s)
    seed = s.split_seed + BENCHMARK_SEED_OFFSET  # the seed the benchmark's people are drawn with
    return ev._from_split(
        "composed benchmark hold-out",
        f"{s.benchmark_query} query identities ({s.benchmark_query_images} images each) and {s.benchmark_distractor} "
        f"distractor identities (every image) of {s.data}, set aside before any training split (config.COMPOSED_SPLIT"
        f"'s benchmark_*, seed {s.split_seed} + {BENCHMARK_SEED_OFFSET}): no composed-* recipe trains on them",
        held.benchmark_query, held.benchmark_distractor, seed,
        dict(data=s.data, n_query=s.benchmark_query, n_distractor=s.benchmark_distractor, seed=seed,
             query_images=s.benchmark_query_images, distractor_images=None))


# the ID-rate sets: how each finds its held-out people; what follows (scores, intervals, comparisons, columns)
# is one path for all of them
IDRATE_PROTOCOLS = {"celeba": celeba_protocol, "composed": composed_protocol}


def build_protocol(name: str, paths: dict[str, Path], args: argparse.Namespace, cfg) -> Protocol:
    """The protocol of one set; the same for every model."""
    if name == "lfw":
        # LFW's full protocol, not the pairs alone: its image list is `make lfw`'s, so the embedding cache is
        # shared with it, and the training-overlap check covers every LFW person. Only the pairs are scored.
        return lfw_protocol(paths["lfw_dir"], paths["lfw_pairs"], query_min_images=6, query_images=6, seed=args.seed,
                            missing=args.missing_pairs)
    if name in ("cfp-ff", "cfp-fp"):
        return ev.cfp_protocol(paths["cfp_root"], paths["cfp_dir"], kind=name[-2:].upper(), missing=args.missing_pairs)
    return IDRATE_PROTOCOLS[name](paths, args, cfg)


# --- scoring ------------------------------------------------------------------------------------------------------
def _pair_embeddings(embedder, ps: PairSet, table: dict[Path, np.ndarray]) -> np.ndarray:
    """Embeddings of the pair images in order, as ``evaluate_model`` takes them: a missing image gets a
    placeholder row (its pair is counted wrong whatever it scores)."""
    if ps.images is not None:
        return embedder(ps.images)
    blank = np.ones(embedder.embedding_size, np.float32)
    return np.stack([table.get(p, blank) if p is not None else blank for p in ps.paths])


def _needed(protocol: Protocol) -> set[Path]:
    """The images ``_embed_all`` embeds for a protocol: its parts' and its pairs' that exist."""
    pairs = protocol.pairs.paths if protocol.pairs is not None and protocol.pairs.images is None else []
    return {p for part in protocol.parts() for p in part.paths} | {p for p in pairs if p is not None and p.is_file()}


def embeddings_for(embedder, name: str, protocols: dict[str, Protocol], args: argparse.Namespace, cache: Path | None,
                   tables: dict[str, dict[Path, np.ndarray]]) -> dict[Path, np.ndarray]:
    """One model's embeddings of set ``name``'s images (``evaluate._embed_all``: cached on disk). CFP-FF's
    frontal images are among CFP-FP's, so with both sets listed FF reads the table embedded for FP: one pass
    over CFP instead of two, and the cache entry ``python -m id_rate --benchmark cfp-fp`` makes. ``tables``
    holds this model's tables by set."""
    source = "cfp-fp" if name == "cfp-ff" and "cfp-fp" in protocols else name
    if source not in tables:
        tables[source] = ev._embed_all(embedder, protocols[source], cache, not args.no_progress)
    if source != name and not _needed(protocols[name]) <= tables[source].keys():
        tables[name] = ev._embed_all(embedder, protocols[name], cache, not args.no_progress)  # never a silent gap
        return tables[name]
    return tables[source]


def score_pair_set(embedder, protocol: Protocol, table: dict[Path, np.ndarray], args: argparse.Namespace) -> PairCell:
    """10-fold figures of one model on a protocol's pairs, each pair's decision and the bootstrap interval
    (whole folds resampled)."""
    ps = protocol.pairs
    if ps is None:
        raise BenchmarkError(f"{protocol.name}: the protocol has no verification pairs")
    e = _pair_embeddings(embedder, ps, table)
    result = score_pairs(ps, e[0::2], e[1::2])
    y = np.asarray(ps.issame, bool)
    d = verification_distance(e[0::2], e[1::2], y, ps.missing)
    folds = pair_folds(len(y), ps.folds)
    correct = kfold_correct(d, y, folds)
    interval = bootstrap_pair_set(d, y, correct, folds, args.bootstrap, args.seed) if args.bootstrap else None
    return PairCell(result, ps.n_missing, d, y, correct, folds, interval)


def score_idrate_set(embedder, protocol: Protocol, table: dict[Path, np.ndarray],
                     args: argparse.Namespace) -> IdRateCell:
    """The seed's ID-rate table of one model (with identity-bootstrap intervals), keeping its embeddings."""
    rows = lambda part: ev._rows(table, part, embedder.embedding_size)  # noqa: E731
    q, d = rows(protocol.query), rows(protocol.distractor)
    ql, dl = protocol.query.labels, protocol.distractor.labels
    # --seed: the draws of the paired comparisons too, so each model's interval is its marginal of those
    rep = score_embeddings(embedder.name, q, ql, d, dl, flip=embedder.flip_tta, seed=args.seed,
                           bootstrap=args.bootstrap, device=args.device)
    return IdRateCell(rep, q, ql, d, dl)


def score_cell(embedder, name: str, protocols: dict[str, Protocol], args: argparse.Namespace, cache: Path | None,
               tables: dict[str, dict[Path, np.ndarray]]) -> Cell:
    """One model on one set; a checkpoint that trained on the set's people is marked, not scored."""
    protocol = protocols[name]
    try:
        check_not_trained_on(protocol, embedder.name, embedder.spec)
    except MetricError as exc:
        return Skipped(TRAINED_ON, str(exc))
    table = embeddings_for(embedder, name, protocols, args, cache, tables)
    if name in PAIR_SETS:
        return score_pair_set(embedder, protocol, table, args)
    return score_idrate_set(embedder, protocol, table, args)


# --- comparisons ------------------------------------------------------------------------------------------------
def comparison_list(models: list[str], compare: list[list[str]] | None) -> list[tuple[str, str]]:
    """``--compare`` pairs, then every model against random-init when it is listed; no pair twice."""
    out: list[tuple[str, str]] = []
    for a, b in compare or []:
        for m in (a, b):
            if m not in models:
                raise BenchmarkError(f"--compare {a} {b}: {m!r} is not in --models ({', '.join(models)}); "
                                     "list it there")
    wanted = [tuple(c) for c in compare or []]
    if BASELINE in models:
        wanted += [(m, BASELINE) for m in models if m != BASELINE]
    for pair in wanted:
        if pair not in out:
            out.append(pair)
    return out


def _with_verdict(diff: PairedDiff, a: str, b: str) -> dict[str, Any]:
    return {**diff.to_dict(), "verdict": verdict(diff.diff, diff.p_value, a, b)}


def compare_pair_cells(x: PairCell, y: PairCell, a: str, b: str, args: argparse.Namespace) -> dict[str, Any]:
    """Verdicts on accuracy and AUC from the paired bootstrap over whole folds (needs --bootstrap; pairs share
    images and people, folds do not), with the discordant-pair counts as a description, not a test."""
    m = mcnemar_exact(x.correct, y.correct)
    out: dict[str, Any] = {"discordant_pairs": {"n": m.n, "n10": m.n10, "n01": m.n01,
                                                "accuracy_diff": m.accuracy_diff}}
    if args.bootstrap:
        r = paired_bootstrap_pair_set(x.distance, y.distance, x.correct, y.correct, x.issame, x.folds,
                                      args.bootstrap, args.seed)
        out.update({k: _with_verdict(v, a, b) for k, v in r.items()})
    return out


def compare_idrate_cells(x: IdRateCell, y: IdRateCell, a: str, b: str, args: argparse.Namespace) -> dict[str, Any]:
    """The paired bootstrap over identities of AUC and TPR@1e-3 (needs --bootstrap)."""
    if not args.bootstrap:
        return {"skipped": "no bootstrap (--bootstrap 0)"}
    r = paired_bootstrap_idrate(x.query, y.query, x.query_labels, x.distractors, y.distractors, x.distractor_labels,
                                n=args.bootstrap, seed=args.seed, fpr=ANCHOR_FPR)
    return {k: _with_verdict(v, a, b) for k, v in r.items()}


def compare(cells: dict[str, dict[str, Cell]], a: str, b: str, args: argparse.Namespace) -> dict[str, Any]:
    """Model ``a`` against ``b`` on every set both were scored on."""
    out: dict[str, Any] = {}
    for name in args.sets:
        x, y = cells[a][name], cells[b][name]
        skipped = [(m, c) for m, c in ((a, x), (b, y)) if isinstance(c, Skipped)]
        if skipped:
            out[name] = {"skipped": f"{skipped[0][0]} {skipped[0][1].reason}"}
        elif name in PAIR_SETS:
            out[name] = compare_pair_cells(x, y, a, b, args)
        else:
            out[name] = compare_idrate_cells(x, y, a, b, args)
    return out


# --- the table --------------------------------------------------------------------------------------------------
def _ci(iv: tuple[float | None, float | None] | None, digits: int = 3, scale: float = 1.0) -> str:
    if iv is None or iv[0] is None:
        return ""
    return f"{scale * iv[0]:.{digits}f}-{scale * iv[1]:.{digits}f}"


def pair_columns(t: str, c: PairCell) -> dict[str, str]:
    r, iv = c.result, c.interval or {}
    row = {f"{t} acc % (10-fold)": f"{100 * r.accuracy_mean:.2f} ± {100 * r.accuracy_std:.2f}",
           f"{t} acc 95% CI": _ci(iv.get("accuracy"), 2, 100.0),
           f"{t} TAR@FAR=1e-3": at_rate(fmt(r.tar_at_far_1e3, 3), r.achieved_far_1e3),
           f"{t} AUC": fmt(r.auc), f"{t} AUC 95% CI": _ci(iv.get("auc"), 4)}
    if c.missing:
        row[f"{t} pairs missing (counted wrong)"] = str(c.missing)
    return row


def idrate_columns(t: str, c: IdRateCell) -> dict[str, str]:
    r, bs = c.report.idrate, c.report.bootstrap95 or {}
    row = {f"{t} TPR@FPR={p.target_fpr:g}": at_rate(fmt(p.tpr), p.fpr) for p in r.points}
    row[f"{t} AUC"] = fmt(r.auc) + (f" ±{r.auc_error:.1g}" if r.auc_error else "")
    row[f"{t} AUC 95% CI"] = _ci(bs.get("auc"))
    row[f"{t} TPR@FPR={ANCHOR_FPR:g} 95% CI"] = _ci(bs.get(f"tpr@{ANCHOR_FPR:g}"))
    return row


def _blank_columns(t: str, name: str) -> list[str]:
    if name in PAIR_SETS:
        return [f"{t} acc % (10-fold)", f"{t} acc 95% CI", f"{t} TAR@FAR=1e-3", f"{t} AUC", f"{t} AUC 95% CI"]
    return [f"{t} TPR@FPR={f:g}" for f in SEED_FPRS] + [f"{t} AUC", f"{t} AUC 95% CI",
                                                         f"{t} TPR@FPR={ANCHOR_FPR:g} 95% CI"]


def table_rows(cells: dict[str, dict[str, Cell]], sets: list[str]) -> list[dict[str, str]]:
    """One row per model, the columns of each set in --sets order; a skipped cell says why in its first column."""
    rows = []
    for model, by_set in cells.items():
        row = {"model": model}
        for name in sets:
            c, t = by_set[name], TITLE[name]
            if isinstance(c, Skipped):
                cols = _blank_columns(t, name)
                row.update({cols[0]: c.reason, **{k: "-" for k in cols[1:]}})
            else:
                row.update(pair_columns(t, c) if isinstance(c, PairCell) else idrate_columns(t, c))
        rows.append(row)
    return rows


# what each comparison resampled, as the table says it
OVER = {"folds": "whole folds (people-disjoint)", "identities": "identities",
        "pairs": "pairs (the set has no folds: pairs treated as independent)"}


def _diff_row(base: dict[str, str], what: str, d: dict[str, Any], points: bool) -> dict[str, str]:
    """One bootstrap comparison row; ``points``: an accuracy, shown in percentage points."""
    f = (lambda v: f"{100 * v:+.2f}") if points else (lambda v: f"{v:+.4f}")  # noqa: E731
    return {**base, "test": f"{what}, paired bootstrap over {OVER[d['resampled']]}",
            "A - B": f(d["diff"]) + (" pts" if points else ""), "detail": f"95% CI {f(d['low'])} to {f(d['high'])}",
            "verdict": d["verdict"]}


def comparison_rows(comparisons: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, str]]:
    """One row per (comparison, set, figure): A - B, its interval (or, for the discordant pairs, the counts:
    a description, no verdict), the verdict."""
    rows = []
    for (a, b), by_set in comparisons.items():
        for name, c in by_set.items():
            base = {"A": a, "B": b, "set": TITLE[name]}
            if "skipped" in c:
                rows.append({**base, "test": "-", "A - B": "-", "detail": "not compared", "verdict": c["skipped"]})
                continue
            if "discordant_pairs" in c:
                m = c["discordant_pairs"]
                rows.append({**base, "test": "discordant pairs (10-fold decisions; description, not a test)",
                             "A - B": f"{100 * m['accuracy_diff']:+.2f} pts acc",
                             "detail": f"A only right {m['n10']}, B only right {m['n01']} of {m['n']}",
                             "verdict": "see the accuracy row" if "accuracy" in c else "no test (--bootstrap 0)"})
            if "accuracy" in c:
                rows.append(_diff_row(base, "accuracy", c["accuracy"], True))
            for key, what in (("auc", "AUC"), (f"tpr@{ANCHOR_FPR:g}", f"TPR@FPR={ANCHOR_FPR:g}")):
                if key in c:
                    rows.append(_diff_row(base, what, c[key], False))
    return rows


def anchor_text(flip: bool) -> str:
    """The published figure to read ours against, and how our crops differ from the ones it was measured on."""
    return (
        "**Published anchor.** insightface's ResNet-50 trained on CASIA-WebFace (their model zoo): LFW 99.45, "
        "CFP-FP 95.21 (AgeDB-30 94.90). Those figures are measured on insightface's own verification files "
        "(`lfw.bin`, `cfp_fp.bin`: 112x112 crops aligned by insightface's pipeline before packing), and their "
        "training callback scores them with flip-summed embeddings. Ours are measured on this project's own "
        "alignment of the original images: MTCNN (facenet-pytorch) five landmarks and a similarity transform to the "
        "ArcFace 112x112 template on every set; LFW from `lfw-deepfunneled`, a face MTCNN misses retried with "
        "relaxed thresholds, then a centred template crop (`--fallback centred`); the CelebA subset the same way; "
        "CFP detected on a copy with a black border (`--pad 0.3`: its photos end at the face) with `--fallback "
        "hints`: the detection overlapping the box of the dataset's 30 fiducial points is kept, a miss is retried "
        "relaxed, then five landmarks estimated from those points are used (`hint_template` in the manifest). "
        f"Flip TTA: {'on' if flip else 'off'} here (`--flip`). Which detector "
        "and landmarks made insightface's `.bin` crops is not stated in the sources this project carries, so the "
        "crops are not claimed to match: part of a gap to the anchor can be alignment, not the network."
    )


def verdict_rule(n: int) -> str:
    """table.md's account of what the comparisons resample and how a verdict is reached (``n``: --bootstrap)."""
    floor = f" (N = {n}: no p below 2 / (N + 1) = {2 / (n + 1):.3g})" if n else " (--bootstrap 0: no verdicts)"
    return (
        "Verdicts at alpha 0.05, from paired bootstraps: A and B are scored on the same resamples, and p = "
        "2 (1 + m) / (N + 1) at most 1, m the smaller count of the N resampled differences A - B at or below 0 and "
        f"at or above 0{floor}; a model is named better when p < 0.05 and the difference has its sign. Pair sets "
        "(LFW, CFP-FF, CFP-FP): whole folds are resampled (the 10 folds drawn with replacement, every pair of a drawn "
        "fold kept, each pair's decision under its out-of-fold threshold kept), not single pairs, because pairs share "
        "images (on CFP one image is in up to 10 pairs) and people (a CFP fold's pairs come from 50 people), while "
        "the folds share no people; resampling pairs would make the intervals and p-values too optimistic. With only "
        "10 folds the fold intervals are themselves somewhat narrow, so a p near 0.05 is a weak result. A set with a "
        "single fold falls back to resampling pairs, and its rows say so. The discordant-pair counts (pairs only A, "
        "or only B, gets right) describe where the models differ; no test is run on them (McNemar's test assumes "
        "independent pairs). ID-rate sets (CelebA, Composed): query and distractor identities are resampled."
    )


def write_outputs(out: Path, cells: dict[str, dict[str, Cell]], comparisons: dict[tuple[str, str], dict[str, Any]],
                  descriptions: dict[str, str], args: argparse.Namespace) -> list[Path]:
    """table.md, table.csv, comparisons.csv and results.json, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    rows, crows = table_rows(cells, args.sets), comparison_rows(comparisons)
    n = args.bootstrap
    idrate = " and ".join(TITLE[s] for s in args.sets if s in IDRATE_SETS) or "the ID-rate sets"
    cis = (f"acc / AUC 95% CI: {n} resamples of whole folds (the 10 folds drawn with replacement, each pair's "
           f"out-of-fold decision kept); {idrate}'s 95% CIs: {n} resamples of query and distractor identities" if n
           else "no 95% CIs (--bootstrap 0)")
    md = ["# Benchmark", "", *[f"- **{TITLE[k]}**: {v}" for k, v in descriptions.items()], "", *markdown_rows(rows), "",
          f"acc: 10-fold accuracy (%), each fold's threshold chosen on the other 9, mean ± std over folds. {idrate}: "
          f"the seed's ID-rate table. {cis}. In brackets: the FPR (FAR) each rate was reached at, never above the "
          f"column's target. n/r: not resolvable. \"{TRAINED_ON}\": a checkpoint that trained on "
          "people this set scores, not scored.", "", anchor_text(args.flip), "", "## Paired comparisons", ""]
    md += markdown_rows(crows) if crows else ["(none: pass --compare A B, or list random-init)"]
    md += ["", verdict_rule(n)]
    write_bytes_atomic(("\n".join(md) + "\n").encode(), out / "table.md")
    write_bytes_atomic(csv_bytes(rows), out / "table.csv")
    write_bytes_atomic(csv_bytes(crows), out / "comparisons.csv")
    payload = {"meta": {"date": dt.date.today().isoformat(), "sets": descriptions, "bootstrap": args.bootstrap,
                        "seed": args.seed, "flip_tta": args.flip, "anchor": anchor_text(args.flip)},
               "models": {m: {s: c.to_dict() for s, c in by.items()} for m, by in cells.items()},
               "comparisons": [{"a": a, "b": b, **c} for (a, b), c in comparisons.items()]}
    write_bytes_atomic(json.dumps(payload, indent=1, default=float).encode(), out / "results.json")
    return [out / n for n in ("table.md", "table.csv", "comparisons.csv", "results.json")]


# --- the command --------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m id_rate.benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="names in config.MODELS")
    p.add_argument("--sets", nargs="+", choices=SETS, help="default: all five (Composed skipped, with a note, while "
                   "its folder is missing)")
    p.add_argument("--compare", nargs=2, action="append", metavar=("A", "B"),
                   help="a paired comparison (repeatable); every model is also compared with random-init when listed")
    p.add_argument("--bootstrap", type=int, default=200, metavar="N", help="resamples for intervals and paired tests")
    p.add_argument("--seed", type=int, default=DEFAULT_SPLIT_SEED,
                   help="the CelebA split seed and the bootstrap seed (Composed's people: config.COMPOSED_SPLIT's seed)")
    p.add_argument("--lfw-dir", type=Path, help="aligned LFW (default config.LFW_ALIGNED)")
    p.add_argument("--lfw-pairs", type=Path, help="View 2 pairs.txt (default config.LFW_ROOT/pairs.txt)")
    p.add_argument("--cfp-root", type=Path, help="CFP as fetched, with Protocol/ (default config.CFP_ROOT)")
    p.add_argument("--cfp-dir", type=Path, help="aligned CFP (default config.CFP_ALIGNED)")
    p.add_argument("--celeba-dir", type=Path, help="aligned CelebA subset (default config.CELEBA_ALIGNED)")
    p.add_argument("--celeba-query-ids", type=int, default=120)
    p.add_argument("--celeba-distractor-ids", type=int, default=119)
    p.add_argument("--celeba-query-images", type=int, default=6)
    p.add_argument("--composed-dir", type=Path, help="the composed set (default config.COMPOSED)")
    # a composed-* checkpoint trained on the people other counts hold out is marked, not scored, on them
    p.add_argument("--composed-query-ids", type=int, help="default: config.COMPOSED_SPLIT's benchmark_query")
    p.add_argument("--composed-distractor-ids", type=int, help="default: config.COMPOSED_SPLIT's benchmark_distractor")
    p.add_argument("--composed-query-images", type=int, help="default: config.COMPOSED_SPLIT's benchmark_query_images")
    p.add_argument("--missing-pairs", choices=("error", "wrong"), default="error",
                   help="a pair whose image is missing: stop with an error (default) or count it as a wrong answer")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--device", default=None)
    add_backend_option(p)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "benchmark")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for option, minimum in (("bootstrap", 0), ("celeba_query_ids", 1), ("celeba_distractor_ids", 1),
                            ("celeba_query_images", 1), ("composed_query_ids", 1), ("composed_distractor_ids", 1),
                            ("composed_query_images", 2)):
        at_least("--" + option.replace("_", "-"), getattr(args, option), minimum)
    torch_device("--device", args.device)
    args.default_sets = args.sets is None  # then a set whose folder may not exist yet is skipped, not an error
    args.sets = list(dict.fromkeys(args.sets or SETS))
    args.models = list(dict.fromkeys(args.models))
    return args


def run(args: argparse.Namespace) -> tuple[dict[str, dict[str, Cell]], dict[tuple[str, str], dict], dict[str, str]]:
    """(cells by model and set, comparisons, set descriptions); the script layer: reads config.py."""
    import config as cfg
    from models_definition.zoo import check_model_names, load_model

    check_model_names(args.models, cfg.MODELS)
    pairs = comparison_list(args.models, args.compare)
    paths = set_paths(args, cfg)
    if args.default_sets:
        args.sets = drop_missing(args.sets, paths)
    check_sources(args.sets, paths)
    embedders = [load_model(m, cfg.MODELS, device=args.device, flip_tta=args.flip, backend=args.backend)
                 for m in args.models]
    protocols = {s: build_protocol(s, paths, args, cfg) for s in args.sets}
    for s in args.sets:  # a model whose training audit did not cover these people: said before its figures
        for line in ev.audit_warnings(embedders, protocols[s]):
            print(f"benchmark: {TITLE[s]}: {line}", file=sys.stderr)
    cache = None if args.no_cache else cfg.DATA_DIR / "cache" / "embeddings"
    cells: dict[str, dict[str, Cell]] = {}
    for e in embedders:
        cells[e.name], tables = {}, {}
        for s in args.sets:
            cells[e.name][s] = c = score_cell(e, s, protocols, args, cache, tables)
            print(f"benchmark: {e.name} on {TITLE[s]}: {_summary(c)}", file=sys.stderr)
    comparisons = {(a, b): compare(cells, a, b, args) for a, b in pairs}
    return cells, comparisons, {s: p.description for s, p in protocols.items()}


def _summary(c: Cell) -> str:
    if isinstance(c, Skipped):
        return c.reason
    if isinstance(c, PairCell):
        return f"{100 * c.result.accuracy_mean:.2f} ± {100 * c.result.accuracy_std:.2f} % (10-fold)"
    return f"AUC {c.report.idrate.auc:.4f}, TPR@FPR={ANCHOR_FPR:g} {fmt(c.report.idrate.tpr(ANCHOR_FPR))}"


@command("python -m id_rate.benchmark", interrupted="nothing written; embeddings already cached are kept, so a "
         "rerun continues from them")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with output_folder(args.out, "--out"):  # before any work: a result is never computed and then lost
        cells, comparisons, descriptions = run(args)
        written = write_outputs(args.out, cells, comparisons, descriptions, args)
    print((args.out / "table.md").read_text())
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
