"""The seed project's ID-rate protocol, computed in chunks so that it scales to millions of distractors.

Query identities (several images each) and distractor identities (never trained on). Positive pairs:
same-identity query pairs. Negative pairs: cross-identity query pairs and every query x distractor pair.
Scores are cosine similarities of L2-normalised embeddings (``scoring``). For each FPR, at most
k = int(FPR * N_neg) negatives may be accepted: the TPR is that of the scores above the (k+1)-th largest
negative (``metrics.operating_point``: ties there are rejected together, so the FPR reached, reported beside
the TPR, never exceeds the target); k = 0 is reported as not resolvable.

Up to ``exact_limit`` negatives everything is exact (all scores kept, computed by :func:`protocol_scores` as
the bootstrap's are, so both see the same ties). Beyond it, negatives stream on ``device``:
the smallest FPRs stay exact through a streaming top-k (up to ``topk_budget`` scores), the others and
the ROC-AUC come from a fine histogram, each with its largest possible error stated.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np
import torch

from .metrics import (SEED_FPRS, MetricError, allowed_negatives, kfold_accuracy, operating_point, pair_distance,
                      roc_auc, roc_curve, tpr_at_fpr)
from .scoring import l2_normalize, similarity_matrix
from .streaming import ScoreHistogram, StreamingTopK, histogram_auc


# The streaming top-k's floor is raised from the histogram after this many scores (a cumulative sum over its
# bins, about 5 ms, against about 0.2 s to score them)
FLOOR_EVERY_SCORES = 1 << 24


@dataclass
class RatePoint:
    target_fpr: float
    tpr: float | None  # None: FPR below 1 / N_neg, not resolvable
    threshold: float | None
    exact: bool
    tpr_error: float = 0.0  # largest possible |reported - exact| (histogram path only)
    fpr: float | None = None  # the FPR reached at ``threshold``, never above target_fpr; None: not resolvable


@dataclass
class IdRateResult:
    n_query: int
    n_query_identities: int
    n_distractor: int
    n_pos: int
    n_neg: int
    auc: float
    auc_error: float  # 0 when exact
    points: list[RatePoint]
    roc_fpr: np.ndarray = field(repr=False)
    roc_tpr: np.ndarray = field(repr=False)
    pos_scores: np.ndarray = field(repr=False)

    def tpr(self, fpr: float) -> float | None:
        for p in self.points:
            if p.target_fpr == fpr:
                return p.tpr
        raise KeyError(f"FPR {fpr} not computed; computed: {[p.target_fpr for p in self.points]}")

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("roc_fpr", "roc_tpr", "pos_scores")}
        return d


def check_embeddings(emb: np.ndarray, name: str) -> np.ndarray:
    """A non-empty (N, D) set, L2-normalised by ``scoring.l2_normalize`` (NaN, inf or zero rows: an error naming
    the first)."""
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or len(emb) == 0:
        raise MetricError(f"{name}: expected a non-empty (N, D) array, got shape {emb.shape}")
    return l2_normalize(emb, name)


def check_query_labels(labels: np.ndarray, n: int, names: list[str] | None = None,
                       has_distractors: bool = False) -> np.ndarray:
    """Labels of the query set: each identity needs >= 2 images (a positive pair), and the negatives
    need >= 2 identities, or one with distractors (training validates one held-out person that way)."""
    labels = np.asarray(labels)
    if len(labels) != n:
        raise MetricError(f"{n} query embeddings but {len(labels)} labels")
    ids, counts = np.unique(labels, return_counts=True)
    if len(ids) < (1 if has_distractors else 2):
        raise MetricError(f"the query set needs >= 2 identities (cross-identity negatives) or distractors, "
                          f"got {len(ids)} identities and no distractors")
    single = ids[counts < 2]
    if len(single):
        who = names[int(single[0])] if names is not None else single[0].item()
        raise MetricError(f"query identity {who!r} has one image, so no positive pair ({len(single)} such "
                          "identities); give query identities >= 2 images or move them to the distractors")
    return labels


def idrate(query: np.ndarray, query_labels: np.ndarray, distractors: np.ndarray | None = None,
           fprs: tuple[float, ...] = SEED_FPRS, device: str | None = None, chunk: int = 8192,
           exact_limit: int = 20_000_000, topk_budget: int = 1 << 25, hist_bins: int = 1 << 20) -> IdRateResult:
    """The ID-rate table for one model (see the module docstring)."""
    q = check_embeddings(query, "query embeddings")
    d = check_embeddings(distractors, "distractor embeddings") if distractors is not None and len(distractors) else \
        np.zeros((0, q.shape[1]), np.float32)
    labels = check_query_labels(query_labels, len(q), has_distractors=len(d) > 0)
    if d.shape[1] != q.shape[1]:
        raise MetricError(f"query embeddings are {q.shape[1]}-D but distractors {d.shape[1]}-D")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    nq, nd = len(q), len(d)
    _, counts = np.unique(labels, return_counts=True)
    n_pos = int((counts * (counts - 1) // 2).sum())
    n_neg = nq * (nq - 1) // 2 - n_pos + nq * nd

    label_ids = np.unique(labels, return_inverse=True)[1].ravel()  # any label type -> 0..n_ids-1
    if n_neg <= exact_limit:  # the scores the bootstrap resamples, by the same function: the same ties
        s_qq, same, _, s_qd = protocol_scores(q, label_ids, d, device, chunk)
        pos, neg = s_qq[same], np.concatenate([s_qq[~same], s_qd.ravel()])
        pts = [RatePoint(p.target_fpr, p.tpr if p.resolvable else None, p.threshold, True,
                         fpr=p.fpr if p.resolvable else None) for p in tpr_at_fpr(pos, neg, fprs)]
        fpr_c, tpr_c, _ = roc_curve(pos, neg)
        return IdRateResult(nq, len(counts), nd, n_pos, n_neg, roc_auc(pos, neg), 0.0, pts, fpr_c, tpr_c, pos)

    label_ids = label_ids.astype(np.int64)
    pos_parts: list[np.ndarray] = []
    ks = {f: allowed_negatives(f, n_neg) for f in fprs}
    needed = {f: min(k + 1, n_neg) for f, k in ks.items() if k >= 1}  # the rule reads the (k+1)-th largest
    k_top = max([n for n in needed.values() if n <= topk_budget], default=0)
    top = StreamingTopK(k_top)
    hist = ScoreHistogram(hist_bins)

    since_floor = 0  # scores counted since the top-k's floor was last raised from the histogram

    def offer(candidates: np.ndarray | None, counted: int) -> None:
        nonlocal since_floor
        if candidates is None:
            return
        top.update(candidates)
        since_floor += counted
        if since_floor >= FLOOR_EVERY_SCORES:  # the bins place the k-th largest so far: nothing below it can enter
            top.raise_floor(hist.floor_below(top.k))
            since_floor = 0

    for rows, s, upper in score_blocks(q, d, dev, chunk):
        above = top.floor if top.k > 0 else None  # one pass counts the scores and picks the top-k's candidates
        if upper is None:  # query x distractor: every score a negative
            offer(hist.update(s, above), s.numel())
            continue
        # query x query: pairs j > i, same identity kept as positives, the others counted as negatives
        pos_block, candidates = hist.update_pairs(s, rows.start, label_ids, above)
        pos_parts.append(pos_block)
        offer(candidates, s.numel() // 2)

    pos = np.concatenate(pos_parts) if pos_parts else np.zeros(0, np.float32)
    pos_h = ScoreHistogram(hist_bins)  # the same binning as the negatives, so ties are ties
    pos_h.update(torch.from_numpy(pos))
    pos_hist = pos_h.counts
    auc, auc_err = histogram_auc(pos_hist, hist.counts)
    top_asc = top.sorted_desc()[::-1].copy()
    neg_from_top = np.cumsum(hist.counts[::-1])  # negatives in the top b bins
    pos_sorted = np.sort(pos)
    pts = []
    for f in fprs:
        k = ks[f]
        if k < 1:
            pts.append(RatePoint(f, None, None, True))
        elif needed[f] <= len(top_asc):
            p = operating_point(pos_sorted, top_asc, n_neg, f)
            pts.append(RatePoint(f, p.tpr, p.threshold, True, fpr=p.fpr))
        else:
            # The (k+1)-th largest negative lies in bin b: accepting every bin above it (threshold = b's upper edge)
            # is a real operating point at FPR <= target; the exact one accepts part of bin b at most.
            b = hist.bins - 1 - int(np.searchsorted(neg_from_top, k + 1))
            lo, hi = hist.edge(b), hist.edge(b + 1)
            at_lo = 1 - np.searchsorted(pos_sorted, lo, "left") / len(pos)
            at_hi = 1 - np.searchsorted(pos_sorted, hi, "left") / len(pos)
            neg_above = int(neg_from_top[hist.bins - 2 - b]) if b < hist.bins - 1 else 0
            pts.append(RatePoint(f, float(at_hi), float(hi), False, float(at_lo - at_hi), fpr=neg_above / n_neg))
    # ROC from the histograms: accept bins from the top down.
    tp = np.r_[0, np.cumsum(pos_hist[::-1])] / len(pos)
    fp = np.r_[0, neg_from_top] / n_neg
    keep = np.r_[True, np.diff(fp) + np.diff(tp) > 0]
    return IdRateResult(nq, len(counts), nd, n_pos, n_neg, auc, auc_err, pts, fp[keep], tp[keep], pos)


# --- LFW-style pair verification ----------------------------------------------------------------------
@dataclass
class PairVerificationResult:
    n_pairs: int
    accuracy_mean: float  # k-fold: threshold chosen on the other folds
    accuracy_std: float
    fold_accuracy: list[float]
    fold_threshold: list[float]  # cosine distance thresholds
    tar_at_far_1e3: float | None  # None: fewer than 1,000 different-person pairs
    auc: float
    achieved_far_1e3: float | None = None  # the FAR reached at that TAR's threshold, <= 1e-3

    def to_dict(self) -> dict:
        return asdict(self)


def verification_distance(emb1: np.ndarray, emb2: np.ndarray, issame: np.ndarray,
                          counted_wrong: np.ndarray | None = None) -> np.ndarray:
    """Cosine distances of pairs of L2-normalised embeddings. A pair in ``counted_wrong`` (an image is missing)
    gets a distance no threshold can get right: 3 for a same pair, -1 for a different one (cosine distance lies
    in [0, 2])."""
    a, b = check_embeddings(emb1, "first images of the pairs"), check_embeddings(emb2, "second images of the pairs")
    y = np.asarray(issame, bool)
    if not (len(a) == len(b) == len(y)):
        raise MetricError(f"{len(a)} and {len(b)} embeddings for {len(y)} pairs")
    d = pair_distance(a, b, "cosine")
    if counted_wrong is not None and np.any(counted_wrong):
        d = np.where(np.asarray(counted_wrong, bool), np.where(y, 3.0, -1.0), d)
    return d


def pair_folds(n_pairs: int, folds: np.ndarray | None, n_folds: int = 10) -> np.ndarray:
    """Each pair's fold: ``folds`` as given, else ``n_folds`` equal consecutive folds (LFW View 2, ``.bin``)."""
    if folds is not None:
        f = np.asarray(folds)
        if len(f) != n_pairs:
            raise MetricError(f"{len(f)} fold ids for {n_pairs} pairs")
        return f
    if n_pairs % n_folds:
        raise MetricError(f"{n_pairs} pairs do not split into {n_folds} equal folds; pass folds")
    return np.repeat(np.arange(n_folds), n_pairs // n_folds)


def pair_verification(emb1: np.ndarray, emb2: np.ndarray, issame: np.ndarray, folds: np.ndarray | None = None,
                      n_folds: int = 10, counted_wrong: np.ndarray | None = None) -> PairVerificationResult:
    """LFW View 2 (or an insightface ``.bin``): pairs in order, ``n_folds`` equal consecutive folds unless
    ``folds`` gives each pair's fold. Cosine distance of L2-normalised embeddings (flip-summed if the
    embedder used flip TTA). Pairs in ``counted_wrong`` (an image is missing) stay in every figure as
    wrong answers: a same pair scores below, a different pair above, any possible threshold."""
    d = verification_distance(emb1, emb2, issame, counted_wrong)
    y = np.asarray(issame, bool)
    if y.all() or not y.any():
        raise MetricError("pairs must include both same-person and different-person pairs")
    k = kfold_accuracy(d, y, pair_folds(len(y), folds, n_folds))
    sim = 1.0 - d
    pt = tpr_at_fpr(sim[y], sim[~y], (1e-3,))[0]
    return PairVerificationResult(len(y), k.mean, k.std, k.fold_accuracy, k.fold_threshold,
                                  pt.tpr if pt.resolvable else None, roc_auc(sim[y], sim[~y]),
                                  pt.fpr if pt.resolvable else None)


# --- open-set identification (NIST FRVT definitions) --------------------------------------------------
@dataclass
class OpenSetResult:
    n_gallery_identities: int
    n_mated: int
    n_nonmated: int
    rank1: float  # closed-set identification rate of mated searches
    rank5: float
    points: list[dict]  # per target FPIR: threshold, FPIR reached, DIR (= 1 - FNIR), or None if not resolvable

    def to_dict(self) -> dict:
        return asdict(self)


def open_set_identification(gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray,
                            probe_labels: np.ndarray, fpir: tuple[float, ...] = (0.1, 0.01, 0.001)) -> OpenSetResult:
    """Searches of probes against a gallery of enrolled identities, scored per identity by the best
    cosine similarity over its enrolment images. Mated probes have their identity in the gallery.

    FPIR(T): share of non-mated searches whose top score >= T (per search, not per comparison).
    FNIR(T): share of mated searches whose mate is not rank 1 with score >= T. DIR = 1 - FNIR.
    T for a target FPIR: ``metrics.operating_point`` with the non-mated top scores as negatives and the rank-1
    mates' scores as positives (at most int(FPIR * N_nonmated) non-mated searches accepted, ties rejected
    together); ``fpir`` is the FPIR reached."""
    g = check_embeddings(gallery, "gallery embeddings")
    p = check_embeddings(probes, "probe embeddings")
    gl, pl = np.asarray(gallery_labels), np.asarray(probe_labels)
    if len(gl) != len(g) or len(pl) != len(p):
        raise MetricError(f"gallery: {len(g)} embeddings, {len(gl)} labels; probes: {len(p)} embeddings, {len(pl)} labels")
    ids = np.unique(gl)
    if len(ids) < 2:
        raise MetricError(f"the gallery needs >= 2 identities, got {len(ids)}")
    sim = similarity_matrix(p, g)
    per_id = np.stack([sim[:, gl == i].max(1) for i in ids], axis=1)  # (probes, identities)
    mated = np.isin(pl, ids)
    if not mated.any() or mated.all():
        raise MetricError(f"need mated and non-mated probes; got {int(mated.sum())} mated, {int((~mated).sum())} non-mated")
    order = np.argsort(-per_id, axis=1)
    top_score = per_id[np.arange(len(p)), order[:, 0]]
    top_id = ids[order[:, 0]]
    mate_rank = np.array([int(np.flatnonzero(ids[order[i]] == pl[i])[0]) if mated[i] else -1 for i in range(len(p))])
    rank1 = float(np.mean(mate_rank[mated] == 0))
    rank5 = float(np.mean(mate_rank[mated] < 5))
    nonmated_top = np.sort(top_score[~mated])
    hits = np.sort(top_score[mated][top_id[mated] == pl[mated]])  # mated searches with their mate at rank 1
    points = []
    for f in fpir:
        if allowed_negatives(f, len(nonmated_top)) < 1:
            points.append({"target_fpir": f, "threshold": None, "fpir": None, "dir": None})
            continue
        if not len(hits):  # no mate found at rank 1: DIR 0 whatever the threshold, and none need accept anything
            points.append({"target_fpir": f, "threshold": None, "fpir": 0.0, "dir": 0.0})
            continue
        pt = operating_point(hits, nonmated_top, len(nonmated_top), f)
        points.append({"target_fpir": f, "threshold": pt.threshold, "fpir": pt.fpr,
                       "dir": pt.tpr * len(hits) / int(mated.sum())})
    return OpenSetResult(len(ids), int(mated.sum()), int((~mated).sum()), rank1, rank5, points)


# --- bootstrap over identities ------------------------------------------------------------------------
class _SortedNegatives:
    """Negative scores sorted once, with the two identities of each negative pair, so a bootstrap resample
    costs two gathers from small weight tables and one cumulative sum, not a sort (or a random gather) of
    millions of scores. The weight of a negative pair is ``w_left[left] * w_right[right]``."""

    def __init__(self, pos: np.ndarray, neg: np.ndarray, left: np.ndarray | None = None,
                 right: np.ndarray | None = None) -> None:
        order = np.argsort(neg, kind="mergesort")
        self.ns = neg[order]
        self.left = None if left is None else left[order].astype(np.int32)
        self.right = None if right is None else right[order].astype(np.int32)
        self.lo = np.searchsorted(self.ns, pos, "left")  # negatives below each positive
        self.hi = np.searchsorted(self.ns, pos, "right")
        self.pos = pos

    def weights(self, w_left: np.ndarray, w_right: np.ndarray) -> np.ndarray:
        """Per-pair weights in sorted order from per-identity weights."""
        return w_left[self.left] * w_right[self.right]

    def auc(self, wp: np.ndarray, wn_sorted: np.ndarray, cw: np.ndarray | None = None) -> float:
        cw = np.r_[0.0, np.cumsum(wn_sorted)] if cw is None else cw
        below, tie = cw[self.lo], cw[self.hi] - cw[self.lo]
        return float((wp * (below + 0.5 * tie)).sum() / (wp.sum() * cw[-1]))

    def tpr(self, wp: np.ndarray, wn_sorted: np.ndarray, fpr: float, cw: np.ndarray | None = None) -> float | None:
        """``metrics.operating_point``'s TPR on integer-weighted scores, as if each score were repeated ``weight``
        times: at most k = int(FPR x total weight) of negative weight accepted, so only scores above the
        (k+1)-th largest negative (counted by weight) are."""
        cw = np.r_[0.0, np.cumsum(wn_sorted)] if cw is None else cw
        total = cw[-1]
        k = allowed_negatives(fpr, total)
        if k < 1:
            return None
        # the lowest cut that leaves at most k of weight above it: ns[i:] weighs total - cw[i] <= k
        i = int(np.searchsorted(cw, total - k, "left"))
        if i == 0:  # k covers every negative: everything is accepted
            return 1.0
        return float(wp[self.pos > self.ns[i - 1]].sum() / wp.sum())


def score_blocks(q: np.ndarray, d: np.ndarray, device: torch.device,
                 chunk: int = 8192) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor | None]]:
    """The ID-rate protocol's scores in blocks, the one way both its tables compute them: ``rows`` query rows
    against every query (``upper`` marks the pairs i < j), then every query against ``chunk`` distractors at a
    time (``upper`` None). Yields (the query rows, the score block, upper)."""
    nq = len(q)
    qt = torch.from_numpy(np.ascontiguousarray(q)).to(device)
    dt = torch.from_numpy(np.ascontiguousarray(d)).to(device)
    step = max(1, min(nq, chunk * 64 // max(1, nq)))  # query-vs-query block: step x nq scores
    with torch.inference_mode():
        cols = torch.arange(nq, device=device)[None, :]
        for i in range(0, nq, step):
            rows = slice(i, min(i + step, nq))
            yield rows, similarity_matrix(qt[rows], qt), cols > torch.arange(i, rows.stop, device=device)[:, None]
        for j in range(0, len(d), chunk):
            yield slice(0, nq), similarity_matrix(qt, dt[j:j + chunk]), None


def protocol_scores(q: np.ndarray, qi: np.ndarray, d: np.ndarray, device: str | None = None,
                    chunk: int = 8192) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray]:
    """Every pair score of the ID-rate protocol (unit rows ``q`` with identity indices ``qi``, distractors ``d``):
    (query pair scores i < j in ``np.triu_indices`` order, same identity?, their (i, j), the query x distractor
    matrix). The one computation of the exact table and of its bootstrap: scores of a collapsed model differ only
    in their last bits, and two computations (another matrix kernel, other blocks) would break their ties
    differently, giving the bootstrap an AUC the exact table does not have. The blocks are
    :func:`score_blocks`', as in the streaming table, so both tables score alike and earlier figures keep their
    bits."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    qq_parts: list[np.ndarray] = []
    qd_parts: list[np.ndarray] = []
    for _, s, upper in score_blocks(q, d, dev, chunk):
        if upper is None:
            qd_parts.append(s.cpu().numpy())
        else:
            qq_parts.append(s[upper].cpu().numpy())  # row-major: np.triu_indices order
    iu = np.triu_indices(len(q), k=1)
    s_qq = np.concatenate(qq_parts) if qq_parts else np.zeros(0, q.dtype)
    s_qd = np.concatenate(qd_parts, axis=1) if qd_parts else np.zeros((len(q), 0), q.dtype)
    return s_qq, qi[iu[0]] == qi[iu[1]], iu, s_qd


def idrate_pairs(q: np.ndarray, qi: np.ndarray, d: np.ndarray, di: np.ndarray,
                 n_qids: int) -> tuple[_SortedNegatives, np.ndarray]:
    """Every pair of the ID-rate protocol with the identities it involves (``q`` / ``d`` L2-normalised, ``qi`` /
    ``di`` identity indices). Positives: same-identity query pairs; negatives: cross-identity query pairs, then
    query x distractor pairs, whose right identity is the distractor's index offset by ``n_qids`` (one weight
    table serves both). Returns the sorted negatives and each positive's query identity."""
    s_qq, same, iu, s_qd = protocol_scores(q, qi, d)
    a, b = qi[iu[0]], qi[iu[1]]
    neg = np.concatenate([s_qq[~same], s_qd.ravel()])
    left = np.concatenate([a[~same], np.repeat(qi, len(d))])
    right = np.concatenate([b[~same], n_qids + np.tile(di, len(q))])
    return _SortedNegatives(s_qq[same], neg, left, right), a[same]


def identity_draws(n_q: int, n_d: int, n: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n`` seeded resamples of identities with replacement, in order from one generator: per draw, how often
    each of ``n_q`` query and ``n_d`` distractor identities was drawn. The same seed gives the same draws."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        wq = np.bincount(rng.integers(0, n_q, n_q), minlength=n_q).astype(np.float64)
        wd = np.bincount(rng.integers(0, n_d, n_d), minlength=n_d).astype(np.float64) if n_d else np.zeros(0)
        yield wq, wd


def idrate_figures(pairs: tuple[_SortedNegatives, np.ndarray], wq: np.ndarray, wd: np.ndarray,
                   fprs: tuple[float, ...]) -> dict[str, float | None] | None:
    """``auc`` and ``tpr@<fpr>`` (None: not resolvable) of :func:`idrate_pairs`' pairs weighted by identity
    weights ``wq`` / ``wd``; None when the weights leave no positive or no negative pair."""
    sn, pos_id = pairs
    wp = wq[pos_id]
    wn = sn.weights(wq, np.concatenate([wq, wd]))
    cw = np.r_[0.0, np.cumsum(wn)]
    if wp.sum() == 0 or cw[-1] == 0:
        return None
    return {"auc": sn.auc(wp, wn, cw), **{f"tpr@{f:g}": sn.tpr(wp, wn, f, cw) for f in fprs}}


def bootstrap_idrate(query: np.ndarray, query_labels: np.ndarray, distractors: np.ndarray | None,
                     distractor_labels: np.ndarray | None = None, n: int = 200, seed: int = 0,
                     fprs: tuple[float, ...] = (1e-2, 1e-3), level: float = 0.95,
                     max_pairs: int = 20_000_000, workers: int = 2) -> dict[str, tuple[float | None, float | None]]:
    """Percentile confidence intervals of ROC-AUC and TPR@FPR, resampling query and distractor
    identities with replacement (pairs are not independent; identities are). An identity drawn w times
    weighs its pairs w times (w_a * w_b for a pair of identities), which is the resampled set without
    the meaningless pairs between two copies of one identity. The resamples are drawn in order from one
    seeded generator (:func:`identity_draws`) and scored by ``workers`` threads (numpy's gathers and sums
    release the GIL; each thread holds about 3 x 8 bytes per pair): the intervals do not depend on ``workers``."""
    q = check_embeddings(query, "query embeddings")
    ql = check_query_labels(query_labels, len(q))
    d = check_embeddings(distractors, "distractor embeddings") if distractors is not None and len(distractors) else \
        np.zeros((0, q.shape[1]), np.float32)
    dl = np.arange(len(d)) if distractor_labels is None else np.asarray(distractor_labels)
    if len(q) * (len(q) + len(d)) > 2 * max_pairs:
        raise MetricError(f"bootstrap keeps every pair score; {len(q)} queries x {len(d)} distractors exceed "
                          f"{max_pairs:,} pairs: bootstrap a subset of distractors")
    qids, qi = np.unique(ql, return_inverse=True)
    dids, di = np.unique(dl, return_inverse=True)
    pairs = idrate_pairs(q, qi.ravel(), d, di.ravel(), len(qids))
    draws = list(identity_draws(len(qids), len(dids), n, seed))

    def score(draw: tuple[np.ndarray, np.ndarray]) -> dict[str, float | None] | None:
        return idrate_figures(pairs, *draw, fprs)

    if workers > 1 and n > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(workers, n)) as pool:
            scored = list(pool.map(score, draws))
    else:
        scored = [score(d) for d in draws]
    samples: dict[str, list[float]] = {"auc": [], **{f"tpr@{f:g}": [] for f in fprs}}
    for one in scored:
        for key, value in (one or {}).items():
            if value is not None:
                samples[key].append(value)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {k: (float(np.percentile(v, lo)), float(np.percentile(v, hi))) if v else (None, None)
            for k, v in samples.items()}
