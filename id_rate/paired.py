"""Paired comparisons of two models scored on the SAME pairs or the SAME query identities.

Two models' figures on one set are not independent (they share every image), so comparing their
intervals side by side wastes power and can mislead. These tests use the pairing, and resample the units
that are independent:

* pair verification (LFW View 2, CFP-FF / CFP-FP, 10 folds): :func:`kfold_correct` says, per pair, whether
  a model's decision is right under the threshold it chose on the other folds (``metrics.kfold_accuracy``,
  the rule of the reported 10-fold accuracy). The pairs are NOT independent: one image appears in several
  pairs (up to 10 on CFP) and a fold's pairs come from few people (50 on CFP). The folds are: the protocols
  split people so that no person is in two folds. :func:`paired_bootstrap_pair_set` therefore resamples whole
  folds (a paired cluster bootstrap) for the accuracy and ROC-AUC differences, and :func:`bootstrap_pair_set`
  gives each model's own intervals the same way. With one fold there is nothing to cluster on: pairs are
  resampled instead, and ``resampled`` says so. :func:`mcnemar_exact` counts the discordant pairs, a
  description only (its p-value assumes independent pairs);
* the seed's ID-rate protocol: :func:`paired_bootstrap_idrate` resamples query and distractor identities
  (``protocols.identity_draws``, the draws of ``protocols.bootstrap_idrate``, the same for both models) for the
  AUC and TPR@FPR differences.

:func:`verdict` turns a difference and its bootstrap p-value into one sentence at alpha 0.05.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from math import comb
from typing import Iterator

import numpy as np

from .metrics import MetricError, kfold_accuracy, roc_auc
from .protocols import (check_embeddings, check_query_labels, identity_draws, idrate_figures, idrate_pairs,
                        pair_folds, verification_distance)

__all__ = ["ALPHA", "McNemarResult", "PairedDiff", "binomial_two_sided_p", "bootstrap_pair_set", "fold_resamples",
           "format_p", "kfold_correct", "mcnemar_exact", "pair_folds", "pair_resamples", "pair_set_resamples",
           "paired_bootstrap_idrate", "paired_bootstrap_pair_set", "resampling_unit", "verdict",
           "verification_distance"]

ALPHA = 0.05


# --- per-pair decisions ----------------------------------------------------------------------------------
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
    p_value: float  # exact two-sided, assuming independent pairs (not so on LFW / CFP)

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
    1/2). Pairs both models get right or both get wrong carry no information and are not counted. The test
    assumes independent pairs; on LFW / CFP pairs share images and people, so the benchmark reports only the
    counts and takes its verdict from :func:`paired_bootstrap_pair_set`."""
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
    The + 1 keeps it honest: n resamples cannot show p below 2 / (n + 1), so never 0. ``resampled``: the
    unit drawn with replacement ("folds", "pairs" or "identities")."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p_value: float
    n_resamples: int  # resamples where both figures were defined
    resampled: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _percentiles(samples: list[float], level: float) -> tuple[float, float]:
    lo, hi = np.percentile(np.asarray(samples), [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def _paired_diff(metric: str, a: float, b: float, samples: list[float], level: float, resampled: str) -> PairedDiff:
    if not samples:
        raise MetricError(f"{metric}: no bootstrap resample had the figure defined for both models")
    s = np.asarray(samples)
    m = min(int((s <= 0).sum()), int((s >= 0).sum()))
    p = min(1.0, 2 * (1 + m) / (len(s) + 1))
    return PairedDiff(metric, a, b, a - b, *_percentiles(samples, level), p, len(s), resampled)


def pair_resamples(issame: np.ndarray, n: int, seed: int) -> Iterator[np.ndarray]:
    """``n`` seeded resamples of pair indices with replacement, same-person and different-person pairs drawn
    separately so each resample keeps the set's count of each (a ROC-AUC needs both). Treats pairs as
    independent: only the fallback for a pair set without folds."""
    y = np.asarray(issame, bool)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if not len(pos) or not len(neg):
        raise MetricError("pairs must include both same-person and different-person pairs")
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])


def fold_resamples(folds: np.ndarray, n: int, seed: int) -> Iterator[np.ndarray]:
    """``n`` seeded cluster resamples: K folds (K = the number of folds) drawn with replacement from one
    generator; each resample is the pair indices of the drawn folds, concatenated (a fold drawn twice counts
    twice)."""
    f = np.asarray(folds)
    members = [np.flatnonzero(f == k) for k in np.unique(f)]
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])


def resampling_unit(folds: np.ndarray | None) -> str:
    """"folds" when the pairs have at least two folds (people-disjoint clusters), else "pairs"."""
    return "folds" if folds is not None and len(np.unique(folds)) >= 2 else "pairs"


def pair_set_resamples(issame: np.ndarray, folds: np.ndarray | None, n: int,
                       seed: int) -> tuple[str, Iterator[np.ndarray]]:
    """(unit, resamples): whole folds (:func:`fold_resamples`), or pairs (:func:`pair_resamples`) when there
    is at most one fold."""
    unit = resampling_unit(folds)
    return unit, fold_resamples(folds, n, seed) if unit == "folds" else pair_resamples(issame, n, seed)


def _auc_of(distance: np.ndarray, y: np.ndarray) -> float | None:
    """ROC-AUC of similarity 1 - distance (as ``pair_verification``); None without both kinds of pair."""
    if y.all() or not y.any():
        return None
    sim = 1.0 - distance
    return roc_auc(sim[y], sim[~y])


def _pair_figures(distance: np.ndarray, y: np.ndarray, correct: np.ndarray,
                  idx: np.ndarray) -> tuple[float, float | None]:
    """(accuracy, ROC-AUC) of the pairs ``idx``: each pair's out-of-fold decision kept, thresholds not re-chosen."""
    return float(correct[idx].mean()), _auc_of(distance[idx], y[idx])


def _pair_arrays(distance: np.ndarray, issame: np.ndarray, correct: np.ndarray,
                 folds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    d, y, c = np.asarray(distance), np.asarray(issame, bool), np.asarray(correct, bool)
    f = None if folds is None else pair_folds(len(y), folds)
    if not (len(d) == len(y) == len(c)):
        raise MetricError(f"{len(d)} distances and {len(c)} decisions for {len(y)} pairs: not the same pairs")
    return d, y, c, f


def bootstrap_pair_set(distance: np.ndarray, issame: np.ndarray, correct: np.ndarray, folds: np.ndarray | None,
                       n: int = 200, seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """One model's percentile intervals of ``accuracy`` (its pairs' out-of-fold decisions ``correct``) and
    ``auc``, over :func:`pair_set_resamples`: whole folds, because pairs share images and people and folds
    share no people (pairs only when there is one fold; see :func:`resampling_unit`). The same seed draws the
    same resamples as :func:`paired_bootstrap_pair_set`."""
    d, y, c, f = _pair_arrays(distance, issame, correct, folds)
    acc, auc = [], []
    for idx in pair_set_resamples(y, f, n, seed)[1]:
        a, u = _pair_figures(d, y, c, idx)
        acc.append(a)
        if u is not None:
            auc.append(u)
    return {"accuracy": _percentiles(acc, level), "auc": _percentiles(auc, level)}


def paired_bootstrap_pair_set(distance_a: np.ndarray, distance_b: np.ndarray, correct_a: np.ndarray,
                              correct_b: np.ndarray, issame: np.ndarray, folds: np.ndarray | None, n: int = 200,
                              seed: int = 0, level: float = 0.95) -> dict[str, PairedDiff]:
    """``accuracy`` and ``auc`` of A - B on the same pairs, by a paired cluster bootstrap: each resample draws
    whole folds with replacement (pairs share images and people, so they are not independent; the folds share
    no people, so they are) and scores both models on exactly those pairs, each pair's out-of-fold decision
    kept. Without folds (one fold) pairs are resampled and ``resampled`` is "pairs". With 10 folds the
    percentile intervals run somewhat narrow (few clusters), so a p near 0.05 is weak evidence."""
    da, ya, ca, f = _pair_arrays(distance_a, issame, correct_a, folds)
    db, _, cb, _ = _pair_arrays(distance_b, issame, correct_b, folds)
    unit, draws = pair_set_resamples(ya, f, n, seed)
    acc, auc = [], []
    for idx in draws:
        (xa, ua), (xb, ub) = _pair_figures(da, ya, ca, idx), _pair_figures(db, ya, cb, idx)
        acc.append(xa - xb)
        if ua is not None and ub is not None:
            auc.append(ua - ub)
    every = np.arange(len(ya))
    (acc_a, auc_a), (acc_b, auc_b) = _pair_figures(da, ya, ca, every), _pair_figures(db, ya, cb, every)
    if auc_a is None or auc_b is None:
        raise MetricError("pairs must include both same-person and different-person pairs")
    return {"accuracy": _paired_diff("accuracy", acc_a, acc_b, acc, level, unit),
            "auc": _paired_diff("auc", auc_a, auc_b, auc, level, unit)}


# --- the ID-rate protocol ------------------------------------------------------------------------------------
def paired_bootstrap_idrate(query_a: np.ndarray, query_b: np.ndarray, query_labels: np.ndarray,
                            distractors_a: np.ndarray | None, distractors_b: np.ndarray | None,
                            distractor_labels: np.ndarray | None = None, n: int = 200, seed: int = 0,
                            fpr: float = 1e-3, level: float = 0.95,
                            max_pairs: int = 20_000_000) -> dict[str, PairedDiff]:
    """ROC-AUC and TPR@``fpr`` of A - B on the seed's ID-rate protocol: each resample draws query and
    distractor identities with replacement (identities, not pairs, are independent) and weighs both
    models' pairs by the same draw (``protocols.identity_draws``: with the same seed, each model's marginal
    interval is its ``bootstrap_idrate`` interval). Rows of A's and B's embeddings must be the same images in
    the same order. Keys: ``auc``, and ``tpr@<fpr>`` when ``fpr`` is resolvable (at least 1 / fpr negative
    pairs: the seed rule's k >= 1). Every pair score of both models is kept (about 2 x 16 bytes a pair), hence
    ``max_pairs``, as in ``bootstrap_idrate``."""
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
    sa = idrate_pairs(qa, qi.ravel(), da, di.ravel(), len(qids))
    sb = idrate_pairs(qb, qi.ravel(), db, di.ravel(), len(qids))
    key, fprs = f"tpr@{fpr:g}", (fpr,)
    ones_q, ones_d = np.ones(len(qids)), np.ones(len(dids))
    fa0, fb0 = idrate_figures(sa, ones_q, ones_d, fprs), idrate_figures(sb, ones_q, ones_d, fprs)
    samples: dict[str, list[float]] = {"auc": [], key: []}
    for wq, wd in identity_draws(len(qids), len(dids), n, seed):
        fa, fb = idrate_figures(sa, wq, wd, fprs), idrate_figures(sb, wq, wd, fprs)
        if fa is None or fb is None:  # the draw left no positive or no negative pair
            continue
        for k in samples:
            if fa[k] is not None and fb[k] is not None:
                samples[k].append(fa[k] - fb[k])
    out = {"auc": _paired_diff("auc", fa0["auc"], fb0["auc"], samples["auc"], level, "identities")}
    if fa0[key] is not None and fb0[key] is not None:  # both models have the same number of negatives
        out[key] = _paired_diff(key, fa0[key], fb0[key], samples[key], level, "identities")
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
