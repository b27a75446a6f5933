"""Score models on one protocol: ``evaluate(embedders, protocol) -> Report``.

A :class:`Protocol` says which aligned images play which part, the same for every model:

* query and distractor images for the seed's ID-rate table (positives: same-identity query pairs;
  negatives: cross-identity query pairs and every query x distractor pair);
* open-set identification (NIST FRVT): an enrolment gallery, mated searches (their identity is enrolled)
  and non-mated searches (it is not);
* optionally verification pairs with folds (LFW View 2, or an insightface ``.bin``).

Builders: :func:`split_protocol` (a seeded identity-disjoint split of a folder), :func:`held_out_protocol`
(the split a training run held out, rebuilt from its checkpoint), :func:`lfw_protocol` (LFW's own people
and View 2 pairs), :func:`cfp_protocol` (CFP's people and its FF or FP pairs). :func:`check_not_trained_on`
refuses a protocol whose identities a checkpoint trained on.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facedata.datasets import FaceFolder, held_out_split, identity_disjoint_split, scan_face_folder
from facedata.splits import DEFAULT_SPLIT_SEED, SplitSpec
from facedata.io import write_bytes_atomic
from models_definition.thresholds import load_measured, record, upsert

from .embeddings import embed_paths
from .metrics import MetricError, accuracy_curve, best_threshold, verification_at_threshold
from .protocols import (IdRateResult, OpenSetResult, PairVerificationResult, bootstrap_idrate, check_embeddings,
                        idrate, open_set_identification, pair_verification)
from .scoring import l2_normalize, similarity_matrix, upper_pair_scores

OPEN_SET_FPIR = (0.1, 0.01, 0.001)


@dataclass
class Part:
    """Images and their identity names (one protocol role)."""

    paths: list[Path]
    labels: np.ndarray  # str, one per path

    @classmethod
    def of(cls, folder: FaceFolder) -> "Part":
        if folder.pack is not None:
            raise MetricError(f"{folder.pack}: evaluation reads aligned image folders, not packs; `python -m "
                              f"facedata.pack unpack {folder.pack} DIR` writes this pack as one (the same identities, "
                              "images and held-out split), then pass --data DIR")
        names = np.array(folder.classes, dtype=object)
        return cls(list(folder.paths), names[folder.labels].astype(str) if len(folder) else np.zeros(0, str))

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class PairSet:
    """Verification pairs: image i is pair i // 2's first (even) or second (odd) image. ``images`` (decoded
    crops, e.g. from a ``.bin``) replace ``paths`` when given. ``missing`` marks pairs whose image is
    absent: they are counted as wrong answers, never skipped."""

    name: str
    paths: list[Path | None]
    issame: np.ndarray
    folds: np.ndarray | None = None
    missing: np.ndarray | None = None
    images: list[np.ndarray] | None = None

    @property
    def n_missing(self) -> int:
        return 0 if self.missing is None else int(self.missing.sum())


@dataclass
class Protocol:
    name: str
    description: str
    query: Part
    distractor: Part
    gallery: Part | None = None  # open-set enrolment; None: no open-set figures
    mated: Part | None = None
    nonmated: Part | None = None
    pairs: PairSet | None = None
    seed: int = DEFAULT_SPLIT_SEED
    settings: dict[str, Any] = field(default_factory=dict)
    audit_set: str | None = None  # the evaluation set of facedata.audit these people belong to (lfw, cfp, celeba)

    def parts(self) -> list[Part]:
        return [p for p in (self.query, self.distractor, self.gallery, self.mated, self.nonmated) if p is not None]

    def identities(self) -> set[str]:
        """Every identity the protocol scores (for the training-overlap check)."""
        return {str(x) for p in self.parts() for x in p.labels}


# --- protocol builders ----------------------------------------------------------------------------------
def first_images(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows grouped by identity, stable; True where a row is its identity's first): the open-set rule
    "enrol the first image of each query identity, search with the others"."""
    order = np.argsort(labels, kind="stable")
    lab = np.asarray(labels)[order]
    return order, (np.r_[True, lab[1:] != lab[:-1]] if len(lab) else np.zeros(0, bool))


def _first_image_open_set(query: Part, distractor: Part) -> tuple[Part, Part, Part]:
    """Gallery: the first image of each query identity; mated: its other images; non-mated: the distractors."""
    order, first = first_images(query.labels)
    paths, labels = [query.paths[i] for i in order], query.labels[order]
    pick = lambda m: Part([p for p, k in zip(paths, m) if k], labels[m])  # noqa: E731
    return pick(first), pick(~first), distractor


def _from_split(name: str, description: str, query: FaceFolder, distractor: FaceFolder, seed: int,
                settings: dict[str, Any]) -> Protocol:
    q, d = Part.of(query), Part.of(distractor)
    gallery, mated, nonmated = _first_image_open_set(q, d)
    return Protocol(name, description, q, d, gallery, mated, nonmated, None, seed, settings)


def split_protocol(root: str | Path, n_query: int, n_distractor: int, seed: int = DEFAULT_SPLIT_SEED,
                   query_images: int | None = None, distractor_images: int | None = None) -> Protocol:
    """A seeded identity-disjoint split of an aligned folder (the one the training recipes hold out for the
    same seed and counts). Open set: the first image of each query identity enrolled, the others mated,
    the distractors non-mated."""
    folder = scan_face_folder(root)
    held = identity_disjoint_split(folder, n_query, n_distractor, seed, query_images, distractor_images)
    return _from_split(f"split of {Path(root).name}",
                       f"{n_query} query identities ({query_images or 'all'} images each) and {n_distractor} "
                       f"distractor identities of {root}, split seed {seed}",
                       held.query, held.distractor, seed,
                       dict(data=str(root), n_query=n_query, n_distractor=n_distractor, seed=seed,
                            query_images=query_images, distractor_images=distractor_images))


def held_out_protocol(spec: Mapping[str, Any], root: str | Path | None = None) -> Protocol:
    """The query / distractor identities a training run held out, rebuilt from its checkpoint's training
    config (the engine makes its split with the same function, so they are the same people). A run that set
    identities aside for the benchmark (``SplitSpec.benchmark_*``) is scored on those: its own open-set hold-out
    chose its best epoch (monitor "select"), so a figure on it would flatter the model."""
    split = SplitSpec.from_checkpoint(spec)
    if not split.holds_out and not split.benchmark_holds_out:
        raise MetricError("the checkpoint's training run held out no identities (open_set_query = 0); "
                          "evaluate it on other data (e.g. --benchmark lfw)")
    held = held_out_split(split, root)
    data = root or split.data
    if split.benchmark_holds_out:
        return _from_split("set aside for the benchmark",
                           f"the identities the training run set aside for the benchmark of {data}: "
                           f"{split.benchmark_query} query x {split.benchmark_query_images} images, "
                           f"{split.benchmark_distractor} distractors with every image (seed {split.split_seed} + 1)",
                           held.benchmark_query, held.benchmark_distractor, split.split_seed,
                           dict(data=str(data), held_out_from_checkpoint=True, benchmark=True,
                                n_query=split.benchmark_query, n_distractor=split.benchmark_distractor,
                                seed=split.split_seed, query_images=split.benchmark_query_images,
                                distractor_images=None))
    return _from_split("held out by training",
                       f"the identities the training run held out of {data}: {split.open_set_query} query, "
                       f"{split.open_set_distractor} distractor (split seed {split.split_seed})",
                       held.query, held.distractor, split.split_seed,
                       dict(data=str(data), held_out_from_checkpoint=True, n_query=split.open_set_query,
                            n_distractor=split.open_set_distractor, seed=split.split_seed,
                            query_images=split.open_set_query_images,
                            distractor_images=split.open_set_distractor_images))


def lfw_protocol(root: str | Path, pairs_file: str | Path | None = None, query_min_images: int = 6,
                 query_images: int = 6, seed: int = DEFAULT_SPLIT_SEED, missing: str = "error") -> Protocol:
    """LFW identities and View 2 pairs on an aligned LFW folder (``<name>/<name>_NNNN.jpg``).

    ID rate: query = every person with >= ``query_min_images`` images, ``query_images`` of them (seeded);
    distractors = every image of everyone else, so FPR 1e-3 rests on millions of negatives. Open set:
    gallery = the first image of every person with >= 2 images, mated = their other images, non-mated =
    every single-image person. Pairs: ``pairs_file`` (View 2: 10 folds x 600), ``missing`` = "error" or
    "wrong" (a pair whose image is absent counts as a wrong answer)."""
    from facedata.lfw import pair_paths, parse_pairs

    folder = scan_face_folder(root)
    counts = np.bincount(folder.labels, minlength=len(folder.classes))
    held = identity_disjoint_split(folder, int((counts >= query_min_images).sum()), None, seed, query_images, None,
                                   min_query_images=query_min_images)
    q, d = Part.of(held.query), Part.of(held.distractor)
    names = np.array(folder.classes, dtype=object)[folder.labels].astype(str)
    multi = counts[folder.labels] >= 2
    first = np.r_[True, folder.labels[1:] != folder.labels[:-1]]  # scan order: each identity's first image
    sel = lambda m: Part([p for p, k in zip(folder.paths, m) if k], names[m])  # noqa: E731
    pairs = None
    if pairs_file is not None:
        parsed = parse_pairs(pairs_file)
        if len({p.fold for p in parsed}) < 2:  # 10-fold accuracy chooses each fold's threshold on the others
            raise MetricError(f"{pairs_file}: one fold of pairs (a View 1 file); LFW's protocol scores 10-fold "
                              "accuracy over people-disjoint folds: use View 2's pairs.txt (header '10 300')")
        pp, bad = pair_paths(parsed, root, missing=missing)
        pairs = PairSet(Path(pairs_file).name, [x for ab in pp for x in ab], np.array([p.same for p in parsed]),
                        np.array([p.fold for p in parsed]), bad)
    return Protocol("LFW", f"LFW at {root}: query = {len(np.unique(q.labels))} people with >= {query_min_images} "
                    f"images x {query_images}; distractors = the other {len(np.unique(d.labels))} people "
                    f"({len(d)} images); open set: {int((counts >= 2).sum())} people enrolled with one image, "
                    f"{int((counts == 1).sum())} single-image people as non-mated searches"
                    + (f"; pairs: {pairs.name} ({len(pairs.issame)} pairs)" if pairs else ""),
                    q, d, sel(multi & first), sel(multi & ~first), sel(~multi), pairs, seed,
                    dict(data=str(root), pairs=str(pairs_file) if pairs_file else None,
                         query_min_images=query_min_images, query_images=query_images, seed=seed, missing=missing),
                    audit_set="lfw")


def cfp_protocol(cfp_root: str | Path, aligned_dir: str | Path, kind: str = "FP", missing: str = "error") -> Protocol:
    """CFP's frontal-frontal (``kind="FF"``) or frontal-profile (``"FP"``) protocol on an aligned CFP folder
    (``NNN/{frontal,profile}/NN.jpg``: ``cfp_root/Data/Images`` prepared into ``aligned_dir``).

    Pairs: the 7,000 pairs of ``Protocol/Split/<kind>`` (10 folds x 350 same + 350 different; a pair's fold
    is its split folder). The people are halved: 001-250 are the known people, 251-500 the unknown ones.
    ID rate: query = people 001-250 with 6 images each (the seed's 6 per query identity; FF: frontal 01-06,
    FP: frontal 01-03 + profile 01-03), distractors = every image of the protocol's views (FF: the 10
    frontal; FP: 10 frontal + 4 profile) of people 251-500. Open set: people 001-250 enrolled with their
    first frontal image; searches are the protocol's probe images (FF: the other frontal images; FP: the 4
    profiles), mated for 001-250 and non-mated for 251-500. Labels are CFP's names, LFW-style (``50_Cent``).
    ``missing``: an aligned image that is absent stops with an error naming the files ("error"), or its pairs
    count as wrong answers ("wrong"; the other parts then use the images present)."""
    from facedata.cfp import CFP_KINDS, CFP_PEOPLE, cfp_names, expected_images, parse_split, prepare_command
    from facedata.lfw import MISSING_POLICIES

    if kind not in CFP_KINDS:
        raise MetricError(f"CFP protocol {kind!r} must be one of {CFP_KINDS}")
    if missing not in MISSING_POLICIES:
        raise MetricError(f"missing-image policy {missing!r} must be one of {MISSING_POLICIES}")
    root = Path(aligned_dir)
    how = f"align CFP into it: `{prepare_command(cfp_root, root)}`"
    if not root.is_dir():
        raise MetricError(f"{root}: aligned CFP folder not found; {how}")
    names = {pid: name.replace(" ", "_") for pid, name in cfp_names(cfp_root).items()}
    parsed = parse_split(cfp_root, kind)
    views = ("frontal",) if kind == "FF" else ("frontal", "profile")
    used = [rel for rel in expected_images() if rel.split("/")[1] in views]
    gone = sorted({rel for rel in used + [r for p in parsed for r in (p.path1, p.path2)]
                   if not (root / rel).is_file()})
    if gone and missing == "error":
        shown = "\n  ".join(str(root / g) for g in gone[:5])
        more = f"\n  ... and {len(gone) - 5} more" if len(gone) > 5 else ""
        raise MetricError(f"{len(gone)} image(s) of the CFP {kind} protocol are missing under {root} (expected "
                          f"NNN/frontal/NN.jpg and NNN/profile/NN.jpg; were they dropped by alignment? {how}, or "
                          f"count such pairs as wrong with --missing-pairs wrong):\n  {shown}{more}")
    absent = set(gone)
    paths = [root / r for p in parsed for r in (p.path1, p.path2)]
    pairs = PairSet(f"cfp_{kind.lower()}", paths, np.array([p.same for p in parsed]),
                    np.array([p.fold for p in parsed]),
                    np.array([p.path1 in absent or p.path2 in absent for p in parsed], dtype=bool))
    query_pick = {"FF": {"frontal": 6}, "FP": {"frontal": 3, "profile": 3}}[kind]
    half = CFP_PEOPLE // 2
    query, distractor, gallery, mated, nonmated = [], [], [], [], []
    for pid in sorted(names):
        present = [rel for rel in used if rel.startswith(pid + "/") and rel not in absent]
        frontal = [r for r in present if "/frontal/" in r]
        probes = [r for r in present if "/profile/" in r] if kind == "FP" else frontal[1:]
        if int(pid) > half:
            distractor += present
            nonmated += probes
            continue
        q = [r for r in present if int(r[-6:-4]) <= query_pick.get(r.split("/")[1], 0)]
        query += q if len(q) >= 2 else []  # a query person needs a same-person pair
        if frontal:
            gallery.append(frontal[0])
            mated += [r for r in probes if r != frontal[0]]
    part = lambda rels: Part([root / r for r in rels], np.array([names[r[:3]] for r in rels], dtype=str))  # noqa: E731
    q = part(query)
    return Protocol(f"CFP-{kind}", f"CFP {kind} at {root}: pairs = Protocol/Split/{kind} ({len(parsed)} pairs, 10 "
                    f"folds); query = {len(np.unique(q.labels))} people (001-{half:03d}) x 6 images "
                    f"({' + '.join(f'{v} {n}' for v, n in query_pick.items())}); distractors = people "
                    f"{half + 1:03d}-{CFP_PEOPLE:03d}, {len(distractor)} {' + '.join(views)} images; open set: people "
                    f"001-{half:03d} enrolled with one frontal image, "
                    f"{'profiles' if kind == 'FP' else 'the other frontal images'} as searches"
                    + (f"; {len(gone)} aligned images missing (their pairs count as wrong)" if gone else ""),
                    q, part(distractor), part(gallery), part(mated), part(nonmated), pairs, 42,
                    dict(data=str(root), cfp_root=str(cfp_root), kind=kind, missing=missing,
                         n_missing_images=len(gone)), audit_set="cfp")


def bin_pairs(path: str | Path) -> PairSet:
    """An insightface verification ``.bin`` (lfw.bin, cfp_fp.bin, agedb_30.bin) as a pair set, 10 folds."""
    from facedata.insightface_io import load_verification_bin

    vs = load_verification_bin(path)
    return PairSet(Path(path).name, [None] * (2 * len(vs)), np.asarray(vs.issame, bool), None, None,
                   [vs.image(i) for i in range(2 * len(vs))])


def pair_set(spec: str | Path, missing: str = "error") -> PairSet:
    """A verification pair set from ``"PAIRS_FILE@ALIGNED_DIR"`` (LFW-style pairs over an aligned folder)
    or an insightface ``.bin``. A one-fold file (View 1's pairsDevTest.txt) is split into 10 interleaved
    folds, so each fold holds same and different pairs. ``PairSet.name`` is the file's stem."""
    from facedata.lfw import pair_paths, parse_pairs

    text = str(spec)
    if text.endswith(".bin"):
        ps = bin_pairs(text)
        ps.name = Path(text).stem
        return ps
    if "@" not in text:
        raise MetricError(f"pair set {text!r}: expected PAIRS_FILE@ALIGNED_DIR (an LFW-style pairs file and the "
                          "aligned folder it names images in) or an insightface .bin")
    file, root = text.split("@", 1)
    parsed = parse_pairs(file)
    pp, bad = pair_paths(parsed, root, missing=missing)
    folds = np.array([p.fold for p in parsed])
    if len(np.unique(folds)) == 1:
        folds = np.arange(len(parsed)) % 10
    return PairSet(Path(file).stem, [x for ab in pp for x in ab], np.array([p.same for p in parsed]), folds, bad)


def is_lfw_view2(ps: PairSet) -> bool:
    """LFW View 2 (pairs.txt, lfw.bin): 6,000 pairs, for reporting only, never for choosing a model."""
    return len(ps.issame) == 6000 and (ps.name in ("pairs", "lfw") or
                                       (ps.folds is not None and len(np.unique(ps.folds)) == 10))


def check_not_trained_on(protocol: Protocol, model: str, spec: Mapping[str, Any]) -> None:
    """Refuse a protocol that scores identities the checkpoint trained on, naming them."""
    from facedata.compose import original_identity

    classes = spec.get("classes") or ()
    trained = set(classes) | {original_identity(c) for c in classes}  # a composed set's folders name sources too
    overlap = sorted(trained & protocol.identities())
    if overlap:
        shown = ", ".join(overlap[:8]) + (f" ... ({len(overlap)} in all)" if len(overlap) > 8 else "")
        raise MetricError(f"model {model!r} was trained on {len(overlap)} of the identities this evaluation "
                          f"scores ({shown}): its figures would not mean unseen people. Evaluate it on the "
                          f"identities its run held out (leave out --query-ids / --distractor-ids) or on other data")


# --- one model on one protocol --------------------------------------------------------------------------
@dataclass
class ModelReport:
    name: str
    idrate: IdRateResult
    flip: bool
    bootstrap95: dict[str, Any] | None = None
    open_set: OpenSetResult | None = None
    fixed_threshold: dict[str, Any] | None = None
    pairs: PairVerificationResult | None = None
    pairs_missing: int = 0
    # plot data, not written to results.json
    similarity: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    accuracy_curve: tuple[np.ndarray, np.ndarray, float] | None = field(default=None, repr=False)
    tsne: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def extra(self) -> dict[str, Any]:
        """Everything beyond the ID-rate table, as plain values (the report's JSON)."""
        e: dict[str, Any] = {"flip_tta": self.flip}
        if self.bootstrap95 is not None:
            e["bootstrap95"] = self.bootstrap95
        if self.open_set is not None:
            e["open_set"] = self.open_set.to_dict()
        if self.fixed_threshold is not None:
            e["fixed_threshold"] = self.fixed_threshold
        if self.pairs is not None:
            e["lfw"] = {**self.pairs.to_dict(), "missing_pairs_counted_wrong": self.pairs_missing}
        return e


def _embed_all(embedder, protocol: Protocol, cache_dir: Path | None, progress: bool) -> dict[Path, np.ndarray]:
    pair_paths = protocol.pairs.paths if protocol.pairs and protocol.pairs.images is None else []
    paths = sorted({p for part in protocol.parts() for p in part.paths}
                   | {p for p in pair_paths if p is not None and p.is_file()})  # a missing one: its pair counts wrong
    emb = embed_paths(embedder, paths, cache_dir, progress=progress)
    return dict(zip(paths, emb))


def _rows(table: dict[Path, np.ndarray], part: Part, dim: int) -> np.ndarray:
    return np.stack([table[p] for p in part.paths]) if len(part) else np.zeros((0, dim), np.float32)


def fixed_threshold(query: np.ndarray, labels: np.ndarray, seed: int) -> tuple[dict, tuple[np.ndarray, np.ndarray, float]]:
    """Choose the best-accuracy cosine-distance threshold on one half of the query images and report
    accuracy / precision / recall / F1 on the other half (the seed chose it on its test split). With >= 4
    query identities the halves hold different identities; with fewer, each identity's images are halved."""
    q = check_embeddings(query, "query embeddings")
    ids = np.unique(labels)
    rng = np.random.default_rng(seed)
    if len(ids) >= 4:
        in_a = np.isin(labels, rng.choice(ids, len(ids) // 2, replace=False))
    else:
        in_a = np.zeros(len(q), bool)
        for i in ids:
            rows = rng.permutation(np.flatnonzero(labels == i))
            in_a[rows[::2]] = True

    # normalised and scored in float64 (q is float32): the threshold falls between neighbouring distances
    q64 = l2_normalize(np.asarray(query, np.float64), "query embeddings")

    def pairs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sim, same, _ = upper_pair_scores(q64[mask], labels[mask])
        return 1.0 - sim, same  # cosine distance

    da, ya = pairs(in_a)
    db, yb = pairs(~in_a)
    if not (ya.any() and (~ya).any() and yb.any() and (~yb).any()):
        raise MetricError("fixed-threshold verification needs same- and different-identity pairs on both halves")
    t, _ = best_threshold(da, ya)
    tb, accb = accuracy_curve(db, yb)
    return verification_at_threshold(db, yb, t), (tb, accb, t)


def similarity_sample(query: np.ndarray, labels: np.ndarray, distractors: np.ndarray) -> dict[str, np.ndarray]:
    """Score samples for the similarity histogram: every query pair, and query x the first distractors
    (about 200,000 scores: a plot needs no 10^10 scores in memory)."""
    q = check_embeddings(query, "query")
    sim, same, _ = upper_pair_scores(q, labels)
    out = {"pos": sim[same], "neg_qq": sim[~same]}
    if len(distractors):
        d = check_embeddings(distractors, "distractors")
        out["neg_qd"] = similarity_matrix(q, d[: max(1, 200_000 // len(q))]).ravel()
    return out


def score_pairs(pairs: PairSet, emb1: np.ndarray, emb2: np.ndarray) -> PairVerificationResult:
    """k-fold verification of a pair set; a pair with a missing image counts as wrong in every figure."""
    ok = np.ones(len(pairs.issame), bool) if pairs.missing is None else ~pairs.missing
    return pair_verification(emb1, emb2, pairs.issame, pairs.folds, counted_wrong=~ok)


def score_embeddings(name: str, q: np.ndarray, ql: np.ndarray, d: np.ndarray, dl: np.ndarray, *, flip: bool = False,
                     open_set: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
                     pairs: tuple[PairSet, np.ndarray] | None = None, seed: int = DEFAULT_SPLIT_SEED, bootstrap: int = 0,
                     device: str | None = None) -> ModelReport:
    """Every figure from embeddings: the ID-rate table (query ``q`` / ``ql``, distractors ``d`` / ``dl``),
    ``open_set`` = (gallery, gallery labels, mated, mated labels, non-mated), ``pairs`` = (set, embeddings
    of its images in order)."""
    rep = ModelReport(name, idrate(q, ql, d, device=device), flip)
    if bootstrap:
        rep.bootstrap95 = bootstrap_idrate(q, ql, d, dl, n=bootstrap, seed=seed)
    if open_set is not None and len(open_set[0]) and len(open_set[4]):
        g, gl, m, ml, nm = open_set
        probes = np.concatenate([m, nm])
        labels = np.concatenate([ml.astype(str), np.full(len(nm), "\0non-mated")])
        rep.open_set = open_set_identification(g, gl, probes, labels, fpir=OPEN_SET_FPIR)
    try:
        rep.fixed_threshold, rep.accuracy_curve = fixed_threshold(q, ql, seed)
    except MetricError as exc:
        rep.fixed_threshold = {"skipped": str(exc)}
    if pairs is not None:
        ps, e = pairs
        rep.pairs, rep.pairs_missing = score_pairs(ps, e[0::2], e[1::2]), ps.n_missing
    keep = np.isin(ql, np.unique(ql)[:10])
    rep.tsne = (check_embeddings(q[keep], "query"), ql[keep])
    rep.similarity = similarity_sample(q, ql, d)
    return rep


def evaluate_model(embedder, protocol: Protocol, *, bootstrap: int = 0, cache_dir: Path | None = None,
                   progress: bool = True, device: str | None = None) -> ModelReport:
    """Every figure of one embedder on one protocol (its images embedded once, cached)."""
    table = _embed_all(embedder, protocol, cache_dir, progress)
    dim = embedder.embedding_size
    rows = lambda part: _rows(table, part, dim)  # noqa: E731
    open_set = None
    if protocol.gallery is not None:
        open_set = (rows(protocol.gallery), protocol.gallery.labels, rows(protocol.mated), protocol.mated.labels,
                    rows(protocol.nonmated))
    pairs = None
    if protocol.pairs is not None:
        ps = protocol.pairs
        # a missing image gets a placeholder row; its pair is counted as wrong whatever it scores
        e = embedder(ps.images) if ps.images is not None else \
            np.stack([table.get(p, np.ones(dim, np.float32)) if p is not None else np.ones(dim, np.float32)
                      for p in ps.paths])
        pairs = (ps, e)
    return score_embeddings(embedder.name, rows(protocol.query), protocol.query.labels, rows(protocol.distractor),
                            protocol.distractor.labels, flip=embedder.flip_tta, open_set=open_set, pairs=pairs,
                            seed=protocol.seed, bootstrap=bootstrap, device=device)


# --- the report --------------------------------------------------------------------------------------------
@dataclass
class Report:
    protocol: Protocol
    models: dict[str, ModelReport]
    settings: dict[str, Any] = field(default_factory=dict)

    def table_markdown(self) -> str:
        from .report import markdown_table

        return markdown_table({k: m.idrate for k, m in self.models.items()}, self.extras())

    def extras(self) -> dict[str, dict]:
        return {k: m.extra() for k, m in self.models.items()}

    def write(self, out_dir: Path) -> list[Path]:
        """table.md, table.csv, results.json and the plots in ``out_dir``."""
        from .plots import plot_accuracy_vs_threshold, plot_similarity, plot_tsne
        from .report import write_report

        meta = {"protocol": self.protocol.name, "description": self.protocol.description,
                "protocol_settings": self.protocol.settings, **self.settings}
        written = write_report({k: m.idrate for k, m in self.models.items()}, out_dir, meta, self.extras())
        curves = {k: m.accuracy_curve for k, m in self.models.items() if m.accuracy_curve is not None}
        chosen = {k: 1.0 - c[2] for k, c in curves.items()}  # the verification threshold, as a cosine similarity
        written.append(plot_similarity({k: m.similarity for k, m in self.models.items()}, out_dir / "similarity.png",
                                       chosen))
        if curves:
            written.append(plot_accuracy_vs_threshold(curves, out_dir / "accuracy_threshold.png"))
        tsne = {k: m.tsne for k, m in self.models.items() if m.tsne is not None}
        if tsne and all(len(v[0]) >= 5 for v in tsne.values()):
            written.append(plot_tsne(tsne, out_dir / "tsne.png", seed=self.protocol.seed))
        return written

    def thresholds(self, fpr: float) -> dict[str, dict[str, Any]]:
        """Each model's cosine threshold at ``fpr`` on this protocol's negatives, as threshold records."""
        out = {}
        for name, m in self.models.items():
            r = m.idrate
            pt = next((p for p in r.points if p.target_fpr == fpr), None)
            if pt is None:
                raise MetricError(f"FPR {fpr} is not one of the table's {[p.target_fpr for p in r.points]}")
            if pt.threshold is None:
                raise MetricError(f"{name}: FPR {fpr} is below 1 / {r.n_neg} negative pairs on this data")
            out[name] = record(pt.threshold, fpr, m.flip, tpr=pt.tpr, data=self.protocol.description,
                               n_neg=r.n_neg, date=dt.date.today().isoformat())
        return out


def write_thresholds(report: Report, fpr: float, path: Path) -> Path:
    """Merge each model's threshold at ``fpr`` (for its flip setting) into a thresholds file."""
    table = load_measured(path)
    for name, rec in report.thresholds(fpr).items():
        table[name] = upsert(table.get(name, []), rec)
    write_bytes_atomic(json.dumps(table, indent=1).encode(), path)
    return path


def audit_warnings(embedders: Sequence, protocol: Protocol) -> list[str]:
    """One line per checkpoint model whose training set's identity-overlap audit did not cover the people this
    protocol scores (facedata.audit.coverage_warning), printed by the command lines before the figures."""
    from facedata.audit import coverage_warning

    if protocol.audit_set is None:
        return []
    out = []
    for e in embedders:
        w = coverage_warning(e.spec, protocol.audit_set) if e.checkpoint is not None else None
        if w:
            out.append(f"warning: model {e.name!r}: {w}")
    return out


def evaluate(embedders: Sequence, protocol: Protocol, *, bootstrap: int = 0, cache_dir: Path | None = None,
             progress: bool = True, device: str | None = None) -> Report:
    """Every model on the same protocol. A checkpoint model is refused if the protocol scores identities it
    trained on (see :func:`check_not_trained_on`); one whose training audit did not cover these people is
    warned about on stderr (:func:`audit_warnings`)."""
    import sys

    names = [e.name for e in embedders]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # the report keys models by name: a second one would silently replace the first
        raise MetricError(f"two models are named {twice[0]!r}; give each model its own name")
    for emb in embedders:
        check_not_trained_on(protocol, emb.name, emb.spec)
    for line in audit_warnings(embedders, protocol):
        print(line, file=sys.stderr)
    models = {e.name: evaluate_model(e, protocol, bootstrap=bootstrap, cache_dir=cache_dir, progress=progress,
                                     device=device) for e in embedders}
    return Report(protocol, models, {"bootstrap": bootstrap})


def evaluate_embeddings(sets: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], seed: int = DEFAULT_SPLIT_SEED,
                        bootstrap: int = 0, device: str | None = None) -> Report:
    """The same figures from precomputed embeddings: name -> (query, query labels, distractors, labels).
    Open set as for a folder: the first image of each query identity enrolled, the others mated."""
    models = {}
    for name, (q, ql, d, dl) in sets.items():
        order, first = first_images(ql)
        qq, lab = q[order], np.asarray(ql)[order].astype(str)
        open_set = (qq[first], lab[first], qq[~first], lab[~first], d) if len(d) else None
        models[name] = score_embeddings(name, q, ql, d, dl, open_set=open_set, seed=seed, bootstrap=bootstrap,
                                        device=device)
    proto = Protocol("embeddings", "precomputed embeddings (.npz)", Part([], np.zeros(0, str)),
                     Part([], np.zeros(0, str)), seed=seed)
    return Report(proto, models, {"bootstrap": bootstrap})
