"""Tables of ID-rate results: Markdown + CSV + JSON (the figures: ``id_rate.plots``)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from facedata.io import write_bytes_atomic

if TYPE_CHECKING:  # the table helpers stay torch-free for id_rate.results_table
    from .protocols import IdRateResult


def fmt(v: float | None, digits: int = 4) -> str:
    """A figure for a table: ``digits`` decimals, "n/r" (not resolvable) for None."""
    return "n/r" if v is None else f"{v:.{digits}f}"


def at_rate(cell: str, reached: float | None) -> str:
    """A rate with the false-positive rate it was reached at, in brackets: "0.5400 (0.00093)"."""
    return cell if reached is None else f"{cell} ({reached:.2g})"


def table_rows(results: dict[str, IdRateResult], extra: dict[str, dict] | None = None) -> list[dict[str, str]]:
    rows = []
    extra = extra or {}
    for name, r in results.items():
        row = {"model": name}
        for p in r.points:
            cell = fmt(p.tpr)
            if not p.exact and p.tpr is not None:
                cell += f" ±{p.tpr_error:.1g}"
            row[f"TPR@FPR={p.target_fpr:g}"] = at_rate(cell, p.fpr)
        row["ROC-AUC"] = fmt(r.auc) + (f" ±{r.auc_error:.1g}" if r.auc_error else "")
        e = extra.get(name, {})
        if "bootstrap95" in e:
            lo, hi = e["bootstrap95"]["auc"]
            row["AUC 95% CI"] = f"{fmt(lo, 3)}-{fmt(hi, 3)}"
        if "open_set" in e:
            row["rank-1"] = fmt(e["open_set"]["rank1"], 3)
            for pt in e["open_set"]["points"]:
                row[f"DIR@FPIR={pt['target_fpir']:g}"] = at_rate(fmt(pt["dir"], 3), pt["fpir"])
        ft = e.get("fixed_threshold", {})
        if "accuracy" in ft:
            row["verif. acc / F1"] = f"{ft['accuracy']:.3f} / {fmt(ft['f1'], 3)}"
        if "lfw" in e:
            lfw = e["lfw"]
            row["pairs acc (10-fold)"] = f"{100 * lfw['accuracy_mean']:.2f} ± {100 * lfw['accuracy_std']:.2f}"
            row["pairs TAR@FAR=1e-3"] = at_rate(fmt(lfw["tar_at_far_1e3"], 3), lfw.get("achieved_far_1e3"))
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


def markdown_rows(rows: list[dict[str, str]], cols: list[str] | None = None) -> list[str]:
    """The rows as a Markdown table (header, rule, one line per row); ``cols`` (default: every column of the
    rows, :func:`columns`) fixes which columns and their order."""
    cols = columns(rows) if cols is None else cols
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
    md.append("In brackets: the FPR (FPIR, FAR) each rate was reached at, never above the column's target (negatives "
              "tied at the threshold are rejected together when accepting them would exceed it). "
              "n/r: not resolvable (the FPR is below 1 / negative pairs, or the FPIR below 1 / non-mated searches). "
              "rank-1 and DIR: open-set identification. verif. acc / F1: cosine-distance threshold chosen on half "
              "of the query images, reported on the other half. pairs acc: 10-fold accuracy (%), each fold's "
              "threshold chosen on the other 9; a pair with a missing image counts as wrong.")
    return "\n".join(md) + "\n"


def write_report(results: dict[str, IdRateResult], out_dir: Path, meta: dict,
                 extra: dict[str, dict] | None = None) -> list[Path]:
    """table.md, table.csv, results.json, roc.png and tpr_at_fpr.png in ``out_dir``; returns the paths."""
    from .plots import plot_roc, plot_tpr_at_fpr

    out_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(markdown_table(results, extra).encode(), out_dir / "table.md")
    write_bytes_atomic(csv_bytes(table_rows(results, extra)), out_dir / "table.csv")
    payload = {"meta": meta, "models": {k: {**r.to_dict(), **(extra or {}).get(k, {})} for k, r in results.items()}}
    write_bytes_atomic(json.dumps(payload, indent=1).encode(), out_dir / "results.json")
    paths = [out_dir / n for n in ("table.md", "table.csv", "results.json")]
    paths += [plot_roc(results, out_dir / "roc.png"), plot_tpr_at_fpr(results, out_dir / "tpr_at_fpr.png")]
    return paths
