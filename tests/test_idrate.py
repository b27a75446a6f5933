"""The seed ID-rate protocol: brute force on a small set, the streaming path within its stated errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from id_rate.metrics import MetricError, SEED_FPRS
from id_rate.protocols import idrate
from id_rate.streaming import StreamingTopK


def synthetic(n_ids=12, per_id=4, n_dist=300, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    q = np.repeat(centres, per_id, axis=0) + rng.normal(scale=0.9, size=(n_ids * per_id, dim))
    labels = np.repeat(np.arange(n_ids), per_id)
    return q.astype(np.float32), labels, rng.normal(size=(n_dist, dim)).astype(np.float32)


def brute_force(q, labels, d, fprs):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    pos, neg = [], []
    for i, j in itertools.combinations(range(len(q)), 2):
        (pos if labels[i] == labels[j] else neg).append(float(qn[i] @ qn[j]))
    neg += [float(x) for x in (qn @ dn.T).ravel()]
    neg_sorted = np.sort(neg)
    out = {}
    for f in fprs:  # the definition: the largest TPR of any threshold (a positive's score) whose FPR <= f
        fpr_of = lambda t: (len(neg) - np.searchsorted(neg_sorted, t, "left")) / len(neg)  # noqa: E731
        k = int(f * len(neg) + 1e-9)
        out[f] = None if k < 1 else max([np.mean(np.array(pos) >= t) for t in pos if fpr_of(t) <= f], default=0.0)
    return out, len(pos), len(neg), pos, neg


def test_exact_path_equals_brute_force():
    q, labels, d = synthetic()
    fprs = SEED_FPRS + (1e-6,)
    expect, n_pos, n_neg, pos, neg = brute_force(q, labels, d, fprs)
    r = idrate(q, labels, d, fprs=fprs, device="cpu", chunk=64)
    assert (r.n_pos, r.n_neg) == (n_pos, n_neg) == (12 * 6, 48 * 47 // 2 - 72 + 48 * 300)
    for p in r.points:
        assert p.exact and p.tpr == pytest.approx(expect[p.target_fpr]) if expect[p.target_fpr] is not None else p.tpr is None
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    assert r.auc == pytest.approx(roc_auc_score(y, np.r_[pos, neg]), abs=1e-6)


def test_streaming_path_within_stated_error():
    q, labels, d = synthetic(n_ids=20, per_id=5, n_dist=2000, seed=1)
    exact = idrate(q, labels, d, device="cpu")
    # force streaming: small FPRs through top-k (exact), large ones through the histogram
    stream = idrate(q, labels, d, device="cpu", chunk=100, exact_limit=0, topk_budget=5000, hist_bins=1 << 16)
    assert stream.auc_error > 0 and abs(stream.auc - exact.auc) <= stream.auc_error + 1e-9
    for e, s in zip(exact.points, stream.points):
        if s.exact:
            assert s.tpr == e.tpr and s.threshold == pytest.approx(e.threshold) and s.fpr == e.fpr
        else:  # the histogram's point accepts whole bins: a real operating point, at FPR <= target too
            assert abs(s.tpr - e.tpr) <= s.tpr_error + 1e-9 and s.fpr <= s.target_fpr
    assert any(p.exact for p in stream.points) and any(not p.exact for p in stream.points)


def test_streaming_topk_equals_full_sort():
    rng = np.random.default_rng(2)
    data = rng.normal(size=100_000).astype(np.float32)
    top = StreamingTopK(777)
    for chunk in np.array_split(data, 37):
        top.update(chunk)
    np.testing.assert_array_equal(top.sorted_desc(), np.sort(data)[::-1][:777])


def test_bad_inputs_named():
    q, labels, d = synthetic(n_ids=3, per_id=2, n_dist=5)
    with pytest.raises(MetricError, match="query identity 2 has one image"):
        idrate(q[:5], labels[:5], d)
    with pytest.raises(MetricError, match="needs >= 2 identities .* or distractors"):
        idrate(q[:2], labels[:2], None)
    one = idrate(q[:2], labels[:2], d)  # one person against distractors: what training validates
    assert (one.n_query_identities, one.n_pos, one.n_neg) == (1, 1, 2 * 5)
    bad = q.copy()
    bad[3] = np.nan
    with pytest.raises(MetricError, match="query embeddings: row 3 has NaN"):
        idrate(bad, labels, d)
    zero = d.copy()
    zero[1] = 0
    with pytest.raises(MetricError, match="distractor embeddings: row 1 is all zeros"):
        idrate(q, labels, zero)
    with pytest.raises(MetricError, match="6 query embeddings but 5 labels"):
        idrate(q, labels[:5], d)


def test_cli_from_embeddings_file(tmp_path, capsys):
    from id_rate.__main__ import main

    q, labels, d = synthetic(n_ids=6, per_id=3, n_dist=40)
    emb = np.concatenate([q, d])
    lab = np.concatenate([labels, 100 + np.arange(len(d))])
    split = np.array(["query"] * len(q) + ["distractor"] * len(d))
    np.savez(tmp_path / "mine.npz", embeddings=emb, labels=lab, split=split)
    rc = main(["--embeddings", str(tmp_path / "mine.npz"), "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    direct = idrate(q, labels, d)
    table = (tmp_path / "out" / "table.md").read_text()
    assert f"{direct.auc:.4f}" in table and "| mine |" in table
    assert "n/r" in table  # 0.001 x 735 negatives < 1: not resolvable, not a number
    assert (tmp_path / "out" / "roc.png").stat().st_size > 1000
    # bad file: a clear message, exit 2
    np.savez(tmp_path / "bad.npz", embeddings=emb, labels=lab[:-1])
    capsys.readouterr()
    rc = main(["--embeddings", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "out2")])
    assert rc == 2 and "bad.npz: 58 embeddings but 57 labels" in capsys.readouterr().err


@pytest.mark.parametrize("fpr", ["2e-3", "0", "1.5", "nan"])
def test_write_thresholds_at_an_fpr_the_table_lacks_is_refused_before_any_work(tmp_path, capsys, fpr):
    from id_rate.__main__ import main

    # the embeddings file does not exist: the FPR is refused before anything is read or written
    rc = main(["--embeddings", str(tmp_path / "none.npz"), "--out", str(tmp_path / "out"), "--write-thresholds", fpr,
               "--thresholds-file", str(tmp_path / "thr.json")])
    err = capsys.readouterr().err
    assert rc == 2 and f"--write-thresholds {float(fpr):g}: thresholds are measured at the table's FPRs; use one of " \
        "0.5, 0.25, 0.1, 0.05, 0.01, 0.005, 0.001" in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "thr.json").exists()


def test_cli_models_on_real_faces(small_aligned, tmp_path, capsys):
    """Random init and SFace on held-out real faces: every output written; SFace separates people."""
    import json

    from id_rate.__main__ import main

    out = tmp_path / "out"
    rc = main(["--models", "random-init", "sface", "--data", str(small_aligned), "--query-ids", "3",
               "--distractor-ids", "12", "--bootstrap", "30", "--out", str(out), "--write-thresholds", "0.01",
               "--thresholds-file", str(tmp_path / "thr.json"), "--no-progress", "--no-cache"])
    assert rc == 0, capsys.readouterr().err[-2000:]
    res = json.loads((out / "results.json").read_text())["models"]
    assert res["sface"]["auc"] > 0.95 and res["sface"]["auc"] > res["random-init"]["auc"]
    lo, hi = res["sface"]["bootstrap95"]["auc"]
    assert lo <= res["sface"]["auc"] <= hi
    assert res["sface"]["open_set"]["rank1"] == 1.0  # first image enrolled, the others found at rank 1
    for name in ("table.md", "table.csv", "roc.png", "similarity.png", "accuracy_threshold.png"):
        assert (out / name).stat().st_size > 100, name
    thr = json.loads((tmp_path / "thr.json").read_text())
    assert set(thr) == {"random-init", "sface"}
    assert [(r["fpr"], r["flip"]) for r in thr["sface"]] == [(0.01, False)]  # one record per (FPR, flip)
    capsys.readouterr()
    rc = main(["--models", "nope", "--data", str(small_aligned), "--out", str(tmp_path / "out_nope")])
    assert rc == 2 and "unknown model 'nope'; valid:" in capsys.readouterr().err


def test_table_and_json_give_the_fpr_each_tpr_was_reached_at(tmp_path):
    """Rounded scores tie: the reached FPR is stated beside each TPR, and is never above its target."""
    import json

    from id_rate.report import table_rows, write_report

    q, labels, d = synthetic(n_ids=10, per_id=4, n_dist=400, seed=3)
    q, d = np.round(q / np.linalg.norm(q, axis=1, keepdims=True), 1), np.round(d, 0)  # coarse: many tied scores
    r = idrate(q, labels, d, fprs=(0.01, 0.001, 1e-6), device="cpu")
    at_01, at_001, unresolved = r.points
    assert at_01.fpr <= 0.01 and at_001.fpr <= 0.001 and unresolved.fpr is None
    row = table_rows({"m": r})[0]
    assert row["TPR@FPR=0.01"] == f"{at_01.tpr:.4f} ({at_01.fpr:.2g})" and row["TPR@FPR=1e-06"] == "n/r"
    write_report({"m": r}, tmp_path, {})
    points = json.loads((tmp_path / "results.json").read_text())["models"]["m"]["points"]
    assert [(p["target_fpr"], p["fpr"]) for p in points] == [(0.01, at_01.fpr), (0.001, at_001.fpr), (1e-6, None)]
