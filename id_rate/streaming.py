"""Scores of very many pairs without holding them: streaming top-k and a fine histogram.

For the ID-rate protocol (positives = same-identity query pairs, few; negatives = cross-identity query
pairs plus every query x distractor pair, up to 10^10), the negatives go through, chunk by chunk:

* :class:`StreamingTopK` keeps the k + 1 largest scores exactly (k = int(FPR * N_neg) for the smallest FPRs:
  the operating point reads the (k+1)-th largest), so TPR at those FPRs is the same number a full sort gives;
* :class:`ScoreHistogram` counts every score in fine bins over [-1, 1] (2^20 by default: 1.9e-6 wide), which gives
  the threshold at any FPR to within one bin and the ROC-AUC with a stated error bound.

Positives are few (they grow with images per identity, not with distractors) and are kept exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class StreamingTopK:
    """The ``k`` largest values seen, exactly; memory O(k). Candidates above the current floor are
    buffered and cut back to k only when the buffer doubles, so each chunk costs one comparison."""

    def __init__(self, k: int) -> None:
        self.k = int(k)
        self.values = np.empty(0, np.float32)
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.floor = -np.inf  # values <= floor cannot enter: k larger ones are already held

    def update(self, chunk: np.ndarray) -> None:
        if self.k <= 0:
            return
        chunk = np.asarray(chunk, np.float32).ravel()
        if self.floor > -np.inf:
            chunk = chunk[chunk > self.floor]
        if len(chunk) == 0:
            return
        self.pending.append(chunk)
        self.n_pending += len(chunk)
        if self.n_pending + len(self.values) >= 2 * self.k:
            self._cut()

    def _cut(self) -> None:
        merged = np.concatenate([self.values, *self.pending])
        self.pending, self.n_pending = [], 0
        if len(merged) > self.k:
            merged = np.partition(merged, len(merged) - self.k)[-self.k:]
            self.floor = float(merged.min())
        self.values = merged

    def sorted_desc(self) -> np.ndarray:
        self._cut()
        return np.sort(self.values)[::-1]


@dataclass
class ScoreHistogram:
    """Counts of scores in ``bins`` equal bins over [lo, hi]; scores outside are clipped into the end bins."""

    bins: int = 1 << 20
    lo: float = -1.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.bins, np.int64)

    def index(self, scores: torch.Tensor) -> torch.Tensor:
        scale = self.bins / (self.hi - self.lo)
        return ((scores.float() - self.lo) * scale).long().clamp_(0, self.bins - 1)

    def update(self, scores: torch.Tensor | np.ndarray) -> None:
        # histc bins in one pass without an index array (bincount of int64 indices costs 8 bytes a score)
        s = torch.as_tensor(scores).reshape(-1).float().clamp(self.lo, self.hi)
        step = 1 << 24  # histc counts in float32: exact up to 2^24 per call
        for i in range(0, len(s), step):
            self.counts += torch.histc(s[i:i + step], self.bins, self.lo, self.hi).cpu().numpy().astype(np.int64)

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / self.bins

    def edge(self, i: int) -> float:
        return self.lo + i * self.width


def histogram_auc(pos_hist: np.ndarray, neg_hist: np.ndarray) -> tuple[float, float]:
    """ROC-AUC from binned positives and negatives, and its largest possible error: pairs sharing a bin
    count one half, and could be anything from 0 to 1."""
    P, N = pos_hist.sum(), neg_hist.sum()
    neg_below = np.cumsum(neg_hist) - neg_hist
    wins = float((pos_hist * neg_below).sum())
    ties = float((pos_hist * neg_hist).sum())
    return (wins + 0.5 * ties) / (P * N), 0.5 * ties / (P * N)
