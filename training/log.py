"""Per-run outputs written every epoch: ``log.csv`` and the ``loss.png`` curves (atomically); the progress bar."""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

from facedata.io import write_bytes_atomic

COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "val_acc", "val_auc", "val_tpr@1e-3", "val_tpr@1e-2",
           "threshold_cos@fpr=1e-3", "images_per_s", "seconds", "wall_seconds")


def write_log(out_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite the whole CSV and plot from the history, so an interrupted write never leaves half a file."""
    buf = io.StringIO()
    verify = sorted({k for row in history for k in row if k.startswith("verify_")})  # per pair set
    columns = list(COLUMNS) + verify + (["select"] if any("select" in row for row in history) else [])
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for row in history:
        w.writerow({k: ("" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]))
                    for k in columns})
    write_bytes_atomic(buf.getvalue().encode(), out_dir / "log.csv")
    write_bytes_atomic(plot_history(history), out_dir / "loss.png")


def plot_history(history: list[dict[str, Any]]) -> bytes:
    """PNG bytes: train / validation loss (left) and validation AUC and accuracy (right) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
        if pts:
            ax1.plot(*zip(*pts), marker="o", label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    if ax1.lines:
        ax1.legend(loc="best")
    verify = sorted({k for row in history for k in row if k.startswith("verify_") and k.endswith("_acc")})
    for key, label in (("val_auc", "open-set ROC-AUC"), ("val_tpr@1e-2", "TPR@FPR=1e-2"), ("val_acc", "closed-set acc"),
                       *((k, k[len("verify_"):-len("_acc")] + " 10-fold acc") for k in verify)):
        pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
        if pts:
            ax2.plot(*zip(*pts), marker="o", label=label)
    ax2.set_xlabel("epoch (0 = untrained)")
    ax2.set_ylim(0, 1.02)
    if ax2.lines:
        ax2.legend(loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar on stderr for ``total`` batches, or None when progress is off (logs, CI, other ranks)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", file=sys.stderr, dynamic_ncols=True)
