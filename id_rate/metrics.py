"""Verification metrics on similarity scores: exact ROC, ROC-AUC and TPR at fixed FPRs.

Scores are similarities (higher = more alike). ``pos`` are same-identity pair scores, ``neg``
different-identity ones. Everything here is exact (no FPR grid): the ROC has one point per distinct
score and the AUC is the Mann-Whitney statistic, ties counted one half. TPR at a target FPR is the largest
TPR any threshold reaches without exceeding that FPR (:func:`operating_point`: the one rule of every
TPR@FPR, TAR@FAR and DIR@FPIR of the project), reported with the FPR it reached.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MetricError lives in .scoring (the embeddings' own checks raise it) and is imported from here as it always was
from .scoring import MetricError, l2_normalize, paired_scores, similarity_matrix, upper_pair_scores

SEED_FPRS: tuple[float, ...] = (0.5, 0.25, 0.1, 0.05, 0.01, 0.005, 0.001)  # the seed project's ID-rate grid


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
    """TPR at a target FPR and the FPR actually reached (never above the target). ``threshold`` is None (and
    ``tpr``, ``fpr`` NaN) when FPR < 1 / N_neg: not resolvable."""

    target_fpr: float
    threshold: float | None  # accept a pair when its score >= threshold
    tpr: float
    fpr: float  # the FPR reached on these negatives, <= target_fpr

    @property
    def resolvable(self) -> bool:
        return self.threshold is not None


def allowed_negatives(target_fpr: float, n_neg: float) -> int:
    """k = int(FPR * N_neg): how many negatives (or how much negative weight) a threshold may accept; the
    1e-9 keeps 1e-3 x 6000 at 6 despite binary floating point."""
    return int(target_fpr * n_neg + 1e-9)


def operating_point(pos_sorted: np.ndarray, neg_top: np.ndarray, n_neg: int, target_fpr: float) -> OperatingPoint:
    """The largest TPR whose FPR does not exceed ``target_fpr``, at the smallest FPR that reaches it: the
    operating point scikit-learn's ROC curve gives at that FPR.

    At most k = int(FPR * N_neg) negatives may be accepted, so only scores strictly above the (k+1)-th largest
    negative can be: negatives tied across the k-th place are rejected together (accepting them would exceed
    the FPR), and positives between the k-th and (k+1)-th negatives are kept. The threshold is the lowest
    positive score above that boundary. When no positive lies above it (TPR 0), it is the lowest score above the
    boundary, nextafter(boundary): the most a threshold may accept at this FPR, so a model saved with it still
    accepts the faces it scores above every negative it must reject (a threshold above the largest score would
    call every face Unknown); ``fpr`` is then the FPR that threshold reaches. k = 0 means the FPR is below what
    N_neg negatives can resolve: reported as not resolvable rather than as a number.

    ``pos_sorted``: the positive scores, ascending; ``neg_top``: the largest negative scores, ascending, at
    least min(k + 1, ``n_neg``) of them (streaming keeps only those). Accept a pair when score >= threshold."""
    k = allowed_negatives(target_fpr, n_neg)
    if k < 1:
        return OperatingPoint(target_fpr, None, float("nan"), float("nan"))
    if len(neg_top) < min(k + 1, n_neg):
        raise MetricError(f"the operating point at FPR {target_fpr:g} needs the {k + 1} largest negatives, "
                          f"got {len(neg_top)}")
    boundary = float(neg_top[len(neg_top) - k - 1]) if k < n_neg else -np.inf  # the (k+1)-th largest negative
    first = int(np.searchsorted(pos_sorted, boundary, "right"))  # the lowest positive above the boundary
    if first < len(pos_sorted):
        threshold = float(pos_sorted[first])
    else:  # no positive above it: TPR 0 at any threshold that keeps the FPR, so the lowest such threshold
        threshold = float(np.nextafter(boundary, np.inf))
    neg_accepted = len(neg_top) - int(np.searchsorted(neg_top, threshold, "left"))
    return OperatingPoint(target_fpr, threshold, (len(pos_sorted) - first) / len(pos_sorted), neg_accepted / n_neg)


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fprs: tuple[float, ...] = SEED_FPRS) -> list[OperatingPoint]:
    """The :func:`operating_point` at each FPR of ``fprs``."""
    pos, neg = _check_scores(pos, neg)
    pos_sorted, neg_sorted = np.sort(pos), np.sort(neg)
    return [operating_point(pos_sorted, neg_sorted, len(neg), f) for f in fprs]


def pair_scores(emb: np.ndarray, labels: np.ndarray, other: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of (L2-normalised) embeddings: all same-identity pairs i < j as positives,
    all cross-identity pairs i < j as negatives, plus every row x ``other`` (distractors) as negatives."""
    emb = np.asarray(emb, dtype=np.float32)
    s, same, _ = upper_pair_scores(emb, labels)
    pos, neg = s[same], s[~same]
    if other is not None and len(other):
        neg = np.concatenate([neg, similarity_matrix(emb, np.asarray(other, dtype=np.float32)).ravel()])
    return pos, neg


def nearest_mean_accuracy(emb: np.ndarray, labels: np.ndarray, ref_emb: np.ndarray, ref_labels: np.ndarray) -> float:
    """Closed-set accuracy of metric-learning models: each row gets the class whose mean reference
    embedding (normalised) is most cosine-similar."""
    classes = np.unique(ref_labels)
    means = l2_normalize(np.stack([ref_emb[ref_labels == c].mean(0) for c in classes]), "class means")
    pred = classes[np.argmax(similarity_matrix(np.asarray(emb, np.float32), means), axis=1)]
    return float(np.mean(pred == labels))


# --- distances and fixed-threshold verification -------------------------------------------------------
DISTANCES = ("euclidean", "euclidean_l2", "cosine")  # the seed comparison's three


def pair_distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Row-wise distance between paired embeddings: 'euclidean' on the raw vectors, 'euclidean_l2' after
    L2 normalisation, 'cosine' = 1 - cosine similarity. Smaller means more alike."""
    if metric not in DISTANCES:
        raise MetricError(f"unknown distance {metric!r}; valid: {', '.join(DISTANCES)}")
    if np.shape(a) != np.shape(b):
        raise MetricError(f"paired embeddings differ in shape: {np.shape(a)} vs {np.shape(b)}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)  # distances between near pairs need float64
    if metric == "euclidean":
        return np.linalg.norm(a - b, axis=1)
    na, nb = l2_normalize(a, "first embeddings of the pairs"), l2_normalize(b, "second embeddings of the pairs")
    if metric == "euclidean_l2":
        return np.linalg.norm(na - nb, axis=1)
    return 1.0 - paired_scores(na, nb)


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def verification_at_threshold(distance: np.ndarray, issame: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Accuracy, precision, recall and F1 of "same person when distance < threshold". A ratio whose
    denominator is zero (e.g. precision when nothing is accepted) is None: undefined, not 0."""
    d, y = np.asarray(distance), np.asarray(issame, bool)
    pred = d < threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = None if precision is None or recall is None or precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"threshold": float(threshold), "accuracy": (tp + tn) / len(d), "precision": precision, "recall": recall,
            "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def accuracy_curve(distance: np.ndarray, issame: np.ndarray, thresholds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, accuracy of "distance < t") over every useful threshold (midpoints of sorted distances)."""
    d, y = np.asarray(distance, np.float64), np.asarray(issame, bool)
    if thresholds is None:
        u = np.unique(d)
        thresholds = np.r_[u[0] - 1e-9, (u[1:] + u[:-1]) / 2, u[-1] + 1e-9]
    order = np.argsort(d, kind="mergesort")
    ds, ys = d[order], y[order]
    accepted = np.searchsorted(ds, thresholds, side="left")  # count with d < t
    tp = np.r_[0, np.cumsum(ys)][accepted]
    fp = accepted - tp
    tn = (~ys).sum() - fp
    return np.asarray(thresholds), (tp + tn) / len(d)


def best_threshold(distance: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    """The threshold with the highest accuracy on these pairs (the lowest of ties) and that accuracy."""
    t, acc = accuracy_curve(distance, issame)
    i = int(np.argmax(acc))
    return float(t[i]), float(acc[i])


@dataclass(frozen=True)
class KFoldResult:
    mean: float
    std: float
    fold_accuracy: list[float]
    fold_threshold: list[float]


def kfold_accuracy(distance: np.ndarray, issame: np.ndarray, folds: np.ndarray) -> KFoldResult:
    """LFW View 2: for each fold, the threshold that maximises accuracy on the other folds, scored on
    this one; mean and (population) standard deviation over the folds."""
    d, y, f = np.asarray(distance), np.asarray(issame, bool), np.asarray(folds)
    if not (len(d) == len(y) == len(f)):
        raise MetricError(f"{len(d)} distances, {len(y)} labels and {len(f)} fold ids must match")
    accs, thrs = [], []
    for k in np.unique(f):
        train, test = f != k, f == k
        if not train.any():
            raise MetricError("k-fold accuracy needs at least two folds")
        t, _ = best_threshold(d[train], y[train])
        accs.append(float(np.mean((d[test] < t) == y[test])))
        thrs.append(t)
    return KFoldResult(float(np.mean(accs)), float(np.std(accs)), accs, thrs)
