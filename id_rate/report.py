"""Tables and plots of ID-rate results: Markdown + CSV + JSON, ROC on log-FPR, score distributions."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from facedata.io import write_bytes_atomic

from .protocols import IdRateResult


def fmt(v: float | None, digits: int = 4) -> str:
    """A figure for a table: ``digits`` decimals, "n/r" (not resolvable) for None."""
    return "n/r" if v is None else f"{v:.{digits}f}"


def table_rows(results: dict[str, IdRateResult], extra: dict[str, dict] | None = None) -> list[dict[str, str]]:
    rows = []
    extra = extra or {}
    for name, r in results.items():
        row = {"model": name}
        for p in r.points:
            cell = fmt(p.tpr)
            if not p.exact and p.tpr is not None:
                cell += f" ±{p.tpr_error:.1g}"
            row[f"TPR@FPR={p.target_fpr:g}"] = cell
        row["ROC-AUC"] = fmt(r.auc) + (f" ±{r.auc_error:.1g}" if r.auc_error else "")
        e = extra.get(name, {})
        if "bootstrap95" in e:
            lo, hi = e["bootstrap95"]["auc"]
            row["AUC 95% CI"] = f"{fmt(lo, 3)}-{fmt(hi, 3)}"
        if "open_set" in e:
            row["rank-1"] = fmt(e["open_set"]["rank1"], 3)
            for pt in e["open_set"]["points"]:
                row[f"DIR@FPIR={pt['target_fpir']:g}"] = fmt(pt["dir"], 3)
        ft = e.get("fixed_threshold", {})
        if "accuracy" in ft:
            row["verif. acc / F1"] = f"{ft['accuracy']:.3f} / {fmt(ft['f1'], 3)}"
        if "lfw" in e:
            lfw = e["lfw"]
            row["pairs acc (10-fold)"] = f"{100 * lfw['accuracy_mean']:.2f} ± {100 * lfw['accuracy_std']:.2f}"
            row["pairs TAR@FAR=1e-3"] = fmt(lfw["tar_at_far_1e3"], 3)
            row["pairs AUC"] = fmt(lfw["auc"], 4)
            if lfw.get("missing_pairs_counted_wrong"):
                row["pairs missing (counted wrong)"] = str(lfw["missing_pairs_counted_wrong"])
        row["pos / neg pairs"] = f"{r.n_pos:,} / {r.n_neg:,}"
        rows.append(row)
    return rows


def columns(rows: list[dict[str, str]]) -> list[str]:
    """Every column of the rows, in first-seen order (rows may differ in what they have: blank there)."""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    return cols


def markdown_rows(rows: list[dict[str, str]]) -> list[str]:
    """The rows as a Markdown table (header, rule, one line per row)."""
    cols = columns(rows)
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + \
        ["| " + " | ".join(r.get(c, "") for c in cols) + " |" for r in rows]


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    """The rows as CSV (a blank cell where a row lacks a column); no rows: a header ``model`` alone."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns(rows) or ["model"], restval="")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


def markdown_table(results: dict[str, IdRateResult], extra: dict[str, dict] | None = None) -> str:
    """The report's table as Markdown, with a legend."""
    md = markdown_rows(table_rows(results, extra))
    md.append("")
    md.append("n/r: not resolvable (the FPR is below 1 / negative pairs, or the FPIR below 1 / non-mated searches). "
              "rank-1 and DIR: open-set identification. verif. acc / F1: cosine-distance threshold chosen on half "
              "of the query images, reported on the other half. pairs acc: 10-fold accuracy (%), each fold's "
              "threshold chosen on the other 9; a pair with a missing image counts as wrong.")
    return "\n".join(md) + "\n"


def write_report(results: dict[str, IdRateResult], out_dir: Path, meta: dict,
                 extra: dict[str, dict] | None = None) -> list[Path]:
    """table.md, table.csv, results.json and roc.png in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(markdown_table(results, extra).encode(), out_dir / "table.md")
    write_bytes_atomic(csv_bytes(table_rows(results, extra)), out_dir / "table.csv")
    payload = {"meta": meta, "models": {k: {**r.to_dict(), **(extra or {}).get(k, {})} for k, r in results.items()}}
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


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(buf.getvalue(), path)
    return path


def plot_similarity(scores: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Per model: histograms of cosine similarity, same-identity query pairs against different-identity
    query pairs and query x distractor pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scores), figsize=(4.2 * len(scores), 3.4), squeeze=False)
    bins = np.linspace(-1, 1, 81)
    for ax, (name, s) in zip(axes[0], scores.items()):
        for key, label in (("pos", "same person (query)"), ("neg_qq", "different (query)"), ("neg_qd", "query x distractor")):
            if len(s.get(key, [])):
                ax.hist(s[key], bins=bins, density=True, alpha=0.5, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("cosine similarity")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def plot_accuracy_vs_threshold(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path) -> Path:
    """Accuracy of "cosine distance < t" on the report split, with the threshold chosen on the other split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (t, acc, chosen) in curves.items():
        line, = ax.plot(t, acc, label=name)
        ax.axvline(chosen, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("cosine distance threshold (dotted: chosen on the other split)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_tsne(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, seed: int = 0) -> Path:
    """t-SNE of a few identities per model, coloured by identity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(embeddings), figsize=(4 * len(embeddings), 3.8), squeeze=False)
    for ax, (name, (emb, labels)) in zip(axes[0], embeddings.items()):
        xy = TSNE(2, perplexity=min(30, max(2, len(emb) // 4)), init="pca", random_state=seed).fit_transform(emb)
        for i, lab in enumerate(np.unique(labels)):
            m = labels == lab
            ax.scatter(xy[m, 0], xy[m, 1], s=12, label=str(lab))
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=6, loc="best")
    return _save(fig, path)
