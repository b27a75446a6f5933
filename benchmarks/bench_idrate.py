"""ID-rate scoring at scale against the matrix product alone (the floor), and against a naive pair list.

    python benchmarks/bench_idrate.py [--queries 10000] [--distractors 100000 1000000] [--dim 512] [--no-numba]

The floor is timed just before and just after the scoring call and the ratio is taken against their mean: on a
shared machine the product alone varies by more than the difference being measured. The process CPU seconds of
both are given too (the work done, less sensitive to other processes than wall time). ``--no-numba`` counts the
histogram with numpy instead of the numba kernel (what runs where numba is not installed).

Memory: the process's resident set sampled every 20 ms during the scoring call (peak, and growth over
the RSS at its start, which holds the embeddings), on random unit vectors (speed does not depend on
the values).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from id_rate.metrics import tpr_at_fpr  # noqa: E402
from id_rate import streaming  # noqa: E402
from id_rate.protocols import idrate  # noqa: E402


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRSS:
    """Samples VmRSS on a thread while the block runs."""

    def __enter__(self):
        import threading

        self.start, self.peak, self._stop = rss_mb(), rss_mb(), threading.Event()

        def watch():
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, rss_mb())

        self._t = threading.Thread(target=watch, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())


def data(nq: int, nd: int, dim: int, per_id: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(nq, dim, generator=g), dim=1).numpy()
    d = torch.nn.functional.normalize(torch.randn(nd, dim, generator=g), dim=1).numpy()
    return q, np.repeat(np.arange(nq // per_id + 1), per_id)[:nq], d


def floor_seconds(q: np.ndarray, d: np.ndarray, chunk: int = 8192) -> tuple[float, float]:
    """Wall and process CPU seconds of the matrix products alone."""
    qt, dt = torch.from_numpy(q), torch.from_numpy(d)
    t, c = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        qt @ qt.T
        for j in range(0, len(d), chunk):
            qt @ dt[j:j + chunk].T
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--distractors", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--naive-size", type=int, nargs=2, default=[600, 3000], metavar=("Q", "D"))
    p.add_argument("--no-numba", action="store_true", help="count the histogram with numpy (the fallback)")
    args = p.parse_args()
    torch.set_num_threads(2)
    streaming.USE_NUMBA = not args.no_numba
    counting = "numpy" if streaming._kernels() is None else "numba kernel"  # compiles (or loads) it before timing
    print(f"histogram counting: {counting}", flush=True)
    rows = []
    # naive vs protocol on a size a full pair list holds
    q, lab, d = data(*args.naive_size, args.dim)
    t = time.perf_counter()
    qn = q @ q.T
    iu = np.triu_indices(len(q), 1)
    same = lab[iu[0]] == lab[iu[1]]
    pos, neg = qn[iu][same], np.concatenate([qn[iu][~same], (q @ d.T).ravel()])
    from sklearn.metrics import roc_auc_score

    naive_auc = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
    naive_tpr = [x.tpr for x in tpr_at_fpr(pos, neg)]
    naive_s = time.perf_counter() - t
    t = time.perf_counter()
    r = idrate(q, lab, d, device="cpu")
    ours_s = time.perf_counter() - t
    # float32 scores from numpy and torch matmuls differ in the last bit: AUC to 1e-6, TPRs exactly.
    same_result = abs(r.auc - naive_auc) < 1e-6 and all(
        (a is None and np.isnan(b)) or a == b for a, b in zip([x.tpr for x in r.points], naive_tpr))
    rows.append({"case": f"naive pair list + sklearn, {args.naive_size[0]} x {args.naive_size[1]}",
                 "naive_s": round(naive_s, 2), "protocol_s": round(ours_s, 2), "speedup": round(naive_s / ours_s, 2),
                 "identical": bool(same_result), "auc_difference": float(r.auc - naive_auc)})
    print(rows[-1], flush=True)
    for nd in args.distractors:
        q, lab, d = data(args.queries, nd, args.dim)
        before, cpu_before = floor_seconds(q, d)
        t, c = time.perf_counter(), time.process_time()
        with PeakRSS() as mem:
            r = idrate(q, lab, d, device="cpu")
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        after, cpu_after = floor_seconds(q, d)
        floor, cpu_floor = (before + after) / 2, (cpu_before + cpu_after) / 2
        rows.append({"case": f"{args.queries} x {nd} at {args.dim}-D", "counting": counting, "negatives": r.n_neg,
                     "protocol_s": round(secs, 1), "matmul_floor_s": round(floor, 1),
                     "floor_before_after_s": [round(before, 1), round(after, 1)], "ratio": round(secs / floor, 2),
                     "cpu_s_protocol_floor": [round(cpu, 1), round(cpu_floor, 1)],
                     "cpu_ratio": round(cpu / cpu_floor, 2),
                     "rss_at_start_mb": round(mem.start), "peak_rss_mb": round(mem.peak),
                     "peak_growth_mb": round(mem.peak - mem.start), "auc_error_bound": r.auc_error,
                     "exact_fprs": [pt.target_fpr for pt in r.points if pt.exact]})
        print(rows[-1], flush=True)
        del q, d
    path = record("idrate", {"rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
