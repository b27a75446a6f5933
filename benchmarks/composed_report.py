"""The composed-set results report (docs/composed.md), assembled from what the runs and the benchmark wrote;
nothing is recomputed:

* ``<results>/results.json`` of ``python -m id_rate.benchmark --models composed-* ... random-init-r18h sface dlib
  random-init --compare A B ... --out <results>``: each model's figures on LFW View 2, CFP-FF, CFP-FP and the
  composed set's held-out people, and the paired comparisons with the verdicts the benchmark reached;
* ``<runs>/<recipe>/log.csv`` (and ``config.json``, ``best.pt``) of each composed-* recipe: training minutes,
  wall minutes, images/s, epochs, the best.pt epoch, and a training-curve figure per run (``docs/composed/``).

    python benchmarks/composed_report.py [--results id_rate/results/composed] [--runs checkpoints]
                                         [--out docs/composed.md]

The aims of the issue are stated with the measured figure and met / not met, computed from those numbers.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (puts the repository root on sys.path)

import config  # noqa: E402
from facedata.cli import command  # noqa: E402
from facedata.errors import UsageError  # noqa: E402
from facedata.io import check_output_file, write_bytes_atomic  # noqa: E402
from id_rate.benchmark import ANCHOR_FPR, PAIR_SETS, TITLE  # noqa: E402
from id_rate.metrics import SEED_FPRS  # noqa: E402
from id_rate.paired import format_p  # noqa: E402
from id_rate.report import at_rate, fmt, markdown_rows  # noqa: E402
from training.config import monitor_mode  # noqa: E402

PROG = "python benchmarks/composed_report.py"
RECIPES = [name for name in config.TRAIN_RECIPES if name.startswith("composed-")]  # config.py's order
BACKBONE = "resnet18_half"
BASELINE = "random-init-r18h"  # BACKBONE untrained: what "above untrained" is measured against
# the objectives the aims compare: the composed-* recipes that train BACKBONE from random init (the others start
# from another network's weights, so the untrained baseline is not theirs)
OBJECTIVES = [name for name in RECIPES if config.TRAIN_RECIPES[name].get("backbone") == BACKBONE
              and not config.TRAIN_RECIPES[name].get("pretrained")]
# the rows that are not composed-* runs; which are not ours is said in the row
REFERENCES = {
    BASELINE: "untrained baseline: the same half-width ResNet-18 at 112 px, random weights (seed 0)",
    "sface": "reference, not ours: OpenCV Zoo SFace (MobileFaceNet, trained on its authors' data)",
    "dlib": "reference, not ours: dlib's ResNet (face_recognition)",
    "random-init": "reference, not ours: an untrained EfficientNet-B0 (the other recipes' baseline)",
}
# The issue's aims for ArcFace from random init on the composed set (checked on the composed-arcface row)
AIM_MODEL = "composed-arcface"
AIM_LFW_ACC = 0.95  # LFW View 2 10-fold accuracy
AIM_CFP_FP_ACC = 0.80  # CFP-FP 10-fold accuracy
AIM_TPR = 0.52  # composed held-out TPR@FPR=1e-3
AIM_AUC = 0.92  # composed held-out ROC-AUC
RANK_SET, RANK_METRIC = "composed", "auc"  # objectives are ordered by this, and adjacent ones tested on it
CURVES = ("select", "val_auc")  # plotted against epoch with every verify_*_acc column, on the right-hand axis
METRIC_TITLE = {"accuracy": "accuracy", "auc": "ROC-AUC", f"tpr@{ANCHOR_FPR:g}": f"TPR@FPR={ANCHOR_FPR:g}"}


# --- inputs -------------------------------------------------------------------------------------------------------
def load_results(folder: Path) -> dict[str, Any]:
    """The benchmark's results.json in ``folder``; a missing or unreadable one is a one-line UsageError."""
    path = folder / "results.json"
    run = (f"run `python -m id_rate.benchmark --models {' '.join(RECIPES)} {BASELINE} sface dlib random-init "
           f"--bootstrap 200 --compare A B ... --out {folder}` first, or pass --results")
    if not path.is_file():
        raise UsageError(f"--results {folder}: no results.json there; {run}")
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable results.json ({exc}); {run}") from None
    if not isinstance(results, dict) or not isinstance(results.get("models"), dict):
        raise UsageError(f"{path}: not id_rate.benchmark's results.json (no 'models'); {run}")
    return results


@dataclass
class Run:
    """One training run's log, as written by training.log (epoch 0: the untrained network, not trained)."""

    recipe: str
    rows: list[dict[str, str]]
    settings: dict[str, Any]  # config.json, else config.TRAIN_RECIPES' entry
    best_pt_bytes: int | None

    def values(self, column: str, trained: bool = True) -> list[tuple[int, float]]:
        """(epoch, value) of every row that logged ``column``; ``trained``: epochs 1 onwards only."""
        out = [(int(r["epoch"]), float(r[column])) for r in self.rows if r.get(column)]
        return [(e, v) for e, v in out if e > 0 or not trained]

    @property
    def monitor(self) -> str:
        return self.settings.get("monitor") or "select"

    def best_epoch(self) -> int | None:
        """The epoch best.pt holds: the first with the best monitored value, epoch 0 excluded (training.engine
        keeps the earlier epoch on a tie)."""
        pts = self.values(self.monitor)
        if not pts:
            return None
        pick = max if monitor_mode(self.monitor) == "max" else min
        return pick(pts, key=lambda p: p[1])[0]  # max / min return the first of equal values

    def epochs_run(self) -> int:
        return max((int(r["epoch"]) for r in self.rows), default=0)


def read_run(runs: Path, recipe: str) -> Run | None:
    """The run's log, None when it never started (no log.csv)."""
    folder = runs / recipe
    log = folder / "log.csv"
    if not log.is_file():
        return None
    cfg_path = folder / "config.json"
    try:
        rows = [r for r in csv.DictReader(io.StringIO(log.read_text())) if r.get("epoch")]
        settings = json.loads(cfg_path.read_text()) if cfg_path.is_file() else dict(config.TRAIN_RECIPES.get(recipe, {}))
    except (OSError, ValueError, csv.Error) as exc:
        raise UsageError(f"{folder}: its log.csv or config.json cannot be read ({exc}); let the run finish or "
                         f"resume it (python train.py --recipe {recipe} --resume)") from None
    best = folder / "best.pt"
    return Run(recipe, rows, settings, best.stat().st_size if best.is_file() else None)


# --- the main table -----------------------------------------------------------------------------------------------
def objective(settings: dict[str, Any]) -> str:
    """The run's objective in a few words, from its settings."""
    head, kw = settings.get("head", "?"), settings.get("head_kwargs") or {}
    words = {"arcface": "ArcFace", "softmax": "cross-entropy", "triplet": "triplet", "contrastive": "contrastive",
             "distill": "distillation"}.get(head, head)
    if head == "distill":
        teacher = (settings.get("teacher") or {}).get("reference", "?")
        words += f" from {teacher}" + (" + ArcFace on labels" if kw.get("label_weight") else ", no labels")
    detail = ", ".join(f"{k}={v}" for k, v in kw.items() if k != "label_weight")
    words = f"{words} ({detail})" if detail else words
    if settings.get("pretrained"):  # not from random init: say which network it starts from
        words += (f"; {settings.get('backbone')} at {settings.get('preprocess')}, from {settings['pretrained']}'s "
                  "weights")
    return words


def pair_cells(t: str, cell: dict[str, Any] | None) -> dict[str, str]:
    """A pair set's accuracy (mean ± std over 10 folds, %) and TAR@FAR=1e-3 (the FAR reached in brackets)."""
    acc, tar = f"{t} acc %", f"{t} TAR@FAR=1e-3"
    if cell is None:
        return {acc: "-", tar: "-"}
    if "skipped" in cell:
        return {acc: cell["skipped"], tar: "-"}
    return {acc: f"{100 * cell['accuracy_mean']:.2f} ± {100 * cell['accuracy_std']:.2f}",
            tar: at_rate(fmt(cell["tar_at_far_1e3"], 3), cell.get("achieved_far_1e3"))}


def tpr_at(cell: dict[str, Any], fpr: float) -> dict[str, Any] | None:
    return next((p for p in cell.get("points", []) if p["target_fpr"] == fpr), None)


def idrate_cells(t: str, cell: dict[str, Any] | None) -> dict[str, str]:
    """The ID-rate set's TPR at every seed FPR (the FPR reached in brackets) and ROC-AUC with its 95% interval."""
    cols = [f"{t} TPR@FPR={f:g}" for f in SEED_FPRS]
    auc = f"{t} ROC-AUC (95% CI)"
    if cell is None or "skipped" in cell:
        return {cols[0]: cell["skipped"] if cell else "-", **{c: "-" for c in cols[1:]}, auc: "-"}
    row = {}
    for c, f in zip(cols, SEED_FPRS):
        p = tpr_at(cell, f)
        row[c] = "-" if p is None else at_rate(fmt(p["tpr"]), p.get("fpr"))
    ci = (cell.get("bootstrap95_over_identities") or {}).get("auc")
    row[auc] = fmt(cell["auc"]) + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci and ci[0] is not None else "")
    return row


TRAINING_COLUMNS = ("train min", "wall min", "images/s (median)", "epochs run / budget", "best.pt epoch (by monitor)",
                    "best.pt MB")


def training_cells(run: Run | None) -> dict[str, str]:
    """Minutes of training ("seconds" summed), wall minutes ("wall_seconds" summed, epoch 0's set-up and checks
    included), the median images/s, epochs, the best.pt epoch and its size."""
    if run is None:
        return {c: "not run" for c in TRAINING_COLUMNS}
    secs, walls, speed = run.values("seconds"), run.values("wall_seconds", trained=False), run.values("images_per_s")
    best = run.best_epoch()
    return {"train min": f"{sum(v for _, v in secs) / 60:.1f}" if secs else "-",
            "wall min": f"{sum(v for _, v in walls) / 60:.1f}" if walls else "-",
            "images/s (median)": f"{statistics.median(v for _, v in speed):.0f}" if speed else "-",
            "epochs run / budget": f"{run.epochs_run()} / {run.settings.get('epochs', '?')}",
            "best.pt epoch (by monitor)": "-" if best is None else f"{best} (max {run.monitor})"
            if monitor_mode(run.monitor) == "max" else f"{best} (min {run.monitor})",
            "best.pt MB": "-" if run.best_pt_bytes is None else f"{run.best_pt_bytes / 1e6:.1f}"}


def model_order(models: dict[str, Any]) -> list[str]:
    """Every composed-* recipe (config.py's order, run or not), then the other models in the benchmark's order."""
    return RECIPES + [m for m in models if m not in RECIPES]


def main_rows(models: dict[str, Any], runs: dict[str, Run | None]) -> list[dict[str, str]]:
    """One row per model: its figures on every set, and for the composed-* runs their training facts."""
    rows = []
    for name in model_order(models):
        run = runs.get(name)
        if name in RECIPES:
            what = objective(run.settings if run else config.TRAIN_RECIPES[name])
            if name not in models:
                what += ", not benchmarked" if run else ", not run"
        else:
            what = REFERENCES.get(name, "not a composed-* run")
        cells = models.get(name, {})
        row = {"model": f"`{name}`", "what": what}
        for s in PAIR_SETS:
            row.update(pair_cells(TITLE[s], cells.get(s)))
        row.update(idrate_cells(TITLE["composed"], cells.get("composed")))
        if name in RECIPES:
            row.update(training_cells(run))
        rows.append(row)
    return rows


# --- paired verdicts ----------------------------------------------------------------------------------------------
def comparisons_of(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The benchmark's comparisons by (A, B)."""
    return {(c["a"], c["b"]): {k: v for k, v in c.items() if k not in ("a", "b")}
            for c in results.get("comparisons", [])}


def reported(a: str, b: str) -> bool:
    """The comparisons this report shows: a composed-* run against the untrained baseline or another run."""
    return (a in RECIPES or b in RECIPES) and (BASELINE in (a, b) or (a in RECIPES and b in RECIPES))


def verdict_rows(comparisons: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, str]]:
    """One row per (comparison, set, figure) as the benchmark wrote it: A - B, its 95% interval, p, verdict."""
    rows = []
    for (a, b), by_set in comparisons.items():
        if not reported(a, b):
            continue
        for s, c in by_set.items():
            base = {"A": f"`{a}`", "B": f"`{b}`", "set": TITLE.get(s, s)}
            if "skipped" in c:
                rows.append({**base, "metric": "-", "A - B (95% CI)": "not compared", "p": "-",
                             "verdict": c["skipped"]})
                continue
            for key, what in METRIC_TITLE.items():
                if key not in c:
                    continue
                d = c[key]
                points = key == "accuracy"  # an accuracy difference is shown in percentage points
                f = (lambda v: f"{100 * v:+.2f}") if points else (lambda v: f"{v:+.4f}")  # noqa: E731
                shown = f"{f(d['diff'])}{' pts' if points else ''} ({f(d['low'])} to {f(d['high'])})"
                rows.append({**base, "metric": what, "A - B (95% CI)": shown, "p": format_p(d["p_value"]),
                             "verdict": d["verdict"]})
    return rows


def find_comparison(comparisons: dict[tuple[str, str], dict[str, Any]], x: str, y: str) -> dict[str, Any] | None:
    return comparisons.get((x, y), comparisons.get((y, x)))


def names_better(verdict: str, model: str) -> bool:
    """Whether the benchmark's verdict names ``model`` the better one (its own words: "<model> better (p=...)")."""
    return verdict.startswith(f"{model} better ")


# --- aims ---------------------------------------------------------------------------------------------------------
def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def threshold_aims(models: dict[str, Any]) -> list[str]:
    """The four figures the ArcFace-from-random-init row must reach."""
    cells = models.get(AIM_MODEL, {})
    lines = []

    def acc(s: str) -> float | None:
        c = cells.get(s)
        return None if not c or "skipped" in c else c["accuracy_mean"]

    comp = cells.get("composed")
    comp = None if not comp or "skipped" in comp else comp
    point = tpr_at(comp, ANCHOR_FPR) if comp else None
    figures = [
        (f"{TITLE['lfw']} View 2 10-fold accuracy >= {100 * AIM_LFW_ACC:g} %", acc("lfw"), AIM_LFW_ACC, 100, "%"),
        (f"{TITLE['cfp-fp']} 10-fold accuracy >= {100 * AIM_CFP_FP_ACC:g} %", acc("cfp-fp"), AIM_CFP_FP_ACC, 100, "%"),
        (f"composed held-out TPR@FPR={ANCHOR_FPR:g} >= {AIM_TPR:g}", None if point is None else point["tpr"], AIM_TPR,
         1, ""),
        (f"composed held-out ROC-AUC >= {AIM_AUC:g}", comp["auc"] if comp else None, AIM_AUC, 1, ""),
    ]
    for text, value, floor, scale, unit in figures:
        if value is None:
            lines.append(f"- ArcFace from random init (`{AIM_MODEL}`), {text}: not measured: **not met**")
        else:
            shown = f"{scale * value:.2f} {unit}" if unit else f"{value:.4f}"
            lines.append(f"- ArcFace from random init (`{AIM_MODEL}`), {text}: {shown}: {met(value >= floor)}")
    return lines


def baseline_aim(models: dict[str, Any], comparisons: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Every objective above the untrained baseline: each of its paired tests against random-init-r18h names it
    better (every set and figure tested)."""
    lines, all_ok = [], True
    for name in OBJECTIVES:
        if name not in models:
            all_ok = False
            lines.append(f"  - `{name}`: not benchmarked")
            continue
        c = find_comparison(comparisons, name, BASELINE)
        tests = [(TITLE.get(s, s), METRIC_TITLE.get(k, k), d["verdict"]) for s, by in (c or {}).items()
                 if "skipped" not in by for k, d in by.items() if k in METRIC_TITLE]
        if not tests:
            all_ok = False
            lines.append(f"  - `{name}`: not compared with `{BASELINE}` (add `--compare {name} {BASELINE}`)")
            continue
        lost = [t for t in tests if not names_better(t[2], name)]
        all_ok &= not lost
        detail = "; ".join(f"{s} {m}: {v}" for s, m, v in lost)
        lines.append(f"  - `{name}`: better on {len(tests) - len(lost)} of {len(tests)} paired tests"
                     + (f" (not on {detail})" if lost else ""))
    return [f"- Every objective above the untrained baseline `{BASELINE}` (each paired test on every set names "
            f"the objective better): {met(all_ok)}", *lines]


def ranking_aim(models: dict[str, Any], comparisons: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Each adjacent pair of objectives, in the order of their composed ROC-AUC, has a paired test on that set."""
    scored = [(m, models[m][RANK_SET][RANK_METRIC]) for m in OBJECTIVES
              if RANK_SET in models.get(m, {}) and "skipped" not in models[m][RANK_SET]]
    order = sorted(scored, key=lambda p: -p[1])
    head = (f"- Each adjacent pair of objectives ranked by a paired test (ordered by {TITLE[RANK_SET]} "
            f"{METRIC_TITLE[RANK_METRIC]}; a pair counts when the benchmark compared it on that set)")
    if len(order) < 2:
        return [f"{head}: fewer than two objectives scored on {TITLE[RANK_SET]}: **not met**"]
    lines, tested, separated = [], 0, 0
    for (x, ax), (y, ay) in zip(order, order[1:]):
        c = (find_comparison(comparisons, x, y) or {}).get(RANK_SET, {})
        d = c.get(RANK_METRIC)
        if d is None:
            why = c.get("skipped", f"not compared (add `--compare {x} {y}`)")
            lines.append(f"  - `{x}` ({ax:.4f}) vs `{y}` ({ay:.4f}): {why}")
            continue
        tested += 1
        separated += names_better(d["verdict"], x) or names_better(d["verdict"], y)
        lines.append(f"  - `{x}` ({ax:.4f}) vs `{y}` ({ay:.4f}): {d['verdict']}")
    pairs = len(order) - 1
    return [f"{head}: {tested} of {pairs} adjacent pairs tested, {separated} of them separated at p < 0.05: "
            f"{met(tested == pairs)}", *lines]


# --- training curves ----------------------------------------------------------------------------------------------
def plot_run(run: Run) -> bytes:
    """PNG bytes: train loss (left axis) and the per-epoch checks (right axis, 0 to 1) by epoch, epoch 0 being
    the untrained network, the best.pt epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(7, 4.4))
    loss = run.values("train_loss")
    if loss:
        ax1.plot(*zip(*loss), marker="o", color="black", label="train loss")
    ax1.set_xlabel("epoch (0 = untrained)")
    ax1.set_ylabel("train loss")
    ax2 = ax1.twinx()
    columns = list(dict.fromkeys(run.rows[0])) if run.rows else []
    verify = [c for c in columns if c.startswith("verify_") and c.endswith("_acc")]
    for column in (*CURVES[:1], *verify, *CURVES[1:]):
        pts = run.values(column, trained=False)
        if pts:
            ax2.plot(*zip(*pts), marker=".", label=column)
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("per-epoch checks (0-1)")
    best = run.best_epoch()
    if best is not None:
        ax1.axvline(best, color="grey", linestyle=":", label=f"best.pt (epoch {best})")
    handles = [h for ax in (ax1, ax2) for h in ax.get_legend_handles_labels()[0]]
    if handles:  # below the axes: inside, it would hide the curves whatever corner it took
        ax2.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.16),
                   ncol=3, fontsize=8, frameon=False)
    ax1.set_title(run.recipe)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


# --- the document -------------------------------------------------------------------------------------------------
def header(argv: list[str], results: dict[str, Any], results_dir: Path, runs: dict[str, Run | None]) -> list[str]:
    meta = results.get("meta", {})
    data = sorted({str(r.settings.get("data")) for r in runs.values() if r and r.settings.get("data")})
    lines = ["# Composed-set results", "",
             f"Written by `{' '.join([PROG, *argv])}` on {dt.date.today().isoformat()}, machine: {_common.machine()}. "
             "Nothing here is recomputed: the figures are the benchmark's "
             f"(`{results_dir / 'results.json'}`, run {meta.get('date', '?')}, {meta.get('bootstrap', '?')} bootstrap "
             f"resamples, seed {meta.get('seed', '?')}, flip TTA {'on' if meta.get('flip_tta') else 'off'}), the "
             "training facts each run's `log.csv`.", "",
             f"Training data: {', '.join(data) or config.COMPOSED_SPLIT['data']} (config.COMPOSED_SPLIT; every "
             "composed-* recipe trains on the same split). Evaluation sets:"]
    lines += [f"- **{TITLE.get(s, s)}**: {d}" for s, d in meta.get("sets", {}).items()]
    return lines


LEGEND = (
    "acc %: 10-fold accuracy, mean ± std over folds, each fold's threshold chosen on the other 9. In brackets: the "
    "FAR / FPR each rate was reached at, never above the column's target. n/r: not resolvable. Composed: the people "
    "config.COMPOSED_SPLIT sets aside for the benchmark (no composed-* run trains on them or chooses an epoch with "
    "them); ROC-AUC with its 95% interval over resampled identities. '-': not scored (set not in the benchmark run). "
    "train min: the epochs' training seconds summed; wall min: each epoch's wall seconds summed (set-up, the "
    "untrained epoch 0's checks, training, per-epoch checks, checkpoint writing); images/s: the median over epochs "
    "(the machine is shared, so single epochs vary); best.pt epoch: the epoch with the best value of the run's "
    "monitor (`select`, higher is better), the one best.pt holds; best.pt MB: its file size. A run still training "
    "shows the epochs logged so far.")


def document(argv: list[str], results: dict[str, Any], results_dir: Path, runs: dict[str, Run | None],
             figures: dict[str, str]) -> str:
    models, comparisons = results["models"], comparisons_of(results)
    md = header(argv, results, results_dir, runs)
    md += ["", "## Models", "", *markdown_rows(main_rows(models, runs)), "", LEGEND, "", "## Paired verdicts", "",
           f"Each composed-* run against the untrained `{BASELINE}` and against the objectives it was compared with, "
           "as the benchmark decided them (alpha 0.05, paired bootstrap: whole folds on the pair sets, identities on "
           "the composed set; accuracy differences in percentage points).", ""]
    vrows = verdict_rows(comparisons)
    md += markdown_rows(vrows) if vrows else ["(no comparison of a composed-* run in the results)"]
    md += ["", "## Aims", "", *threshold_aims(models), *baseline_aim(models, comparisons),
           *ranking_aim(models, comparisons), "", "## Training curves", ""]
    for recipe in RECIPES:
        md.append(f"- `{recipe}`: " + (f"![{recipe}]({figures[recipe]})" if recipe in figures else "not run"))
    return "\n".join(md) + "\n"


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=Path("id_rate/results/composed"),
                   help="the benchmark's --out folder (its results.json)")
    p.add_argument("--runs", type=Path, default=config.CHECKPOINTS, help="the folder of checkpoints/<recipe>/")
    p.add_argument("--out", type=Path, default=Path("docs/composed.md"),
                   help="the report; its figures go to a folder of the same name without .md")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    out = check_output_file(args.out, "--out", suffixes=(".md",))  # before any work
    results = load_results(args.results)
    runs = {r: read_run(args.runs, r) for r in RECIPES}
    figures = {}
    for recipe, run in runs.items():
        if run is not None:
            path = out.with_suffix("") / f"{recipe}.png"
            write_bytes_atomic(plot_run(run), path)
            figures[recipe] = f"{path.parent.name}/{path.name}"  # relative to the report
    write_bytes_atomic(document(argv, results, args.results, runs, figures).encode(), out)
    print(f"wrote {out} and {len(figures)} figure(s) in {out.with_suffix('')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
