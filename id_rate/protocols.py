"""The seed project's ID-rate protocol, computed in chunks so that it scales to millions of distractors.

Query identities (several images each) and distractor identities (never trained on). Positive pairs:
same-identity query pairs. Negative pairs: cross-identity query pairs and every query x distractor pair.
Scores are cosine similarities of L2-normalised embeddings. For each FPR the threshold is the k-th
largest negative score, k = int(FPR * N_neg), and TPR is the share of positives at or above it; k = 0
is reported as not resolvable.

Up to ``exact_limit`` negatives everything is exact (all scores kept). Beyond it, negatives stream:
the smallest FPRs stay exact through a streaming top-k (up to ``topk_budget`` scores), the others and
the ROC-AUC come from a fine histogram, each with its largest possible error stated.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .metrics import SEED_FPRS, MetricError, roc_auc, roc_curve, tpr_at_fpr
from .streaming import ScoreHistogram, StreamingTopK, histogram_auc


@dataclass
class RatePoint:
    target_fpr: float
    tpr: float | None  # None: FPR below 1 / N_neg, not resolvable
    threshold: float | None
    exact: bool
    tpr_error: float = 0.0  # largest possible |reported - exact| (histogram path only)


@dataclass
class IdRateResult:
    n_query: int
    n_query_identities: int
    n_distractor: int
    n_pos: int
    n_neg: int
    auc: float
    auc_error: float  # 0 when exact
    points: list[RatePoint]
    roc_fpr: np.ndarray = field(repr=False)
    roc_tpr: np.ndarray = field(repr=False)
    pos_scores: np.ndarray = field(repr=False)

    def tpr(self, fpr: float) -> float | None:
        for p in self.points:
            if p.target_fpr == fpr:
                return p.tpr
        raise KeyError(f"FPR {fpr} not computed; computed: {[p.target_fpr for p in self.points]}")

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("roc_fpr", "roc_tpr", "pos_scores")}
        return d


def check_embeddings(emb: np.ndarray, name: str) -> np.ndarray:
    """Float32 L2-normalised copy; NaN, inf or zero-norm rows are an error naming the first such row."""
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or len(emb) == 0:
        raise MetricError(f"{name}: expected a non-empty (N, D) array, got shape {emb.shape}")
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        raise MetricError(f"{name}: row {int(np.flatnonzero(bad)[0])} has NaN or inf ({int(bad.sum())} such rows)")
    norms = np.linalg.norm(emb, axis=1)
    if (norms == 0).any():
        raise MetricError(f"{name}: row {int(np.flatnonzero(norms == 0)[0])} is all zeros (no direction to compare)")
    return emb / norms[:, None]


def check_query_labels(labels: np.ndarray, n: int, names: list[str] | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if len(labels) != n:
        raise MetricError(f"{n} query embeddings but {len(labels)} labels")
    ids, counts = np.unique(labels, return_counts=True)
    if len(ids) < 2:
        raise MetricError(f"the query set needs >= 2 identities (cross-identity negatives), got {len(ids)}")
    single = ids[counts < 2]
    if len(single):
        who = names[int(single[0])] if names is not None else single[0].item()
        raise MetricError(f"query identity {who!r} has one image, so no positive pair ({len(single)} such "
                          "identities); give query identities >= 2 images or move them to the distractors")
    return labels


def idrate(query: np.ndarray, query_labels: np.ndarray, distractors: np.ndarray | None = None,
           fprs: tuple[float, ...] = SEED_FPRS, device: str | None = None, chunk: int = 8192,
           exact_limit: int = 20_000_000, topk_budget: int = 1 << 25, hist_bins: int = 1 << 20) -> IdRateResult:
    """The ID-rate table for one model (see the module docstring)."""
    q = check_embeddings(query, "query embeddings")
    labels = check_query_labels(query_labels, len(q))
    d = check_embeddings(distractors, "distractor embeddings") if distractors is not None and len(distractors) else \
        np.zeros((0, q.shape[1]), np.float32)
    if d.shape[1] != q.shape[1]:
        raise MetricError(f"query embeddings are {q.shape[1]}-D but distractors {d.shape[1]}-D")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    nq, nd = len(q), len(d)
    _, counts = np.unique(labels, return_counts=True)
    n_pos = int((counts * (counts - 1) // 2).sum())
    n_neg = nq * (nq - 1) // 2 - n_pos + nq * nd

    qt = torch.from_numpy(q).to(dev)
    lt = torch.from_numpy(labels.astype(np.int64)).to(dev)
    dt = torch.from_numpy(d).to(dev)
    exact = n_neg <= exact_limit
    pos_parts: list[np.ndarray] = []
    neg_parts: list[np.ndarray] = []
    ks = {f: int(f * n_neg + 1e-9) for f in fprs}
    k_top = max([k for k in ks.values() if k <= topk_budget], default=0)
    top = StreamingTopK(k_top)
    hist = ScoreHistogram(hist_bins)

    def take_neg(s: torch.Tensor) -> None:
        if exact:
            neg_parts.append(s.cpu().numpy().ravel())
        else:
            hist.update(s)
            top.update(s.cpu().numpy())

    with torch.inference_mode():
        rows = max(1, min(nq, chunk * 64 // max(1, nq)))  # query-vs-query block: rows x nq scores
        for i in range(0, nq, rows):
            s = qt[i:i + rows] @ qt.T
            r = torch.arange(i, min(i + rows, nq), device=dev)[:, None]
            upper = torch.arange(nq, device=dev)[None, :] > r
            same = lt[i:i + rows, None] == lt[None, :]
            pos_parts.append(s[upper & same].cpu().numpy())
            take_neg(s[upper & ~same])
        for j in range(0, nd, chunk):
            take_neg(qt @ dt[j:j + chunk].T)

    pos = np.concatenate(pos_parts) if pos_parts else np.zeros(0, np.float32)
    if exact:
        neg = np.concatenate(neg_parts) if neg_parts else np.zeros(0, np.float32)
        pts = [RatePoint(p.target_fpr, p.tpr if p.resolvable else None, p.threshold, True)
               for p in tpr_at_fpr(pos, neg, fprs)]
        fpr_c, tpr_c, _ = roc_curve(pos, neg)
        return IdRateResult(nq, len(counts), nd, n_pos, n_neg, roc_auc(pos, neg), 0.0, pts, fpr_c, tpr_c, pos)

    pos_hist = np.bincount(hist.index(torch.from_numpy(pos)).numpy(), minlength=hist.bins)
    auc, auc_err = histogram_auc(pos_hist, hist.counts)
    top_desc = top.sorted_desc()
    neg_from_top = np.cumsum(hist.counts[::-1])  # negatives in the top b bins
    pos_sorted = np.sort(pos)
    pts = []
    for f in fprs:
        k = ks[f]
        if k < 1:
            pts.append(RatePoint(f, None, None, True))
        elif k <= len(top_desc):
            thr = float(top_desc[k - 1])
            pts.append(RatePoint(f, float(np.mean(pos >= thr)), thr, True))
        else:
            b = hist.bins - 1 - int(np.searchsorted(neg_from_top, k))  # bin holding the k-th largest
            lo, hi = hist.edge(b), hist.edge(b + 1)
            at_lo = 1 - np.searchsorted(pos_sorted, lo, "left") / len(pos)
            at_hi = 1 - np.searchsorted(pos_sorted, hi, "left") / len(pos)
            pts.append(RatePoint(f, float((at_lo + at_hi) / 2), float((lo + hi) / 2), False, float((at_lo - at_hi) / 2)))
    # ROC from the histograms: accept bins from the top down.
    tp = np.r_[0, np.cumsum(pos_hist[::-1])] / len(pos)
    fp = np.r_[0, neg_from_top] / n_neg
    keep = np.r_[True, np.diff(fp) + np.diff(tp) > 0]
    return IdRateResult(nq, len(counts), nd, n_pos, n_neg, auc, auc_err, pts, fp[keep], tp[keep], pos)
