"""Paired comparisons: exact McNemar by hand, per-pair decisions equal the reported 10-fold accuracy, the fold
(cluster) bootstrap by hand, and paired bootstraps that are zero for a model against itself and agree with the
one-model bootstrap."""
from __future__ import annotations

import numpy as np
import pytest

from id_rate.metrics import MetricError, kfold_accuracy
from id_rate.paired import (binomial_two_sided_p, bootstrap_pair_set, fold_resamples, kfold_correct, mcnemar_exact,
                            pair_folds, pair_resamples, paired_bootstrap_idrate, paired_bootstrap_pair_set,
                            resampling_unit, verdict, verification_distance)
from id_rate.protocols import (bootstrap_idrate, identity_draws, idrate, idrate_figures, idrate_pairs,
                               pair_verification)


def test_mcnemar_by_hand_ten_pairs():
    # 10 pairs: both right on 4, only A on 4, only B on 1, both wrong on 1 -> A right on 8, B on 5.
    # Discordant: n10 = 4 (A right, B wrong), n01 = 1, so 5 discordant pairs. Under "equally good" the
    # count of A's among them is Bin(5, 1/2): P(X <= 1) = (C(5,0) + C(5,1)) / 2^5 = 6/32, and the
    # two-sided p = 2 * 6/32 = 12/32 = 0.375.
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0], bool)
    r = mcnemar_exact(a, b)
    assert (r.n, r.n10, r.n01) == (10, 4, 1)
    assert r.accuracy_diff == pytest.approx(0.8 - 0.5)
    assert r.p_value == 0.375
    assert verdict(r.accuracy_diff, r.p_value) == "no difference beyond chance (p=0.375)"
    # swapping the models swaps the counts, not the p-value
    s = mcnemar_exact(b, a)
    assert (s.n10, s.n01, s.p_value) == (1, 4, 0.375) and s.accuracy_diff == pytest.approx(-0.3)


def test_mcnemar_significant_both_directions():
    # n10 = 6, n01 = 0: p = 2 * C(6,0) / 2^6 = 2/64 = 0.03125 < 0.05
    a = np.array([1] * 6 + [1] * 4, bool)
    b = np.array([0] * 6 + [1] * 4, bool)
    r = mcnemar_exact(a, b)
    assert (r.n10, r.n01, r.p_value) == (6, 0, 0.03125)
    assert verdict(r.accuracy_diff, r.p_value, "sface", "dlib") == "sface better (p=0.031)"
    r = mcnemar_exact(b, a)
    assert verdict(r.accuracy_diff, r.p_value, "dlib", "sface") == "sface better (p=0.031)"
    assert verdict(-0.1, 0.01) == "B better (p=0.010)"
    # n10 = 5, n01 = 0: p = 2/32 = 0.0625, not below 0.05
    assert binomial_two_sided_p(5, 5) == 0.0625


def test_identical_models_p_one():
    rng = np.random.default_rng(0)
    c = rng.random(50) < 0.7
    r = mcnemar_exact(c, c)
    assert (r.n10, r.n01, r.accuracy_diff, r.p_value) == (0, 0, 0.0, 1.0)
    assert verdict(r.accuracy_diff, r.p_value).startswith("no difference beyond chance (p=1")


def test_binomial_p_equals_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 1), (3, 10), (7, 10), (40, 100), (1, 2), (500, 1100), (10, 10)]:
        assert binomial_two_sided_p(k, n) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-12)
    assert binomial_two_sided_p(0, 0) == 1.0


def _pairs(rng, n_pairs: int, noise: float, dim: int = 16):
    y = np.tile(np.r_[np.ones(n_pairs // 20, bool), np.zeros(n_pairs // 20, bool)], 10)
    a = rng.normal(size=(n_pairs, dim))
    b = np.where(y[:, None], a + noise * rng.normal(size=(n_pairs, dim)), rng.normal(size=(n_pairs, dim)))
    return a, b, y


def test_kfold_correct_is_the_reported_fold_accuracy():
    rng = np.random.default_rng(1)
    a, b, y = _pairs(rng, 200, 1.2)
    folds = pair_folds(len(y), None)
    wrong = np.zeros(len(y), bool)
    wrong[[0, 150]] = True  # pairs with a missing image: wrong for every threshold
    d = verification_distance(a, b, y, wrong)
    c = kfold_correct(d, y, folds)
    k = kfold_accuracy(d, y, folds)
    assert [c[folds == f].mean() for f in range(10)] == pytest.approx(k.fold_accuracy)
    assert not c[0] and not c[150]
    r = pair_verification(a, b, y, folds, counted_wrong=wrong)  # what the table reports
    assert c.reshape(10, -1).mean(1).mean() == pytest.approx(r.accuracy_mean)
    with pytest.raises(MetricError, match="equal folds"):
        pair_folds(199, None)


def test_pair_bootstrap_zero_for_a_model_against_itself():
    rng = np.random.default_rng(2)
    a, b, y = _pairs(rng, 200, 1.0)
    d = verification_distance(a, b, y)
    folds = pair_folds(len(y), None)
    c = kfold_correct(d, y, folds)
    r = paired_bootstrap_pair_set(d, d, c, c, y, folds, n=50, seed=3)
    for key in ("accuracy", "auc"):  # every resampled difference is 0: m = 50, p = min(1, 2 * 51 / 51) = 1
        assert (r[key].diff, r[key].low, r[key].high, r[key].p_value, r[key].n_resamples) == (0.0, 0.0, 0.0, 1.0, 50)
        assert r[key].resampled == "folds"


def test_fold_resamples_draw_whole_folds():
    folds = np.repeat([3, 5, 7, 9], [2, 3, 4, 5])  # unequal folds, ids not 0..K-1
    for idx in fold_resamples(folds, 30, 1):
        drawn = np.bincount(np.searchsorted([3, 5, 7, 9], folds[idx]), minlength=4)
        assert drawn.sum() == len(idx) and (drawn % [2, 3, 4, 5] == 0).all()  # every fold drawn whole, k times
        assert (drawn // [2, 3, 4, 5]).sum() == 4  # K = 4 folds per resample
        for f in np.unique(folds[idx]):  # a drawn fold brings every one of its pairs
            assert set(np.flatnonzero(folds == f)) <= set(idx)
    assert list(map(list, fold_resamples(folds, 5, 2))) == list(map(list, fold_resamples(folds, 5, 2)))
    assert resampling_unit(folds) == "folds" and resampling_unit(np.zeros(9)) == resampling_unit(None) == "pairs"


def test_fold_bootstrap_by_hand():
    # 10 folds x 10 pairs. A is right on every pair of folds 0-8 and wrong on one pair of fold 9; B is wrong on
    # one pair of every fold. Per fold, A - B = +0.1 on folds 0-8 and 0 on fold 9, so a resample of 10 folds
    # has A - B = 0.01 x (folds drawn from 0-8): 0 only if all 10 draws are fold 9 (chance 1e-10). Every
    # resampled difference is > 0, so m = 0 and p = 2 / (N + 1); the interval lies in [0.01, 0.1], excluding 0.
    folds = np.repeat(np.arange(10), 10)
    y = np.tile(np.r_[np.ones(5, bool), np.zeros(5, bool)], 10)
    d = np.where(y, 0.3, 0.7)
    ca, cb = np.ones(100, bool), np.ones(100, bool)
    ca[95] = False
    cb[::10] = False
    r = paired_bootstrap_pair_set(d, d, ca, cb, y, folds, n=200, seed=7)
    acc = r["accuracy"]
    assert (acc.a, acc.b, acc.diff) == pytest.approx((0.99, 0.9, 0.09))
    assert acc.p_value == 2 / 201 and 0.01 - 1e-12 <= acc.low <= acc.diff <= acc.high <= 0.1 + 1e-12
    assert verdict(acc.diff, acc.p_value) == "A better (p=0.010)"
    assert (r["auc"].diff, r["auc"].low, r["auc"].high, r["auc"].p_value) == (0.0, 0.0, 0.0, 1.0)  # same distances
    # each model's own interval comes from the same fold draws: the percentiles of its resampled accuracies
    accs = [ca[idx].mean() for idx in fold_resamples(folds, 200, 7)]
    assert bootstrap_pair_set(d, y, ca, folds, n=200, seed=7)["accuracy"] == \
        pytest.approx(tuple(np.percentile(accs, [2.5, 97.5])))
    # the discordant counts (a description): A only right on B's 10 misses (pairs 0, 10, ..., 90), B only on 95
    m = mcnemar_exact(ca, cb)
    assert (m.n10, m.n01) == (10, 1)


def test_pair_set_without_folds_resamples_pairs():
    rng = np.random.default_rng(4)
    a, b, y = _pairs(rng, 400, 0.6)
    good = verification_distance(a, b, y)
    bad = verification_distance(a, rng.normal(size=b.shape), y)  # chance
    folds = pair_folds(len(y), None)
    cg, cb = kfold_correct(good, y, folds), kfold_correct(bad, y, folds)
    r = paired_bootstrap_pair_set(good, bad, cg, cb, y, None, n=100, seed=0)
    assert {k: v.resampled for k, v in r.items()} == {"accuracy": "pairs", "auc": "pairs"}
    auc = r["auc"]
    assert auc.diff > 0.3 and 0 < auc.low <= auc.diff <= auc.high and auc.p_value == pytest.approx(2 / 101)
    # the fallback draws pair_resamples' stratified resamples: the AUC interval of those draws by hand
    sim_g, sim_b = 1 - good, 1 - bad
    from id_rate.metrics import roc_auc

    diffs = [roc_auc(sim_g[i][y[i]], sim_g[i][~y[i]]) - roc_auc(sim_b[i][y[i]], sim_b[i][~y[i]])
             for i in pair_resamples(y, 100, 0)]
    assert (auc.low, auc.high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
    assert paired_bootstrap_pair_set(good, bad, cg, cb, y, np.zeros(len(y)), n=100, seed=0) == r  # one fold: same
    # with the folds: cluster resamples, the better model still found; its own interval holds its point value
    f = paired_bootstrap_pair_set(good, bad, cg, cb, y, folds, n=100, seed=0)
    assert f["auc"].resampled == "folds" and verdict(f["auc"].diff, f["auc"].p_value, "good", "bad").startswith("good")
    ci = bootstrap_pair_set(good, y, cg, folds, n=100, seed=0)
    assert ci["accuracy"][0] <= cg.mean() <= ci["accuracy"][1] and ci["auc"][0] <= f["auc"].a <= ci["auc"][1] <= 1.0


def _idrate_set(rng, n_ids: int, per: int, noise: float, n_dist: int, dim: int = 16):
    centres = rng.normal(size=(n_ids, dim))
    q = np.repeat(centres, per, 0) + noise * rng.normal(size=(n_ids * per, dim))
    ql = np.repeat([f"id{i}" for i in range(n_ids)], per)
    d = rng.normal(size=(n_dist, dim))
    dl = np.repeat([f"d{i}" for i in range(n_dist // 2)], 2)
    n = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return n(q), ql, n(d), dl


def test_paired_idrate_bootstrap_against_itself_is_zero():
    rng = np.random.default_rng(5)
    q, ql, d, dl = _idrate_set(rng, 12, 4, 0.8, 200)
    r = paired_bootstrap_idrate(q, q, ql, d, d, dl, n=40, seed=1)
    for key in ("auc", "tpr@0.001"):
        assert (r[key].diff, r[key].low, r[key].high, r[key].p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_idrate_bootstrap_matches_the_one_model_figures():
    rng = np.random.default_rng(6)
    q, ql, d, dl = _idrate_set(rng, 12, 4, 0.7, 200)
    qb, _, db, _ = _idrate_set(np.random.default_rng(7), 12, 4, 1.5, 200)  # same layout, a worse model
    r = paired_bootstrap_idrate(q, qb, ql, d, db, dl, n=60, seed=9, fpr=1e-3)
    exact_a, exact_b = idrate(q, ql, d, device="cpu"), idrate(qb, ql, db, device="cpu")
    assert r["auc"].a == pytest.approx(exact_a.auc) and r["auc"].b == pytest.approx(exact_b.auc)
    assert r["tpr@0.001"].a == pytest.approx(exact_a.tpr(1e-3)) and r["tpr@0.001"].b == pytest.approx(exact_b.tpr(1e-3))
    assert r["auc"].low <= r["auc"].diff <= r["auc"].high and r["auc"].diff > 0
    # each model's marginal over the paired draws is bootstrap_idrate's interval for the same seed
    qids, qi = np.unique(ql, return_inverse=True)
    dids, di = np.unique(dl, return_inverse=True)
    pairs = idrate_pairs(q, qi, d, di, len(qids))
    aucs = [idrate_figures(pairs, wq, wd, (1e-3,))["auc"] for wq, wd in identity_draws(len(qids), len(dids), 60, 9)]
    one = bootstrap_idrate(q, ql, d, dl, n=60, seed=9, workers=1)
    assert tuple(np.percentile(aucs, [2.5, 97.5])) == pytest.approx(one["auc"])


def test_paired_idrate_refuses_different_sets():
    rng = np.random.default_rng(8)
    q, ql, d, dl = _idrate_set(rng, 6, 3, 0.8, 20)
    with pytest.raises(MetricError, match="not the same queries"):
        paired_bootstrap_idrate(q, q[:-1], ql, d, d, dl, n=5)
    with pytest.raises(MetricError, match="not the same distractors"):
        paired_bootstrap_idrate(q, q, ql, d, d[:-2], dl, n=5)
    # 18 queries, no distractors: 135 negatives cannot resolve FPR 1e-3, so only the AUC is compared
    assert set(paired_bootstrap_idrate(q, q, ql, None, None, None, n=5, fpr=1e-3)) == {"auc"}
    with pytest.raises(MetricError, match="same pairs"):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))
