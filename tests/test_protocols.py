"""LFW k-fold, fixed-threshold verification, distances, open-set identification and the bootstrap."""
from __future__ import annotations

import numpy as np
import pytest

from facedata.lfw import format_pairs, parse_pairs
from id_rate.metrics import (MetricError, accuracy_curve, best_threshold, kfold_accuracy, pair_distance,
                             verification_at_threshold)
from id_rate.protocols import (_SortedNegatives, bootstrap_idrate, idrate, open_set_identification,
                               pair_verification)
from id_rate.metrics import roc_auc


def test_verification_at_threshold_by_hand_and_undefined():
    d = np.array([0.1, 0.2, 0.6, 0.9])
    same = np.array([True, False, True, False])
    m = verification_at_threshold(d, same, 0.5)  # accepted: 0.1 (TP), 0.2 (FP); rejected 0.6 (FN), 0.9 (TN)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 1)
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    none = verification_at_threshold(d, same, 0.05)  # nothing accepted: precision 0/0 is undefined, not 0
    assert none["precision"] is None and none["recall"] == 0.0 and none["f1"] is None


def test_distances():
    a, b = np.array([[3.0, 0.0]]), np.array([[0.0, 4.0]])
    assert pair_distance(a, b, "euclidean")[0] == pytest.approx(5.0)
    assert pair_distance(a, b, "euclidean_l2")[0] == pytest.approx(np.sqrt(2))
    assert pair_distance(a, b, "cosine")[0] == pytest.approx(1.0)
    with pytest.raises(MetricError, match="unknown distance 'l1'; valid: euclidean, euclidean_l2, cosine"):
        pair_distance(a, b, "l1")


def test_accuracy_curve_matches_brute_force():
    rng = np.random.default_rng(0)
    d = np.round(rng.random(200), 2)
    y = rng.random(200) < 0.5
    t, acc = accuracy_curve(d, y)
    for ti, ai in zip(t[::7], acc[::7]):
        assert ai == pytest.approx(np.mean((d < ti) == y))
    bt, ba = best_threshold(d, y)
    assert ba == pytest.approx(max(np.mean((d < x) == y) for x in np.r_[d, d.max() + 1]))


def test_kfold_on_a_pairs_file_with_known_answers(tmp_path):
    # 2 folds x (2 same + 2 different). Fold 0 is separable at any threshold in (0.3, 0.7); fold 1 has
    # one different-person pair at 0.2 that no threshold learnt on fold 0 can reject.
    text = "2\t2\nA\t1\t2\nB\t1\t2\nA\t1\tC\t1\nB\t1\tD\t1\nE\t1\t2\nF\t1\t2\nE\t1\tG\t1\nF\t1\tH\t1\n"
    (tmp_path / "pairs.txt").write_text(text)
    pairs = parse_pairs(tmp_path / "pairs.txt")
    assert [p.fold for p in pairs] == [0] * 4 + [1] * 4 and format_pairs(pairs, 2, 2).split() == text.split()
    d = np.array([0.1, 0.3, 0.7, 0.9, 0.1, 0.3, 0.2, 0.9])
    same = np.array([p.same for p in pairs])
    r = kfold_accuracy(d, same, np.array([p.fold for p in pairs]))
    # Fold 1 (0.1 T, 0.3 T, 0.2 F, 0.9 F): accuracy 3/4 for t in (0.1, 0.2) and in (0.3, 0.9); the lowest
    # tie, midpoint 0.15, is used on fold 0 (0.1 T, 0.3 T, 0.7 F, 0.9 F): accepts 0.1 only, 3/4 right.
    assert r.fold_threshold[0] == pytest.approx(0.15) and r.fold_accuracy[0] == 0.75
    # Fold 0 is separable: midpoint 0.5; on fold 1 the 0.2 different-person pair is accepted: 3/4.
    assert r.fold_threshold[1] == pytest.approx(0.5) and r.fold_accuracy[1] == 0.75
    assert r.mean == pytest.approx(np.mean(r.fold_accuracy)) and r.std == pytest.approx(np.std(r.fold_accuracy))


def test_pair_verification_end_to_end():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(600, 8))
    same = np.tile([True] * 30 + [False] * 30, 10)
    b = np.where(same[:, None], a + rng.normal(scale=0.3, size=a.shape), rng.normal(size=a.shape))
    r = pair_verification(a, b, same)
    assert r.n_pairs == 600 and len(r.fold_accuracy) == 10 and r.accuracy_mean > 0.95
    assert r.tar_at_far_1e3 is None  # 300 different-person pairs cannot resolve FAR 1e-3
    with pytest.raises(MetricError, match="do not split into 7 equal folds"):
        pair_verification(a, b, same, n_folds=7)


def test_open_set_by_hand():
    g = np.array([[1, 0, 0], [0, 1, 0]], float)  # identities 10, 20
    probes = np.array([[1, 0.1, 0], [0.2, 1, 0], [0.9, 0, 0.5], [0, 0, 1], [0.6, 0.6, 0.5]])
    labels = np.array([10, 20, 20, 99, 98])  # third probe: identity 20 but closer to 10 (rank 2)
    r = open_set_identification(g, np.array([10, 20]), probes, labels, fpir=(0.5, 0.1))
    assert (r.n_mated, r.n_nonmated) == (3, 2)
    assert r.rank1 == pytest.approx(2 / 3) and r.rank5 == 1.0
    p = r.points[0]  # k = int(0.5 * 2) = 1: threshold = the larger non-mated top score
    nm_top = max(np.array([0.6, 0.6, 0.5]) / np.linalg.norm([0.6, 0.6, 0.5]))
    assert p["threshold"] == pytest.approx(nm_top) and p["fpir"] == 0.5
    assert p["dir"] == pytest.approx(2 / 3)  # both rank-1 mates score ~0.99 >= 0.69
    assert r.points[1]["dir"] is None  # 0.1 x 2 non-mated searches < 1: not resolvable


def test_weighted_metrics_with_unit_weights_are_the_plain_ones():
    rng = np.random.default_rng(3)
    pos, neg = np.round(rng.normal(1, 1, 50), 1), np.round(rng.normal(0, 1, 500), 1)
    s = _SortedNegatives(pos, neg, np.zeros(500, int), np.arange(500))
    ones = s.weights(np.ones(1), np.ones(500))
    assert s.auc(np.ones(50), ones) == pytest.approx(roc_auc(pos, neg))
    k = int(0.01 * 500)
    thr = np.sort(neg)[::-1][k - 1]
    assert s.tpr(np.ones(50), ones, 0.01) == np.mean(pos >= thr)
    # weight 2 == the score repeated
    w = np.ones(500)
    w[:10] = 2
    rep = np.r_[neg, neg[:10]]
    assert s.auc(np.ones(50), s.weights(np.ones(1), w)) == pytest.approx(roc_auc(pos, rep))
    for f in (0.01, 0.05, 0.2):
        thr2 = np.sort(rep)[::-1][int(f * 510) - 1]
        assert s.tpr(np.ones(50), s.weights(np.ones(1), w), f) == np.mean(pos >= thr2)


def test_bootstrap_interval_contains_the_estimate():
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(15, 16))
    q = np.repeat(centres, 4, axis=0) + rng.normal(scale=1.0, size=(60, 16))
    labels = np.repeat(np.arange(15), 4)
    d = rng.normal(size=(200, 16))
    point = idrate(q, labels, d, fprs=(1e-2,))
    ci = bootstrap_idrate(q, labels, d, n=100, fprs=(1e-2,))
    assert ci["auc"][0] <= point.auc <= ci["auc"][1] and ci["auc"][1] - ci["auc"][0] > 0
    assert ci["tpr@0.01"][0] <= point.tpr(1e-2) <= ci["tpr@0.01"][1]


def test_bootstrap_threads_give_the_same_intervals():
    """The resamples are drawn in order from one generator: scoring them on two threads changes nothing."""
    rng = np.random.default_rng(5)
    q = np.repeat(rng.normal(size=(12, 8)), 3, axis=0) + rng.normal(scale=0.8, size=(36, 8))
    labels, d = np.repeat(np.arange(12), 3), rng.normal(size=(50, 8))
    one = bootstrap_idrate(q, labels, d, n=40, fprs=(1e-2, 1e-3), workers=1)
    # what the one-loop version before threads (commit 823d618) gave on these inputs
    old = {"auc": (0.8634888509461031, 0.9591848544973545), "tpr@0.01": (0.13819444444444448, 0.47361111111111104),
           "tpr@0.001": (0.0, 0.1694444444444443)}
    assert all(np.allclose(one[k], old[k], rtol=0, atol=1e-12) for k in old)
    assert bootstrap_idrate(q, labels, d, n=40, fprs=(1e-2, 1e-3), workers=2) == one
    assert bootstrap_idrate(q, labels, d, n=40, fprs=(1e-2, 1e-3), workers=8) == one
