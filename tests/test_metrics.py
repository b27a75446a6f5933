"""Exact ROC, AUC and TPR@FPR: hand-computed cases and agreement with scikit-learn."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from id_rate.metrics import MetricError, nearest_mean_accuracy, pair_scores, roc_auc, roc_curve, tpr_at_fpr


def test_auc_hand_computed():
    # pairs (p, n): 0.9>0.1, 0.9>0.5, 0.4>0.1, 0.4<0.5 -> 3 of 4; a tie counts one half
    assert roc_auc([0.9, 0.4], [0.1, 0.5]) == 0.75
    assert roc_auc([0.5], [0.5]) == 0.5
    assert roc_auc([1.0, 0.5], [0.5, 0.0]) == (1 + 1 + 0.5 + 1) / 4


def test_auc_and_curve_match_sklearn():
    rng = np.random.default_rng(0)
    pos = np.round(rng.normal(1, 1, 300), 1)  # rounding makes ties
    neg = np.round(rng.normal(0, 1, 2000), 1)
    y = np.r_[np.ones(300), np.zeros(2000)]
    s = np.r_[pos, neg]
    assert roc_auc(pos, neg) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, thr = roc_curve(pos, neg)
    sk_fpr, sk_tpr, _ = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(pos, neg), abs=1e-12)


def test_tpr_at_fpr_hand_computed():
    neg = np.arange(10) / 10.0  # 0.0 .. 0.9
    pos = np.array([0.95, 0.85, 0.75, 0.1])
    pts = tpr_at_fpr(pos, neg, (0.1, 0.3, 0.05))
    # FPR 0.1: k=1 negative may pass, so everything above the 2nd largest (0.8): 0.95 and 0.85 with 0.9 alone
    assert pts[0].threshold == 0.85 and pts[0].tpr == 0.5 and pts[0].fpr == 0.1
    # FPR 0.3: k=3, above the 4th largest (0.6): 0.95, 0.85, 0.75; from 0.75 up only 0.8 and 0.9 pass
    assert pts[1].threshold == 0.75 and pts[1].tpr == 0.75 and pts[1].fpr == pytest.approx(0.2)
    # FPR 0.05 < 1/10: not resolvable, not a number
    assert not pts[2].resolvable and math.isnan(pts[2].tpr) and math.isnan(pts[2].fpr)


def test_tpr_at_fpr_never_accepts_a_tie_that_exceeds_the_fpr():
    """10 negatives, 3 tied at the top. At FPR 0.1 one negative may pass; taking the tied three (the k-th largest
    as threshold) would be FPR 0.3 and TPR 0.5, so the threshold moves above the tie."""
    neg = np.array([0.9, 0.9, 0.9, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    pos = np.array([0.95, 0.9, 0.7, 0.2])
    at_01, at_02, at_03 = tpr_at_fpr(pos, neg, (0.1, 0.2, 0.3))
    assert (at_01.threshold, at_01.tpr, at_01.fpr) == (0.95, 0.25, 0.0)
    assert (at_02.threshold, at_02.tpr, at_02.fpr) == (0.95, 0.25, 0.0)  # two may pass: still not three
    assert (at_03.threshold, at_03.tpr, at_03.fpr) == (0.7, 0.75, pytest.approx(0.3))  # now the tie fits


def sklearn_operating_point(pos: np.ndarray, neg: np.ndarray, target: float) -> tuple[float, float, float]:
    """(threshold, TPR, FPR) of scikit-learn's ROC: the largest TPR whose FPR <= target, at its smallest FPR."""
    fpr, tpr, thr = sk_roc_curve(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg],
                                 drop_intermediate=False)
    ok = np.flatnonzero(fpr <= target)
    i = ok[np.argmax(tpr[ok])]
    return thr[i], tpr[i], fpr[i]


def test_tpr_at_fpr_equals_sklearn_operating_point_on_rounded_scores():
    rng = np.random.default_rng(1)
    checked = tpr_zero = 0
    for trial in range(40):
        decimals = trial % 3  # 0, 1 or 2 decimals: many ties, some, few
        pos = np.round(rng.normal(1.5, 1, rng.integers(20, 300)), decimals)
        neg = np.round(rng.normal(0, 1, rng.integers(200, 4000)), decimals)
        for p in tpr_at_fpr(pos, neg, (0.5, 0.1, 0.01, 0.003)):
            if not p.resolvable:
                continue
            thr, tpr, fpr = sklearn_operating_point(pos, neg, p.target_fpr)
            assert np.mean(pos >= p.threshold) == p.tpr and np.mean(neg >= p.threshold) == p.fpr <= p.target_fpr
            if tpr > 0:
                assert (p.tpr, p.fpr, p.threshold) == (tpr, pytest.approx(fpr, abs=1e-15), thr)
            else:  # sklearn: +inf, accept nothing; here the lowest threshold that keeps the FPR (see the test below)
                k = int(p.target_fpr * len(neg) + 1e-9)
                assert p.tpr == 0 and p.threshold == np.nextafter(np.sort(neg)[-k - 1], np.inf)
                tpr_zero += 1
            checked += 1
    assert checked > 100 and tpr_zero > 0


def test_a_tpr_of_zero_keeps_the_lowest_threshold_within_the_fpr():
    """No positive above the 2nd largest negative: TPR 0 at FPR 0.1, but the threshold is the lowest score that
    accepts at most 1 of the 10 negatives (just above 0.8), not one above every score (all faces Unknown)."""
    neg = np.arange(10) / 10.0  # 0.0 .. 0.9
    pos = np.array([0.8, 0.5, 0.2])  # the best positive ties the boundary negative: rejected with it
    (p,) = tpr_at_fpr(pos, neg, (0.1,))
    assert p.threshold == np.nextafter(0.8, 1.0) and (p.tpr, p.fpr) == (0.0, 0.1)  # 0.9 alone accepted
    (p,) = tpr_at_fpr(np.array([0.05]), np.array([0.9, 0.9, 0.5, 0.1] + [0.0] * 6), (0.1,))
    assert p.threshold == np.nextafter(0.9, 1.0) and (p.tpr, p.fpr) == (0.0, 0.0)  # the tied top two: both rejected


def test_pair_scores_and_nearest_mean():
    e = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    pos, neg = pair_scores(e, labels, other=np.array([[0, -1]], dtype=np.float32))
    np.testing.assert_allclose(sorted(pos), [0.8, 1.0])  # (0,1) and (2,3)
    np.testing.assert_allclose(sorted(neg), sorted([0, 0.6, 0, 0.6, -0, -0, -1, -0.8]), atol=1e-6)
    assert nearest_mean_accuracy(e, labels, e, labels) == 1.0


def test_bad_scores():
    with pytest.raises(MetricError, match="NaN"):
        roc_auc([np.nan], [0.1])
    with pytest.raises(MetricError, match="0 positive"):
        tpr_at_fpr([], [0.1])
    with pytest.raises(MetricError, match="3 embeddings but 2 labels"):
        pair_scores(np.zeros((3, 2)), np.zeros(2))


def test_l2_normalize_keeps_a_floating_dtype_and_pair_distances_stay_float64():
    from id_rate.metrics import pair_distance
    from id_rate.scoring import l2_normalize

    rows = [[3.0, 4.0], [0.0, 2.0]]
    assert l2_normalize(np.array(rows, np.float64)).dtype == np.float64
    assert l2_normalize(np.array(rows, np.float32)).dtype == np.float32
    assert l2_normalize(np.array([[3, 4]])).dtype == np.float32  # integers: float32
    # two float32 embeddings 1e-4 rad apart: their cosine distance (5e-9) is below float32's resolution near 1,
    # so it is only right when normalised and scored in float64
    a = np.array([[1.0, 0.0]], np.float32)
    b = np.array([[np.cos(1e-4), np.sin(1e-4)]], np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = 1 - (a64 @ b64.T)[0, 0] / np.linalg.norm(a64) / np.linalg.norm(b64)
    assert pair_distance(a, b, "cosine")[0] == pytest.approx(want, rel=1e-9)
    want_l2 = np.linalg.norm(a64 / np.linalg.norm(a64) - b64 / np.linalg.norm(b64))
    assert pair_distance(a, b, "euclidean_l2")[0] == pytest.approx(want_l2, rel=1e-9)
