"""The streaming histogram's counts on hand-made scores (numba kernel, numpy and torch paths alike), its candidates
for the top-k, and the streaming ID-rate equal to the exact one where both fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from id_rate import streaming
from id_rate.protocols import idrate
from id_rate.streaming import ScoreHistogram

# 8 bins of 0.25 over [-1, 1]: every edge, both ends, a value just below an edge and values out of range
HAND = np.array([-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, -1.5, 2, 0.1, -0.1,
                 np.nextafter(-0.75, 0, dtype=np.float32)], np.float32)
HAND_COUNTS = [2, 2, 1, 2, 2, 1, 1, 3]  # by hand: bin i holds [-1 + i/4, -1 + (i+1)/4), the ends clipped in


@pytest.fixture(params=["numba", "numpy"])
def path(request, monkeypatch):
    """Both counting paths: the numba kernel (skipped without numba) and the numpy fallback."""
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(streaming, "USE_NUMBA", request.param == "numba")
    return request.param


def test_hand_made_counts_equal_histc_and_numpy(path):
    h = ScoreHistogram(8)
    h.update(HAND)
    assert h.counts.tolist() == HAND_COUNTS
    clipped = np.clip(HAND, -1, 1)
    assert h.counts.tolist() == torch.histc(torch.from_numpy(clipped), 8, -1, 1).long().tolist()
    assert h.counts.tolist() == np.histogram(clipped, 8, (-1, 1))[0].tolist()
    h.update(torch.from_numpy(HAND))  # a tensor counts the same, and counts add up
    assert h.counts.tolist() == [2 * c for c in HAND_COUNTS]


def test_fine_bins_equal_numpy_histogram(path):
    rng = np.random.default_rng(0)
    bins = 1 << 20
    edges = (-1 + rng.integers(0, bins + 1, 2000) / (bins / 2)).astype(np.float32)  # exact bin edges
    x = np.concatenate([rng.normal(0, 0.1, 300_000), rng.uniform(-1.2, 1.2, 100_000), edges]).astype(np.float32)
    h = ScoreHistogram(bins)
    for part in np.array_split(x, 7):
        h.update(part)
    np.testing.assert_array_equal(h.counts, np.histogram(np.clip(x, -1, 1), bins, (-1, 1))[0])
    g = ScoreHistogram(bins)
    g._update_torch(torch.from_numpy(x), None)  # the GPU path's formula, here on the CPU
    np.testing.assert_array_equal(g.counts, h.counts)


def test_edge_is_the_first_score_of_its_bin():
    h = ScoreHistogram(1000, -1.0, 1.0)  # not a power of two: the nominal edges round
    for i in [1, 3, 250, 499, 500, 501, 777, 999]:
        e = np.float32(h.edge(i))
        assert h.index(e) == i and h.index(np.nextafter(e, np.float32(-2))) == i - 1
    assert (h.edge(0), h.edge(1000)) == (-1.0, 1.0)


@pytest.mark.parametrize("per_thread", [1 << 20, 100])  # 100: the kernel's buffer overflows, numpy filters again
def test_candidates_are_the_scores_above(path, per_thread, monkeypatch):
    monkeypatch.setattr(streaming, "_CANDIDATES_PER_THREAD", per_thread)
    x = np.random.default_rng(1).normal(0, 0.2, 50_001).astype(np.float32)
    h = ScoreHistogram(1 << 12)
    for above in (0.3, float(np.sort(x)[-7])):
        got = h.update(x, above=above)
        np.testing.assert_array_equal(np.sort(got), np.sort(x[x > above]))
    every = h.update(x, above=-np.inf)  # no floor yet: every score, not copied
    assert np.shares_memory(every, x) and len(every) == len(x)
    assert h.update(x) is None
    assert h.counts.sum() == 4 * len(x)


def test_streaming_idrate_equals_exact(path):
    rng = np.random.default_rng(3)
    q = rng.normal(size=(60, 32)).astype(np.float32) + np.repeat(rng.normal(size=(12, 32)), 5, 0).astype(np.float32)
    labels = np.repeat(np.arange(12), 5)
    d = rng.normal(size=(700, 32)).astype(np.float32)
    exact = idrate(q, labels, d, device="cpu")
    # every FPR through the streaming top-k: each equals the exact path's, bit for bit
    stream = idrate(q, labels, d, device="cpu", chunk=97, exact_limit=0)
    assert stream.n_neg == exact.n_neg > 0 and all(p.exact for p in stream.points)
    for e, s in zip(exact.points, stream.points):
        assert (s.tpr, s.threshold, s.fpr) == (e.tpr, e.threshold, e.fpr)
    assert 0 < stream.auc_error < 1e-4 and abs(stream.auc - exact.auc) <= stream.auc_error
    # the larger FPRs from the histogram instead: a real operating point within the stated error
    hist = idrate(q, labels, d, device="cpu", chunk=97, exact_limit=0, topk_budget=100, hist_bins=1 << 16)
    assert any(not p.exact for p in hist.points)
    for e, s in zip(exact.points, hist.points):
        if not s.exact:
            assert abs(s.tpr - e.tpr) <= s.tpr_error + 1e-12 and s.fpr <= s.target_fpr
            pos, neg_above = hist.pos_scores, s.fpr * hist.n_neg
            assert s.tpr == pytest.approx(np.mean(pos >= s.threshold), abs=1e-12)  # exactly the bins counted
            assert neg_above == pytest.approx(round(neg_above))


@pytest.mark.parametrize("per_thread", [1 << 20, 50])
def test_query_pair_blocks_split_like_the_masks(path, per_thread, monkeypatch):
    monkeypatch.setattr(streaming, "_CANDIDATES_PER_THREAD", per_thread)
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 9, 40)
    s = torch.from_numpy(rng.uniform(-1, 1, (13, 40)).astype(np.float32))  # rows 20..32 against all 40
    same = labels[20:33, None] == labels[None, :]
    upper = np.arange(40)[None, :] > np.arange(20, 33)[:, None]
    for above in (None, -np.inf, 0.5):
        h = ScoreHistogram(64)
        pos, cand = h.update_pairs(s, 20, labels, above)
        np.testing.assert_array_equal(pos, s.numpy()[upper & same])  # row-major, as the exact path orders them
        neg = s.numpy()[upper & ~same]
        np.testing.assert_array_equal(h.counts, np.histogram(neg, 64, (-1, 1))[0])
        if above is None:
            assert cand is None
        else:
            np.testing.assert_array_equal(np.sort(cand), np.sort(neg[neg > above]))


def test_floor_below_and_a_raised_floor_keep_the_exact_top_k():
    h = ScoreHistogram(8)
    h.update(HAND)  # bins from the top: 3, 1, 1, 2, ...
    assert h.floor_below(4) == np.nextafter(np.float32(0.5), np.float32(-1))  # bins 6 and 7 hold 4 scores >= 0.5
    assert h.floor_below(3) == np.nextafter(np.float32(0.75), np.float32(-1))
    assert h.floor_below(14) == -np.inf  # every score: the k-th largest is in bin 0
    # coarse scores (many ties): the top-k with the histogram's floor raised after every chunk equals a full sort
    rng = np.random.default_rng(5)
    data = np.round(rng.normal(0, 0.2, 200_000), 3).astype(np.float32)
    k = 5001
    hist, top = ScoreHistogram(1 << 10), streaming.StreamingTopK(k)
    for chunk in np.array_split(data, 23):
        top.update(hist.update(chunk, above=top.floor))
        top.raise_floor(hist.floor_below(k))
    assert top.floor > -np.inf
    np.testing.assert_array_equal(top.sorted_desc(), np.sort(data)[::-1][:k])


def test_streaming_idrate_with_raised_floors_equals_exact(monkeypatch):
    from id_rate import protocols

    monkeypatch.setattr(protocols, "FLOOR_EVERY_SCORES", 1)  # raise the floor after every block
    rng = np.random.default_rng(6)
    q = np.round(rng.normal(size=(40, 8)), 1).astype(np.float32)  # coarse: tied scores
    labels = np.repeat(np.arange(10), 4)
    d = np.round(rng.normal(size=(500, 8)), 1).astype(np.float32)
    exact = idrate(q, labels, d, device="cpu")
    stream = idrate(q, labels, d, device="cpu", chunk=50, exact_limit=0)
    for e, s in zip(exact.points, stream.points):
        assert s.exact and (s.tpr, s.threshold, s.fpr) == (e.tpr, e.threshold, e.fpr)


def test_one_query_row_a_block_with_no_negative_pair_left(path):
    """chunk=1: the last query row's block holds no pair j > i, so it passes nothing on; both paths agree with the
    exact protocol (the numpy path once failed on such an empty block)."""
    rng = np.random.default_rng(3)
    q = rng.standard_normal((40, 16)).astype(np.float32)
    d = rng.standard_normal((20, 16)).astype(np.float32)
    labels = np.repeat(np.arange(10), 4)
    exact = idrate(q, labels, d, fprs=(1e-2,), device="cpu")
    stream = idrate(q, labels, d, fprs=(1e-2,), device="cpu", chunk=1, exact_limit=0)
    assert stream.auc == pytest.approx(exact.auc, abs=stream.auc_error + 1e-12)
    assert stream.points[0].tpr == exact.points[0].tpr
