"""TPR at a stated FPR when scores tie: the rule before issue 19, the rule now, and scikit-learn, on one score set.

    python benchmarks/bench_ties.py [--before f6b72d6] [--decimals 2]

Synthetic embeddings (100 identities x 6 images and 2,000 distractors, 64-D, seeded) scored as the ID-rate
protocol scores them; the scores are rounded to ``--decimals`` so that negatives tie at every threshold, as
scores stored with few digits do. The old rule is read from ``git show REV:id_rate/metrics.py`` (nothing is
checked out). Per target FPR: each rule's TPR and the FPR its threshold really reaches, and scikit-learn's
operating point (the largest TPR whose FPR is at most the target).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from id_rate.metrics import tpr_at_fpr

ROOT = Path(__file__).resolve().parents[1]


def old_rule(rev: str) -> types.ModuleType:
    """``id_rate.metrics`` as it was at ``rev``, loaded under another name."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:id_rate/metrics.py"], check=True,
                         capture_output=True, text=True).stdout
    module = types.ModuleType("metrics_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up while the source runs
    exec(compile(src, f"{rev}:id_rate/metrics.py", "exec"), module.__dict__)
    return module


def scores(decimals: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rounded same-identity and different-identity cosine scores of the synthetic set."""
    rng = np.random.default_rng(seed)
    n_ids, per_id, n_dist, dim = 100, 6, 2000, 64
    q = np.repeat(rng.normal(size=(n_ids, dim)), per_id, 0) + rng.normal(scale=1.4, size=(n_ids * per_id, dim))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d = rng.normal(size=(n_dist, dim))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_ids), per_id)
    iu = np.triu_indices(len(q), 1)
    s, same = (q @ q.T)[iu], labels[iu[0]] == labels[iu[1]]
    return np.round(s[same], decimals), np.round(np.r_[s[~same], (q @ d.T).ravel()], decimals)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="f6b72d6", help="the revision whose rule is compared (default f6b72d6)")
    p.add_argument("--decimals", type=int, default=2)
    args = p.parse_args(argv)
    old = old_rule(args.before)
    pos, neg = scores(args.decimals)
    fpr, tpr, _ = roc_curve(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg], drop_intermediate=False)
    print(f"{len(pos):,} positives, {len(neg):,} negatives, scores rounded to {args.decimals} decimals\n")
    print(f"| target FPR | {args.before}: TPR (FPR reached) | now: TPR (FPR reached) | scikit-learn: TPR (FPR) |")
    print("|---|---|---|---|")
    for target in (1e-2, 1e-3, 1e-4):
        o, n = old.tpr_at_fpr(pos, neg, (target,))[0], tpr_at_fpr(pos, neg, (target,))[0]
        o_fpr = float(np.mean(neg >= o.threshold))  # what the old threshold really accepts
        ok = np.flatnonzero(fpr <= target)
        i = ok[np.argmax(tpr[ok])]
        print(f"| {target:g} | {o.tpr:.4f} ({o_fpr:.6f}, {o_fpr / target:.2f}x) | {n.tpr:.4f} ({n.fpr:.6f}) | "
              f"{tpr[i]:.4f} ({fpr[i]:.6f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
