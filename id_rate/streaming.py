"""Scores of very many pairs without holding them: streaming top-k and a fine histogram.

For the ID-rate protocol (positives = same-identity query pairs, few; negatives = cross-identity query
pairs plus every query x distractor pair, up to 10^10), the negatives go through, chunk by chunk:

* :class:`StreamingTopK` keeps the k + 1 largest scores exactly (k = int(FPR * N_neg) for the smallest FPRs:
  the operating point reads the (k+1)-th largest), so TPR at those FPRs is the same number a full sort gives;
* :class:`ScoreHistogram` counts every score in fine bins over [-1, 1] (2^20 by default: 1.9e-6 wide), which gives
  the threshold at any FPR to within one bin and the ROC-AUC with a stated error bound.

Positives are few (they grow with images per identity, not with distractors) and are kept exactly.

Speed: the histogram and the top-k's candidates come from one pass over each block of scores, a numba kernel on
the caller's torch threads (per-thread int32 counts, no index array), so scoring costs little more than the matrix
product itself; without numba, numpy counts the same bins (slower). The histogram also raises the top-k's floor
(:meth:`ScoreHistogram.floor_below`), so few scores are ever copied for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class StreamingTopK:
    """The ``k`` largest values seen, exactly; memory O(k). Candidates above the current floor are
    buffered and cut back to k only when the buffer doubles, so each chunk costs one comparison.
    :meth:`raise_floor` takes a floor known from elsewhere (the histogram's), which makes the cut a filter."""

    def __init__(self, k: int) -> None:
        self.k = int(k)
        self.values = np.empty(0, np.float32)
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.floor = -np.inf  # values <= floor cannot enter: k values >= floor have been seen (and held)

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

    def raise_floor(self, floor: float) -> None:
        """``floor`` is below the k-th largest value seen (k seen values are above it): drop what lies under it."""
        self.floor = max(self.floor, float(floor))

    def _cut(self) -> None:
        merged = np.concatenate([self.values, *self.pending])
        self.pending, self.n_pending = [], 0
        if self.floor > -np.inf:  # a raised floor may lie above values taken before; >=: keep the floor's own copies
            merged = merged[merged >= self.floor]
        if len(merged) >= 2 * self.k:
            merged = np.partition(merged, len(merged) - self.k)[-self.k:]
            self.floor = float(merged.min())
        self.values = merged

    def sorted_desc(self) -> np.ndarray:
        self._cut()
        return np.sort(self.values)[::-1][:self.k]


# Compiled lazily (importing numba takes about 0.5 s, and most runs never stream). While ``prange`` is ``range``
# the kernels below are plain Python; :func:`_kernels` rebinds it to numba's before compiling them.
prange = range
USE_NUMBA = True  # False: numpy counts the same bins, as without numba (tests compare both)
_COMPILED: tuple | None = None
# Per-thread counts are int32 (half the cache of int64), folded into the int64 totals before any could overflow
_LOCAL_LIMIT = (1 << 31) - 1
# Scores above the top-k's floor kept per thread by a kernel call; more (early chunks, when the floor is still low)
# and that thread's share is filtered again by numpy: 4 MB each
_CANDIDATES_PER_THREAD = 1 << 20


def _count_kernel(x, lo, scale, floor, local, cand, n_cand):  # noqa: ANN001, ANN202 - numba-typed
    """Per thread: count a contiguous share of ``x`` into ``local[t]`` (the bin of v is int((v - lo) * scale) in
    float64, clipped to the end bins) and copy the scores > ``floor`` into ``cand[t]`` (``n_cand[t]`` counts them
    all, even past its end): one pass over the scores for both."""
    nt, bins = local.shape
    n = x.shape[0]
    cap = cand.shape[1]
    top = bins - 1
    for t in prange(nt):
        a = n * t // nt
        b = n * (t + 1) // nt
        counts = local[t]
        m = 0
        for i in range(a, b):
            v = x[i]
            j = min(int(max((np.float64(v) - lo) * scale, 0.0)), top)
            counts[j] += 1
            if v > floor:
                if m < cap:
                    cand[t, m] = v
                m += 1
        n_cand[t] = m


def _pairs_kernel(s, row0, labels, lo, scale, floor, local, cand, n_cand, pos, n_pos):  # noqa: ANN001, ANN202
    """Rows ``row0``.. of the query x query scores (block ``s``), pairs j > i only: same-identity scores are copied
    to ``pos[t]`` (row-major), the others counted and offered as in :func:`_count_kernel`. Threads share rows."""
    nt, bins = local.shape
    r, nq = s.shape
    cap = cand.shape[1]
    top = bins - 1
    for t in prange(nt):
        counts = local[t]
        m = 0
        p = 0
        for ii in range(r * t // nt, r * (t + 1) // nt):
            i = row0 + ii
            li = labels[i]
            for j in range(i + 1, nq):
                v = s[ii, j]
                if labels[j] == li:
                    pos[t, p] = v
                    p += 1
                else:
                    counts[min(int(max((np.float64(v) - lo) * scale, 0.0)), top)] += 1
                    if v > floor:
                        if m < cap:
                            cand[t, m] = v
                        m += 1
        n_cand[t] = m
        n_pos[t] = p


def _kernels() -> tuple | None:
    """(count, pairs) compiled by numba (cached on disk), or None without numba."""
    global _COMPILED, prange
    if not USE_NUMBA:
        return None
    if _COMPILED is None:
        try:
            import numba
        except ImportError:
            _COMPILED = ()
        else:
            prange = numba.prange
            jit = numba.njit(parallel=True, cache=True, nogil=True)
            _COMPILED = (jit(_count_kernel), jit(_pairs_kernel))
    return _COMPILED or None


@dataclass
class ScoreHistogram:
    """Counts of scores in ``bins`` equal bins over [lo, hi]; scores outside are clipped into the end bins.

    The bin of a (float32) score v is int((v - lo) * bins / (hi - lo)) computed in float64, the same on every path:
    the numba kernel, numpy, and torch on a GPU. :meth:`edge` gives the lowest float32 score of each bin, so
    "score >= edge(i)" is exactly "in bin i or above"."""

    bins: int = 1 << 20
    lo: float = -1.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        self._counts = np.zeros(self.bins, np.int64)
        self._local: np.ndarray | None = None  # per-thread int32 counts of the numba kernels, not yet in _counts
        self._local_most = 0  # the most any one local bin can hold now
        self._cand = np.empty((0, 0), np.float32)

    @property
    def counts(self) -> np.ndarray:
        """Scores per bin (int64)."""
        self._fold()
        return self._counts

    @property
    def scale(self) -> float:
        return self.bins / (self.hi - self.lo)

    def index(self, scores: np.ndarray) -> np.ndarray:
        """Each score's bin, as every path computes it."""
        f = (np.asarray(scores, np.float32).astype(np.float64) - self.lo) * self.scale
        return np.minimum(np.maximum(f, 0.0).astype(np.int64), self.bins - 1)

    def update(self, scores: torch.Tensor | np.ndarray, above: float | None = None) -> np.ndarray | None:
        """Count ``scores``; with ``above``, also return the scores > ``above`` (float32, any order), found in
        the same pass: the top-k's candidates. ``above`` = -inf returns every score (no copy where possible)."""
        if isinstance(scores, torch.Tensor) and scores.device.type != "cpu":
            return self._update_torch(scores.reshape(-1), above)
        x = np.ascontiguousarray(torch.as_tensor(scores).reshape(-1).numpy(), np.float32) \
            if isinstance(scores, torch.Tensor) else np.ascontiguousarray(np.ravel(scores), np.float32)
        kernels = _kernels()
        keep_all = above is not None and above == -np.inf
        floor = np.float32(np.inf if above is None or keep_all else above)
        parts: list[np.ndarray] = []
        step = 1 << 30 if kernels else 1 << 22  # numpy: 4M scores at a time (8 bytes each in flight)
        for i in range(0, len(x), step):
            part = x[i:i + step]
            if kernels:
                nt = self._threads(len(part), len(part))
                n_cand = np.zeros(nt, np.int64)
                kernels[0](part, float(self.lo), float(self.scale), floor, self._local, self._cand, n_cand)
                parts += self._candidates(n_cand, floor, lambda t: part[len(part) * t // nt:len(part) * (t + 1) // nt])
            else:
                self._counts += np.bincount(self.index(part), minlength=self.bins)
                if np.isfinite(floor):
                    parts.append(part[part > floor])
        if above is None:
            return None
        if keep_all:
            return x
        return np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else np.empty(0, np.float32)

    def update_pairs(self, s: torch.Tensor, row0: int, labels: np.ndarray,
                     above: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """A block of query x query scores (rows ``row0``.., every query as columns), pairs j > i only: count those
        of two identities (``labels``, int64 per query) and return (the same-identity scores in row-major order,
        the counted scores > ``above`` as :meth:`update` does)."""
        kernels = _kernels()
        r, nq = s.shape
        if kernels is None or s.device.type != "cpu" or r * nq >= 1 << 30:
            lt = torch.as_tensor(labels, device=s.device)
            same = lt[row0:row0 + r, None] == lt[None, :]
            upper = torch.arange(nq, device=s.device)[None, :] > torch.arange(row0, row0 + r, device=s.device)[:, None]
            return s[upper & same].cpu().numpy(), self.update(s[upper & ~same], above)
        x = np.ascontiguousarray(s.numpy(), np.float32)
        keep_all = above is not None and above == -np.inf
        nt = self._threads(r, r * nq)
        # the most same-identity pairs a thread's rows can hold: rows x (largest identity - 1)
        most = (-(-r // nt)) * max(1, int(np.bincount(labels).max()) - 1)
        pos, n_pos = np.empty((nt, most), np.float32), np.zeros(nt, np.int64)
        n_cand = np.zeros(nt, np.int64)
        floor = np.float32(-np.inf if keep_all else np.inf if above is None else above)
        kernels[1](x, row0, labels, float(self.lo), float(self.scale), floor, self._local, self._cand, n_cand, pos,
                   n_pos)
        positives = np.concatenate([pos[t, :n_pos[t]] for t in range(nt)])
        if above is None:
            return positives, None

        def share(t: int) -> np.ndarray:  # thread t's counted scores, again
            rows = np.arange(r * t // nt, r * (t + 1) // nt)
            keep = (np.arange(nq)[None, :] > (row0 + rows)[:, None]) & (labels[row0 + rows, None] != labels[None, :])
            return x[rows][keep]

        parts = self._candidates(n_cand, floor, share)
        return positives, (np.concatenate(parts) if len(parts) > 1 else parts[0] if parts
                           else np.empty(0, np.float32))

    def _threads(self, rows: int, n: int) -> int:
        """Threads for a kernel call over ``rows`` rows and ``n`` scores, the local counts ready for them."""
        nt = max(1, min(torch.get_num_threads(), rows))  # the threads the caller gave torch, no more
        if self._local is None or self._local.shape[0] != nt or self._local_most + n > _LOCAL_LIMIT:
            self._fold()
            self._local = np.zeros((nt, self.bins), np.int32)
        if len(self._cand) != nt:
            self._cand = np.empty((nt, _CANDIDATES_PER_THREAD), np.float32)
        self._local_most += n  # one thread could count all of them into one bin (an unbalanced share), no more
        return nt

    def _candidates(self, n_cand: np.ndarray, floor: np.float32, share) -> list[np.ndarray]:  # noqa: ANN001
        """The kernel's candidates per thread; a thread whose buffer overflowed has its ``share(t)`` filtered
        again."""
        if floor == np.inf:  # nothing asked for
            return []
        out = []
        for t in range(len(n_cand)):
            if n_cand[t] <= self._cand.shape[1]:
                out.append(self._cand[t, :n_cand[t]].copy())
            else:
                scores = share(t)
                out.append(scores[scores > floor])
        return out

    def _fold(self) -> None:
        if self._local is not None and self._local_most:
            self._counts += self._local.sum(0, dtype=np.int64)
            self._local[:] = 0
        self._local_most = 0

    def _update_torch(self, s: torch.Tensor, above: float | None) -> torch.Tensor | np.ndarray | None:
        # On the scores' own device (a GPU): the same float64 bin formula, 4M scores at a time
        for i in range(0, len(s), 1 << 22):
            f = (s[i:i + (1 << 22)].double() - self.lo) * self.scale
            idx = f.clamp_(min=0).long().clamp_(max=self.bins - 1)
            self._counts += torch.bincount(idx, minlength=self.bins).cpu().numpy()
        if above is None:
            return None
        return (s if above == -np.inf else s[s > above]).float().cpu().numpy()

    def floor_below(self, k: int) -> float:
        """A float32 score with at least ``k`` counted scores above it, as high as the bins tell (the lowest edge
        of the bin holding the k-th largest, less one float32 step); -inf if that is bin 0 or fewer are counted."""
        from_top = np.cumsum(self.counts[::-1])
        m = int(np.searchsorted(from_top, k))  # the top m + 1 bins hold >= k scores
        b = self.bins - 1 - m
        if b <= 0:
            return -np.inf
        return float(np.nextafter(np.float32(self.edge(b)), np.float32(-np.inf)))

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / self.bins

    def edge(self, i: int) -> float:
        """The lowest edge of bin i: the smallest float32 score counted in bin i or above, so a threshold of
        edge(i) accepts exactly the bins from i up. ``lo`` for bin 0 and ``hi`` for ``bins`` (nominal ends)."""
        if i <= 0:
            return float(self.lo)
        if i >= self.bins:
            return float(self.hi)
        # bisect the float32 values in order (as integers: near 0 they are too dense to step through)
        below, at = _float32_key(-np.inf), _float32_key(np.inf)  # bin 0 < i <= bins - 1
        while at - below > 1:
            mid = (below + at) // 2
            if self.index(_float32_of_key(mid)) >= i:
                at = mid
            else:
                below = mid
        return float(_float32_of_key(at))


def _float32_key(x: float) -> int:
    """An integer in the order of the float32 values (-0 and 0 share one)."""
    bits = int(np.array(x, np.float32).view(np.int32))
    return bits if bits >= 0 else -(bits & 0x7FFFFFFF)


def _float32_of_key(key: int) -> np.float32:
    bits = key if key >= 0 else (-key) | 0x80000000
    return np.array(bits, np.uint32).view(np.float32)[()]


def histogram_auc(pos_hist: np.ndarray, neg_hist: np.ndarray) -> tuple[float, float]:
    """ROC-AUC from binned positives and negatives, and its largest possible error: pairs sharing a bin
    count one half, and could be anything from 0 to 1."""
    P, N = pos_hist.sum(), neg_hist.sum()
    neg_below = np.cumsum(neg_hist) - neg_hist
    wins = float((pos_hist * neg_below).sum())
    ties = float((pos_hist * neg_hist).sum())
    return (wins + 0.5 * ties) / (P * N), 0.5 * ties / (P * N)
