"""Verification metrics on similarity scores: exact ROC, ROC-AUC and TPR at fixed FPRs.

Scores are similarities (higher = more alike). ``pos`` are same-identity pair scores, ``neg``
different-identity ones. Everything here is exact (no FPR grid): the ROC has one point per distinct
score and the AUC is the Mann-Whitney statistic, ties counted one half.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED_FPRS: tuple[float, ...] = (0.5, 0.25, 0.1, 0.05, 0.01, 0.005, 0.001)  # the seed project's ID-rate grid


class MetricError(ValueError):
    """Scores or labels that no metric can be computed from; the message says which and why."""


def _check_scores(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(pos, dtype=np.float64).ravel()
    neg = np.asarray(neg, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise MetricError(f"need positive and negative scores, got {len(pos)} positive and {len(neg)} negative")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise MetricError("scores contain NaN or inf (check for zero-norm or NaN embeddings)")
    return pos, neg


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(equal): the exact area under the ROC."""
    pos, neg = _check_scores(pos, neg)
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    sorted_v = allv[order]
    # average ranks (1-based) for ties
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0
    ranks = np.empty(len(allv))
    ranks[order] = np.repeat(avg_rank, counts)
    r_pos = ranks[: len(pos)].sum()
    u = r_pos - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def roc_curve(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ROC: (fpr, tpr, thresholds), one point per distinct score, from (0, 0) to (1, 1).

    A pair is accepted when its score >= threshold; the first threshold is +inf (accept nothing).
    """
    pos, neg = _check_scores(pos, neg)
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], is_pos[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last_of_value]
    fp = (last_of_value + 1) - tp
    fpr = np.r_[0.0, fp / len(neg)]
    tpr = np.r_[0.0, tp / len(pos)]
    return fpr, tpr, np.r_[np.inf, s[last_of_value]]


@dataclass(frozen=True)
class OperatingPoint:
    """TPR at a target FPR. ``threshold`` is None (and ``tpr`` NaN) when FPR < 1 / N_neg: not resolvable."""

    target_fpr: float
    threshold: float | None
    tpr: float
    fpr: float  # the FPR actually reached on these negatives

    @property
    def resolvable(self) -> bool:
        return self.threshold is not None


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fprs: tuple[float, ...] = SEED_FPRS) -> list[OperatingPoint]:
    """The seed protocol: threshold = the k-th largest negative score, k = int(FPR * N_neg);
    TPR = share of positives scoring >= threshold. k = 0 means the FPR is below what N_neg negatives
    can resolve, reported as not resolvable rather than as a number."""
    pos, neg = _check_scores(pos, neg)
    neg_desc = np.sort(neg)[::-1]
    out = []
    for f in fprs:
        k = int(f * len(neg) + 1e-9)
        if k < 1:
            out.append(OperatingPoint(f, None, float("nan"), float("nan")))
            continue
        thr = float(neg_desc[k - 1])
        out.append(OperatingPoint(f, thr, float(np.mean(pos >= thr)), float(np.mean(neg >= thr))))
    return out


def pair_scores(emb: np.ndarray, labels: np.ndarray, other: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of (L2-normalised) embeddings: all same-identity pairs i < j as positives,
    all cross-identity pairs i < j as negatives, plus every row x ``other`` (distractors) as negatives."""
    emb = np.asarray(emb, dtype=np.float32)
    labels = np.asarray(labels)
    if len(emb) != len(labels):
        raise MetricError(f"{len(emb)} embeddings but {len(labels)} labels")
    sim = emb @ emb.T
    iu = np.triu_indices(len(emb), k=1)
    same = labels[iu[0]] == labels[iu[1]]
    s = sim[iu]
    pos, neg = s[same], s[~same]
    if other is not None and len(other):
        neg = np.concatenate([neg, (emb @ np.asarray(other, dtype=np.float32).T).ravel()])
    return pos, neg


def nearest_mean_accuracy(emb: np.ndarray, labels: np.ndarray, ref_emb: np.ndarray, ref_labels: np.ndarray) -> float:
    """Closed-set accuracy of metric-learning models: each row gets the class whose mean reference
    embedding (normalised) is most cosine-similar."""
    classes = np.unique(ref_labels)
    means = np.stack([ref_emb[ref_labels == c].mean(0) for c in classes])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    pred = classes[np.argmax(emb @ means.T, axis=1)]
    return float(np.mean(pred == labels))
