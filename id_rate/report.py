"""Tables and plots of ID-rate results: Markdown + CSV + JSON, ROC on log-FPR, score distributions."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from facedata.io import write_bytes_atomic

from .protocols import IdRateResult


def _fmt(v: float | None, digits: int = 4) -> str:
    return "n/r" if v is None else f"{v:.{digits}f}"


def table_rows(results: dict[str, IdRateResult]) -> list[dict[str, str]]:
    rows = []
    for name, r in results.items():
        row = {"model": name}
        for p in r.points:
            cell = _fmt(p.tpr)
            if not p.exact and p.tpr is not None:
                cell += f" ±{p.tpr_error:.1g}"
            row[f"TPR@FPR={p.target_fpr:g}"] = cell
        row["ROC-AUC"] = _fmt(r.auc) + (f" ±{r.auc_error:.1g}" if r.auc_error else "")
        row["pos / neg pairs"] = f"{r.n_pos:,} / {r.n_neg:,}"
        rows.append(row)
    return rows


def write_report(results: dict[str, IdRateResult], out_dir: Path, meta: dict) -> list[Path]:
    """table.md, table.csv, results.json, roc.png, similarity.png in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = table_rows(results)
    cols = list(rows[0])
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    md.append("")
    md.append("n/r: the FPR is below 1 / (number of negative pairs), so it cannot be resolved on this data.")
    write_bytes_atomic(("\n".join(md) + "\n").encode(), out_dir / "table.md")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    write_bytes_atomic(buf.getvalue().encode(), out_dir / "table.csv")
    payload = {"meta": meta, "models": {k: r.to_dict() for k, r in results.items()}}
    write_bytes_atomic(json.dumps(payload, indent=1).encode(), out_dir / "results.json")
    paths = [out_dir / n for n in ("table.md", "table.csv", "results.json")]
    paths += _plots(results, out_dir)
    return paths


def _plots(results: dict[str, IdRateResult], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, r in results.items():
        fpr = np.maximum(r.roc_fpr, 1.0 / max(1, r.n_neg))  # log axis: FPR 0 drawn at the resolution limit
        ax.plot(fpr, r.roc_tpr, label=f"{name} (AUC {r.auc:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("false positive rate (log)")
    ax.set_ylabel("true positive rate")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(buf.getvalue(), out_dir / "roc.png")
    return [out_dir / "roc.png"]
