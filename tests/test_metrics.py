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
    # FPR 0.1: k=1, threshold 0.9 -> only 0.95 passes
    assert pts[0].threshold == 0.9 and pts[0].tpr == 0.25 and pts[0].fpr == 0.1
    # FPR 0.3: k=3, threshold 0.7 -> 0.95, 0.85, 0.75
    assert pts[1].threshold == pytest.approx(0.7) and pts[1].tpr == 0.75
    # FPR 0.05 < 1/10: not resolvable, not a number
    assert not pts[2].resolvable and math.isnan(pts[2].tpr)


def test_tpr_at_fpr_brute_force():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, 200), rng.normal(0, 1, 1000)
    for p in tpr_at_fpr(pos, neg):
        k = int(p.target_fpr * 1000 + 1e-9)
        thr = sorted(neg, reverse=True)[k - 1]
        assert p.tpr == sum(x >= thr for x in pos) / 200
        assert p.fpr <= p.target_fpr + 1e-12


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
