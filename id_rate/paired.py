"""Paired comparisons of two models scored on the SAME pairs or the SAME query identities.

Two models' figures on one set are not independent (they share every image), so comparing their
intervals side by side wastes power and can mislead. These tests use the pairing:

* pair verification (LFW View 2, CFP-FF / CFP-FP, 10 folds): :func:`kfold_correct` says, per pair, whether
  a model's decision is right under the threshold it chose on the other folds (``metrics.kfold_accuracy``,
  the rule of the reported 10-fold accuracy); :func:`mcnemar_exact` tests the pairs where exactly one
  model is right; :func:`paired_bootstrap_pair_auc` resamples pairs for the ROC-AUC difference;
* the seed's ID-rate protocol: :func:`paired_bootstrap_idrate` resamples query and distractor identities
  (``protocols.bootstrap_idrate``'s draws, the same for both models) for the AUC and TPR@FPR differences.

:func:`verdict` turns a difference and its p-value into one sentence at alpha 0.05.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from math import comb
from typing import Iterator

import numpy as np

from .metrics import MetricError, kfold_accuracy, pair_distance, roc_auc
from .protocols import _SortedNegatives, check_embeddings, check_query_labels

ALPHA = 0.05


# --- per-pair decisions ----------------------------------------------------------------------------------
def verification_distance(emb1: np.ndarray, emb2: np.ndarray, issame: np.ndarray,
                          counted_wrong: np.ndarray | None = None) -> np.ndarray:
    """Cosine distances of pairs, as ``protocols.pair_verification`` scores them: a pair in ``counted_wrong``
    (an image is missing) gets a distance no threshold can get right (same: 3, different: -1)."""
    a, b = check_embeddings(emb1, "first images of the pairs"), check_embeddings(emb2, "second images of the pairs")
    y = np.asarray(issame, bool)
    if not (len(a) == len(b) == len(y)):
        raise MetricError(f"{len(a)} and {len(b)} embeddings for {len(y)} pairs")
    d = pair_distance(a, b, "cosine")
    if counted_wrong is not None and np.any(counted_wrong):
        d = np.where(np.asarray(counted_wrong, bool), np.where(y, 3.0, -1.0), d)
    return d


def pair_folds(n_pairs: int, folds: np.ndarray | None, n_folds: int = 10) -> np.ndarray:
    """Each pair's fold: ``folds`` as given, else ``n_folds`` equal consecutive folds (the ``.bin`` rule of
    ``pair_verification``)."""
    if folds is not None:
        f = np.asarray(folds)
        if len(f) != n_pairs:
            raise MetricError(f"{len(f)} fold ids for {n_pairs} pairs")
        return f
    if n_pairs % n_folds:
        raise MetricError(f"{n_pairs} pairs do not split into {n_folds} equal folds; pass folds")
    return np.repeat(np.arange(n_folds), n_pairs // n_folds)


def kfold_correct(distance: np.ndarray, issame: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Per pair: is "same person when distance < t" right, t being the threshold ``kfold_accuracy`` chose
    for the pair's fold on the other folds? The mean over a fold is exactly that fold's reported accuracy."""
    d, y, f = np.asarray(distance), np.asarray(issame, bool), np.asarray(folds)
    k = kfold_accuracy(d, y, f)
    ids = np.unique(f)  # kfold_accuracy's fold order
    t = np.asarray(k.fold_threshold)[np.searchsorted(ids, f)]
    return (d < t) == y


# --- McNemar on the discordant pairs ---------------------------------------------------------------------
@dataclass(frozen=True)
class McNemarResult:
    n: int  # pairs
    n10: int  # A right, B wrong
    n01: int  # A wrong, B right
    accuracy_diff: float  # accuracy of A - accuracy of B = (n10 - n01) / n
    p_value: float  # exact two-sided

    def to_dict(self) -> dict:
        return asdict(self)


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p of k successes in n fair coin flips: 2 P(X <= min(k, n - k)), at most 1 (the
    symmetric binomial, so this equals the "as or less likely" rule). Integer arithmetic: exact at any n."""
    if n == 0:
        return 1.0
    m = min(k, n - k)
    tail = sum(comb(n, i) for i in range(m + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """Exact McNemar test of "A and B are equally often right on these pairs": under that hypothesis each
    discordant pair (one model right, the other wrong) is A's with probability 1/2, so n10 ~ Bin(n10 + n01,
    1/2). Pairs both models get right or both get wrong carry no information and are not counted."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise MetricError(f"McNemar needs the two models' decisions on the same pairs; got {a.shape} and {b.shape}")
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    return McNemarResult(len(a), n10, n01, (n10 - n01) / len(a), binomial_two_sided_p(n10, n10 + n01))


# --- bootstrap ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedDiff:
    """A - B for one figure: the point values on all the data and a percentile interval of resampled
    differences; ``p_value``: the percentile bootstrap's two-sided test of "no difference", 2 (1 + m) /
    (n + 1) at most 1, m the smaller count of resampled differences on either side of 0 (ties on both).
    The + 1 keeps it honest: n resamples cannot show p below 2 / (n + 1), so never 0."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p_value: float
    n_resamples: int  # resamples where both figures were defined

    def to_dict(self) -> dict:
        return asdict(self)


def _paired_diff(metric: str, a: float, b: float, samples: list[float], level: float) -> PairedDiff:
    if not samples:
        raise MetricError(f"{metric}: no bootstrap resample had the figure defined for both models")
    s = np.asarray(samples)
    lo, hi = np.percentile(s, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    m = min(int((s <= 0).sum()), int((s >= 0).sum()))
    p = min(1.0, 2 * (1 + m) / (len(s) + 1))
    return PairedDiff(metric, a, b, a - b, float(lo), float(hi), p, len(s))


def pair_resamples(issame: np.ndarray, n: int, seed: int) -> Iterator[np.ndarray]:
    """``n`` seeded resamples of pair indices with replacement, same-person and different-person pairs drawn
    separately so each resample keeps the set's count of each (a ROC-AUC needs both)."""
    y = np.asarray(issame, bool)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if not len(pos) or not len(neg):
        raise MetricError("pairs must include both same-person and different-person pairs")
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])


def _auc_of(distance: np.ndarray, y: np.ndarray) -> float:
    sim = 1.0 - distance  # as pair_verification: similarity, higher = more alike
    return roc_auc(sim[y], sim[~y])


def bootstrap_pairs(distance: np.ndarray, issame: np.ndarray, correct: np.ndarray, n: int = 200, seed: int = 0,
                    level: float = 0.95) -> dict[str, tuple[float, float]]:
    """One model's percentile intervals over pairs resampled with replacement (:func:`pair_resamples`):
    ``accuracy`` (each pair's out-of-fold decision ``correct`` kept fixed, thresholds not re-chosen) and
    ``auc`` (ROC-AUC of the resampled pairs)."""
    d, y, c = np.asarray(distance), np.asarray(issame, bool), np.asarray(correct, bool)
    acc, auc = [], []
    for idx in pair_resamples(y, n, seed):
        acc.append(float(c[idx].mean()))
        auc.append(_auc_of(d[idx], y[idx]))
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {k: tuple(float(x) for x in np.percentile(v, q)) for k, v in (("accuracy", acc), ("auc", auc))}


def paired_bootstrap_pair_auc(distance_a: np.ndarray, distance_b: np.ndarray, issame: np.ndarray, n: int = 200,
                              seed: int = 0, level: float = 0.95) -> PairedDiff:
    """ROC-AUC of A - B on the same pairs: each resample (:func:`pair_resamples`) draws pairs with replacement
    and scores both models on exactly those pairs."""
    da, db, y = np.asarray(distance_a), np.asarray(distance_b), np.asarray(issame, bool)
    if not (len(da) == len(db) == len(y)):
        raise MetricError(f"{len(da)} and {len(db)} distances for {len(y)} pairs: not the same pairs")
    samples = [_auc_of(da[i], y[i]) - _auc_of(db[i], y[i]) for i in pair_resamples(y, n, seed)]
    return _paired_diff("auc", _auc_of(da, y), _auc_of(db, y), samples, level)


# --- the ID-rate protocol ------------------------------------------------------------------------------------
def _idrate_pairs(q: np.ndarray, qi: np.ndarray, d: np.ndarray, di: np.ndarray,
                  n_qids: int) -> tuple[_SortedNegatives, np.ndarray]:
    """Every pair of the ID-rate protocol with the identities it involves, laid out as ``bootstrap_idrate``
    does: positives = same-identity query pairs; negatives = cross-identity query pairs, then query x
    distractor pairs (a distractor identity's weight index offset by the number of query identities).
    Returns the sorted negatives and each positive's query identity."""
    iu = np.triu_indices(len(q), 1)
    s_qq = (q @ q.T)[iu]
    a, b = qi[iu[0]], qi[iu[1]]
    same = a == b
    neg = np.concatenate([s_qq[~same], (q @ d.T).ravel()])
    left = np.concatenate([a[~same], np.repeat(qi, len(d))])
    right = np.concatenate([b[~same], n_qids + np.tile(di, len(q))])
    return _SortedNegatives(s_qq[same], neg, left, right), a[same]


def _identity_draws(n_q: int, n_d: int, n: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``bootstrap_idrate``'s resamples, in its order: per draw, how often each query and each distractor
    identity was drawn (with replacement). The same seed gives the same draws, so each model's marginal
    interval equals its ``bootstrap_idrate`` interval."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        wq = np.bincount(rng.integers(0, n_q, n_q), minlength=n_q).astype(np.float64)
        wd = np.bincount(rng.integers(0, n_d, n_d), minlength=n_d).astype(np.float64) if n_d else np.zeros(0)
        yield wq, wd


def _figures(pairs: tuple[_SortedNegatives, np.ndarray], wq: np.ndarray, wd: np.ndarray,
             fpr: float) -> tuple[float, float | None] | None:
    """(ROC-AUC, TPR@fpr) with identity weights ``wq`` / ``wd``; None when a resample has no positive or
    no negative pair."""
    sn, pos_id = pairs
    wp = wq[pos_id]
    wn = sn.weights(wq, np.concatenate([wq, wd]))
    cw = np.r_[0.0, np.cumsum(wn)]
    if wp.sum() == 0 or cw[-1] == 0:
        return None
    return sn.auc(wp, wn, cw), sn.tpr(wp, wn, fpr, cw)


def paired_bootstrap_idrate(query_a: np.ndarray, query_b: np.ndarray, query_labels: np.ndarray,
                            distractors_a: np.ndarray | None, distractors_b: np.ndarray | None,
                            distractor_labels: np.ndarray | None = None, n: int = 200, seed: int = 0,
                            fpr: float = 1e-3, level: float = 0.95,
                            max_pairs: int = 20_000_000) -> dict[str, PairedDiff]:
    """ROC-AUC and TPR@``fpr`` of A - B on the seed's ID-rate protocol: each resample draws query and
    distractor identities with replacement (identities, not pairs, are independent) and weighs both
    models' pairs by the same draw, as ``protocols.bootstrap_idrate`` does for one model. Rows of A's and
    B's embeddings must be the same images in the same order. Keys: ``auc``, and ``tpr@<fpr>`` when ``fpr``
    is resolvable (at least 1 / fpr negative pairs: the seed rule's k >= 1). Every pair
    score of both models is kept (about 2 x 16 bytes a pair), hence ``max_pairs``, as in ``bootstrap_idrate``."""
    qa, qb = check_embeddings(query_a, "A's query embeddings"), check_embeddings(query_b, "B's query embeddings")
    ql = check_query_labels(query_labels, len(qa))
    if len(qb) != len(qa):
        raise MetricError(f"A has {len(qa)} query embeddings, B {len(qb)}: not the same queries")

    def dist(e: np.ndarray | None, q: np.ndarray, who: str) -> np.ndarray:
        return check_embeddings(e, f"{who}'s distractor embeddings") if e is not None and len(e) else \
            np.zeros((0, q.shape[1]), np.float32)

    da, db = dist(distractors_a, qa, "A"), dist(distractors_b, qb, "B")
    if len(da) != len(db):
        raise MetricError(f"A has {len(da)} distractor embeddings, B {len(db)}: not the same distractors")
    if len(qa) * (len(qa) + len(da)) > 2 * max_pairs:
        raise MetricError(f"the paired bootstrap keeps every pair score; {len(qa)} queries x {len(da)} distractors "
                          f"exceed {max_pairs:,} pairs: bootstrap a subset of distractors")
    dl = np.arange(len(da)) if distractor_labels is None else np.asarray(distractor_labels)
    qids, qi = np.unique(ql, return_inverse=True)
    dids, di = np.unique(dl, return_inverse=True)
    sa = _idrate_pairs(qa, qi.ravel(), da, di.ravel(), len(qids))
    sb = _idrate_pairs(qb, qi.ravel(), db, di.ravel(), len(qids))
    ones_q, ones_d = np.ones(len(qids)), np.ones(len(dids))
    (auc_a, tpr_a), (auc_b, tpr_b) = _figures(sa, ones_q, ones_d, fpr), _figures(sb, ones_q, ones_d, fpr)
    d_auc: list[float] = []
    d_tpr: list[float] = []
    for wq, wd in _identity_draws(len(qids), len(dids), n, seed):
        fa, fb = _figures(sa, wq, wd, fpr), _figures(sb, wq, wd, fpr)
        if fa is None or fb is None:
            continue
        d_auc.append(fa[0] - fb[0])
        if fa[1] is not None and fb[1] is not None:
            d_tpr.append(fa[1] - fb[1])
    out = {"auc": _paired_diff("auc", auc_a, auc_b, d_auc, level)}
    if tpr_a is not None and tpr_b is not None:  # both models have the same number of negatives
        out[f"tpr@{fpr:g}"] = _paired_diff(f"tpr@{fpr:g}", tpr_a, tpr_b, d_tpr, level)
    return out


# --- verdicts ------------------------------------------------------------------------------------------------
def format_p(p: float) -> str:
    return f"{p:.2g}" if p < 1e-3 else f"{p:.3f}"


def verdict(diff: float, p_value: float, a: str = "A", b: str = "B", alpha: float = ALPHA) -> str:
    """"A better (p=...)", "B better (p=...)" or "no difference beyond chance (p=...)": a side is named
    only when ``p_value`` < ``alpha`` and ``diff`` (A - B) has its sign."""
    p = f"p={format_p(p_value)}"
    if p_value < alpha and diff > 0:
        return f"{a} better ({p})"
    if p_value < alpha and diff < 0:
        return f"{b} better ({p})"
    return f"no difference beyond chance ({p})"
