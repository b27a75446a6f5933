"""LFW k-fold, fixed-threshold verification, distances, open-set identification and the bootstrap."""
from __future__ import annotations

import numpy as np
import pytest

from facedata.lfw import format_pairs, parse_pairs
from id_rate.metrics import (MetricError, accuracy_curve, best_threshold, kfold_accuracy, pair_distance,
                             verification_at_threshold)
from id_rate.protocols import (_SortedNegatives, bootstrap_idrate, identity_draws, idrate, idrate_figures,
                               idrate_pairs, open_set_identification, pair_verification)
from id_rate.metrics import roc_auc, tpr_at_fpr


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
    # FPIR 0.5: k = int(0.5 * 2) = 1 non-mated search may pass, so everything above the smaller non-mated top
    # score (0: probe [0, 0, 1] is orthogonal to both) may be accepted; the threshold is the lower of the two
    # rank-1 mates' scores (0.98), which no non-mated search (0.61 at most) reaches
    p = r.points[0]
    lower_mate = 1 / np.linalg.norm([0.2, 1, 0])  # probe 2 against identity 20
    assert p["threshold"] == pytest.approx(lower_mate) and p["fpir"] == 0.0
    assert p["dir"] == pytest.approx(2 / 3)  # probes 1 and 2 found at rank 1; probe 3 is not
    assert r.points[1]["dir"] is None  # 0.1 x 2 non-mated searches < 1: not resolvable


def test_weighted_metrics_with_unit_weights_are_the_plain_ones():
    rng = np.random.default_rng(3)
    pos, neg = np.round(rng.normal(1, 1, 50), 1), np.round(rng.normal(0, 1, 500), 1)
    s = _SortedNegatives(pos, neg, np.zeros(500, int), np.arange(500))
    ones = s.weights(np.ones(1), np.ones(500))
    assert s.auc(np.ones(50), ones) == pytest.approx(roc_auc(pos, neg))
    for f in (0.004, 0.01, 0.05, 0.2):  # rounded scores tie: the rule that rejects a tie as a whole, weighted too
        assert s.tpr(np.ones(50), ones, f) == tpr_at_fpr(pos, neg, (f,))[0].tpr
    # weight 2 == the score repeated
    w = np.ones(500)
    w[:10] = 2
    rep = np.r_[neg, neg[:10]]
    assert s.auc(np.ones(50), s.weights(np.ones(1), w)) == pytest.approx(roc_auc(pos, rep))
    for f in (0.004, 0.01, 0.05, 0.2):
        assert s.tpr(np.ones(50), s.weights(np.ones(1), w), f) == tpr_at_fpr(pos, rep, (f,))[0].tpr


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
    assert bootstrap_idrate(q, labels, d, n=40, fprs=(1e-2, 1e-3), workers=2) == one
    assert bootstrap_idrate(q, labels, d, n=40, fprs=(1e-2, 1e-3), workers=8) == one


def test_bootstrap_resample_scores_like_the_resampled_set():
    """A resample weighs a pair by how often its identities were drawn: its figures are those of the plain
    metrics on the pair scores repeated that many times (same rule for TPR@FPR, ties included)."""
    rng = np.random.default_rng(6)
    q = np.round(np.repeat(rng.normal(size=(10, 4)), 3, axis=0) + rng.normal(scale=0.7, size=(30, 4)), 1)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d = rng.normal(size=(40, 4))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    labels = np.repeat(np.arange(10), 3)
    pairs = idrate_pairs(q.astype(np.float32), labels, d.astype(np.float32), np.arange(40), 10)
    sn, pos_id = pairs
    for wq, wd in list(identity_draws(10, 40, 5, seed=3)):
        got = idrate_figures(pairs, wq, wd, (0.01, 0.05))
        pos = np.repeat(sn.pos, wq[pos_id].astype(int))
        neg = np.repeat(sn.ns, sn.weights(wq, np.r_[wq, wd]).astype(int))
        assert got["auc"] == pytest.approx(roc_auc(pos, neg), abs=1e-12)
        for f, p in zip((0.01, 0.05), tpr_at_fpr(pos, neg, (0.01, 0.05))):
            assert got[f"tpr@{f:g}"] == pytest.approx(p.tpr, abs=1e-12)


def test_tar_at_far_rejects_a_tie_that_would_exceed_the_far():
    """1,000 different-person pairs, 3 of them tied at cosine 0.9: FAR 1e-3 lets one through, so the tie stays
    out and only same-person pairs above it count (the k-th-largest rule said TAR 1 at a real FAR of 3e-3)."""
    def at(cos: float) -> np.ndarray:
        return np.array([cos, np.sqrt(1 - cos ** 2)])

    same = np.tile([True, False], 1000)
    diff_cos = np.r_[[0.9] * 3, [0.0] * 997]
    same_cos = np.r_[[0.95] * 500, [0.9] * 500]
    cos = np.empty(2000)
    cos[same], cos[~same] = same_cos, diff_cos
    r = pair_verification(np.tile([1.0, 0.0], (2000, 1)), np.stack([at(c) for c in cos]), same)
    assert r.tar_at_far_1e3 == pytest.approx(0.5) and r.achieved_far_1e3 == 0.0


def test_bootstrap_and_exact_auc_agree_on_tied_scores():
    """Issue 19: a collapsed model (every embedding nearly the same, all scores tied to their last bits) had a
    held-out AUC outside its own bootstrap interval. Ties are counted one half by both (hand-made tied scores
    below); the scores themselves differed: the table computed them with torch in blocks, the bootstrap with
    numpy, and the two broke the last-bit ties differently. With every identity drawn once the bootstrap must
    give the table's figures exactly."""
    from id_rate.protocols import check_embeddings

    pos = np.array([0.9, 0.5, 0.5, 0.2], np.float32)
    neg = np.array([0.5, 0.5, 0.2, 0.2, 0.1, 0.9, 0.0, 0.0, 0.0, 0.0], np.float32)
    sn = _SortedNegatives(pos, neg, np.zeros(len(neg), int), np.zeros(len(neg), int))
    ones_p, ones_n = np.ones(len(pos)), np.ones(len(neg))
    # by hand: 0.9 beats 9, ties 1 -> 9.5; each 0.5 beats 7, ties 2 -> 8; 0.2 beats 5, ties 2 -> 6; of 4 x 10
    assert roc_auc(pos, neg) == sn.auc(ones_p, ones_n) == (9.5 + 8 + 8 + 6) / 40
    # FPR 0.2: 2 negatives may pass, the 3rd largest (0.5) is the boundary: the 0.5 positives tie it, rejected
    assert sn.tpr(ones_p, ones_n, 0.2) == tpr_at_fpr(pos, neg, (0.2,))[0].tpr == 0.25

    rng = np.random.default_rng(0)
    base = rng.normal(size=128).astype(np.float32)
    q = base + 1e-6 * rng.normal(size=(12, 128)).astype(np.float32)  # 2 identities of 6, scores tied to 1e-7
    labels = np.repeat([0, 1], 6)
    d = base + 1e-6 * rng.normal(size=(40, 128)).astype(np.float32)
    exact = idrate(q, labels, d, fprs=(0.1, 0.01), device="cpu")
    pairs = idrate_pairs(check_embeddings(q, "q"), labels, check_embeddings(d, "d"), np.arange(len(d)), 2)
    once = idrate_figures(pairs, np.ones(2), np.ones(len(d)), (0.1, 0.01))
    assert once == {"auc": exact.auc, "tpr@0.1": exact.tpr(0.1), "tpr@0.01": exact.tpr(0.01)}
