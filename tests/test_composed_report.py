"""The composed-set report: hand-made benchmark results (id_rate.benchmark's results.json shape, copied from a real
run) and a two-epoch log.csv, the table's figures and the aims checked by hand; missing inputs give one line."""
from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from id_rate.metrics import SEED_FPRS

spec = importlib.util.spec_from_file_location("composed_report",
                                              Path(__file__).parents[1] / "benchmarks" / "composed_report.py")
report = sys.modules["composed_report"] = importlib.util.module_from_spec(spec)  # its dataclass looks itself up
spec.loader.exec_module(report)

# TPR at each seed FPR (0.5 ... 0.001) and the FPR each was reached at: only the last pair is checked by hand
TPRS = (0.99, 0.97, 0.93, 0.9, 0.8, 0.7, 0.55)


def pair_cell(acc: float, std: float, tar: float) -> dict:
    """A pair set's cell as id_rate.benchmark writes it (PairCell.to_dict)."""
    return {"n_pairs": 6000, "accuracy_mean": acc, "accuracy_std": std, "fold_accuracy": [acc] * 10,
            "fold_threshold": [0.5] * 10, "tar_at_far_1e3": tar, "auc": 0.99, "achieved_far_1e3": 0.001,
            "missing_pairs_counted_wrong": 0, "bootstrap95_over_folds": {"accuracy": [acc - 0.01, acc + 0.01],
                                                                        "auc": [0.98, 0.995]}}


def idrate_cell(auc: float, ci: tuple[float, float], tprs=TPRS) -> dict:
    """The composed set's cell as id_rate.benchmark writes it (IdRateCell.to_dict)."""
    points = [{"target_fpr": f, "tpr": t, "threshold": 0.5, "exact": True, "tpr_error": 0.0, "fpr": 0.95 * f}
              for f, t in zip(SEED_FPRS, tprs)]
    return {"n_query": 1200, "n_query_identities": 200, "n_distractor": 1675, "n_pos": 3000, "n_neg": 2726400,
            "auc": auc, "auc_error": 0.0, "points": points,
            "bootstrap95_over_identities": {"auc": list(ci), "tpr@0.01": [0.7, 0.9], "tpr@0.001": [0.5, 0.6]}}


def diff(metric: str, a: float, b: float, low: float, high: float, p: float, verdict: str,
         resampled: str = "identities") -> dict:
    return {"metric": metric, "a": a, "b": b, "diff": a - b, "low": low, "high": high, "p_value": p,
            "n_resamples": 200, "resampled": resampled, "verdict": verdict}


def results() -> dict:
    arc, ce, base = "composed-arcface", "composed-ce", "random-init-r18h"
    return {
        "meta": {"date": "2026-12-01", "sets": {"lfw": "LFW View 2", "composed": "200 x 6 and 400 held out"},
                 "bootstrap": 200, "seed": 42, "flip_tta": False, "anchor": "..."},
        "models": {
            arc: {"lfw": pair_cell(0.9613, 0.0123, 0.5), "cfp-ff": pair_cell(0.97, 0.01, 0.6),
                  "cfp-fp": pair_cell(0.7825, 0.02, 0.2), "composed": idrate_cell(0.93, (0.91, 0.95))},
            ce: {"lfw": pair_cell(0.9, 0.02, 0.3), "composed": idrate_cell(0.90, (0.88, 0.92))},
            "composed-triplet": {"lfw": {"skipped": "trained on these people", "detail": "..."},
                                 "composed": idrate_cell(0.85, (0.83, 0.87))},
            base: {"lfw": pair_cell(0.6, 0.03, 0.01), "composed": idrate_cell(0.6, (0.58, 0.62))},
            "sface": {"lfw": pair_cell(0.995, 0.004, 0.99), "composed": idrate_cell(0.987, (0.98, 0.99))},
        },
        "comparisons": [
            {"a": arc, "b": base,
             "lfw": {"discordant_pairs": {"n": 6000, "n10": 2000, "n01": 10, "accuracy_diff": 0.3613},
                     "accuracy": diff("accuracy", 0.9613, 0.6, 0.35, 0.37, 0.004975, f"{arc} better (p=0.005)",
                                      "folds"),
                     "auc": diff("auc", 0.99, 0.7, 0.28, 0.30, 0.004975, f"{arc} better (p=0.005)", "folds")},
             "composed": {"auc": diff("auc", 0.93, 0.6, 0.31, 0.35, 0.004975, f"{arc} better (p=0.005)"),
                          "tpr@0.001": diff("tpr@0.001", 0.55, 0.01, 0.5, 0.58, 0.004975, f"{arc} better (p=0.005)")}},
            {"a": ce, "b": base,
             "composed": {"auc": diff("auc", 0.9, 0.6, 0.28, 0.32, 0.004975, f"{ce} better (p=0.005)"),
                          "tpr@0.001": diff("tpr@0.001", 0.02, 0.01, -0.01, 0.03, 0.3,
                                            "no difference beyond chance (p=0.300)")}},
            {"a": arc, "b": ce, "composed": {"auc": diff("auc", 0.93, 0.9, 0.01, 0.05, 0.00995,
                                                         f"{arc} better (p=0.010)")}},
            {"a": "sface", "b": "random-init", "composed": {"auc": diff("auc", 0.987, 0.6, 0.3, 0.4, 0.004975,
                                                                        "sface better (p=0.005)")}},
        ],
    }


LOG = [  # the two-epoch log.csv: epoch 0 is the untrained network (checks only), epochs 1 and 2 tie on "select"
    {"epoch": 0, "lr": 1e-5, "val_auc": 0.65, "wall_seconds": 10, "verify_pairsDevTest_acc": 0.62, "select": 0.6},
    {"epoch": 1, "lr": 2e-3, "train_loss": 20.0, "val_auc": 0.7, "images_per_s": 100, "seconds": 60,
     "wall_seconds": 70, "verify_pairsDevTest_acc": 0.7, "select": 0.7},
    {"epoch": 2, "lr": 1e-3, "train_loss": 18.0, "val_auc": 0.72, "images_per_s": 300, "seconds": 120,
     "wall_seconds": 130, "verify_pairsDevTest_acc": 0.68, "select": 0.7},
]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """(results folder, runs folder): composed-arcface trained two epochs, no other run."""
    res, run = tmp_path / "bench", tmp_path / "runs" / "composed-arcface"
    res.mkdir()
    (res / "results.json").write_text(json.dumps(results()))
    run.mkdir(parents=True)
    from training.log import COLUMNS

    columns = [*COLUMNS, "verify_pairsDevTest_acc", "select"]
    with open(run / "log.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, restval="")
        w.writeheader()
        w.writerows(LOG)
    (run / "config.json").write_text(json.dumps({"data": "/data/composed", "head": "arcface", "epochs": 24,
                                                 "head_kwargs": {"scale": 32.0, "margin_rad": 0.3},
                                                 "monitor": "select"}))
    (run / "best.pt").write_bytes(b"\0" * 2_500_000)
    return res, tmp_path / "runs"


def table(md: str) -> dict[str, dict[str, str]]:
    """The Models table by model name: each row's cells by column."""
    lines = md.split("## Models")[1].split("\n\n")[1].splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {row[0].strip("`"): dict(zip(cells[0], row)) for row in cells[2:]}


def run_report(inputs: tuple[Path, Path], tmp_path: Path) -> str:
    res, runs = inputs
    out = tmp_path / "docs" / "composed.md"
    assert report.main(["--results", str(res), "--runs", str(runs), "--out", str(out)]) == 0
    return out.read_text()


def test_table_figures_by_hand(inputs, tmp_path):
    rows = table(run_report(inputs, tmp_path))
    arc = rows["composed-arcface"]
    assert arc["LFW acc %"] == "96.13 ± 1.23"  # 100 x mean and std over folds
    assert arc["LFW TAR@FAR=1e-3"] == "0.500 (0.001)"  # the FAR reached in brackets
    assert arc["CFP-FP acc %"] == "78.25 ± 2.00"
    assert arc["Composed TPR@FPR=0.001"] == "0.5500 (0.00095)"
    assert arc["Composed TPR@FPR=0.5"] == "0.9900 (0.47)"
    assert arc["Composed ROC-AUC (95% CI)"] == "0.9300 (0.910-0.950)"
    # log.csv: (60 + 120) s = 3.0 min training; (10 + 70 + 130) s = 3.5 min wall; median of 100 and 300 images/s
    assert arc["train min"] == "3.0" and arc["wall min"] == "3.5" and arc["images/s (median)"] == "200"
    assert arc["epochs run / budget"] == "2 / 24"
    assert arc["best.pt epoch (by monitor)"] == "1 (max select)"  # epoch 2 ties on select: the earlier one is kept
    assert arc["best.pt MB"] == "2.5"
    assert rows["composed-ce"]["train min"] == "not run" and "not run" not in rows["composed-ce"]["what"]
    assert rows["composed-ce"]["LFW acc %"] == "90.00 ± 2.00"  # benchmarked, its log elsewhere
    assert rows["composed-siamese"]["what"].endswith("not run") and rows["composed-siamese"]["LFW acc %"] == "-"
    assert rows["composed-triplet"]["LFW acc %"] == "trained on these people"
    assert "not ours" in rows["sface"]["what"] and rows["sface"]["train min"] == ""  # a reference: no training facts
    assert list(rows)[:len(report.RECIPES)] == report.RECIPES  # the runs first, then the references
    assert list(rows)[len(report.RECIPES):] == ["random-init-r18h", "sface"]


def test_verdicts_as_the_benchmark_wrote_them(inputs, tmp_path):
    md = run_report(inputs, tmp_path)
    verdicts = md.split("## Paired verdicts")[1].split("## Aims")[0]
    assert "| `composed-arcface` | `random-init-r18h` | LFW | accuracy | +36.13 pts (+35.00 to +37.00) | 0.005 | " \
           "composed-arcface better (p=0.005) |" in verdicts
    assert "| `composed-ce` | `random-init-r18h` | Composed | TPR@FPR=0.001 | +0.0100 (-0.0100 to +0.0300) | 0.300 | " \
           "no difference beyond chance (p=0.300) |" in verdicts
    assert "| `composed-arcface` | `composed-ce` | Composed | ROC-AUC | +0.0300 (+0.0100 to +0.0500) | 0.010 |" \
           in verdicts
    assert "`sface`" not in verdicts  # not a composed-* comparison


def test_aims_computed_from_the_numbers(inputs, tmp_path):
    aims = run_report(inputs, tmp_path).split("## Aims")[1].split("## Training curves")[0]
    assert "LFW View 2 10-fold accuracy >= 95 %: 96.13 %: **met**" in aims
    assert "CFP-FP 10-fold accuracy >= 80 %: 78.25 %: **not met**" in aims
    assert "TPR@FPR=0.001 >= 0.52: 0.5500: **met**" in aims
    assert "ROC-AUC >= 0.92: 0.9300: **met**" in aims
    assert "`composed-arcface`: better on 4 of 4 paired tests" in aims
    assert "`composed-ce`: better on 1 of 2 paired tests (not on Composed TPR@FPR=0.001" in aims
    assert "`composed-siamese`: not benchmarked" in aims
    assert "(each paired test on every set names the objective better): **not met**" in aims
    # ranked by composed AUC: arcface 0.93 > ce 0.90 > triplet 0.85; the first pair tested, the second not
    assert "1 of 2 adjacent pairs tested, 1 of them separated at p < 0.05: **not met**" in aims
    assert "`composed-ce` (0.9000) vs `composed-triplet` (0.8500): not compared (add `--compare composed-ce " \
           "composed-triplet`)" in aims


def test_ranking_met_when_every_adjacent_pair_is_tested():
    r = results()
    models = {m: r["models"][m] for m in ("composed-arcface", "composed-ce")}
    lines = report.ranking_aim(models, report.comparisons_of(r))
    assert lines[0].endswith("1 of 1 adjacent pairs tested, 1 of them separated at p < 0.05: **met**")
    assert lines[1] == "  - `composed-arcface` (0.9300) vs `composed-ce` (0.9000): composed-arcface better (p=0.010)"


def test_figures_written_and_linked(inputs, tmp_path):
    md = run_report(inputs, tmp_path)
    png = tmp_path / "docs" / "composed" / "composed-arcface.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![composed-arcface](composed/composed-arcface.png)" in md
    assert not (tmp_path / "docs" / "composed" / "composed-ce.png").exists()  # never run: no figure
    assert "- `composed-ce`: not run" in md


def test_header_names_command_and_data(inputs, tmp_path):
    md = run_report(inputs, tmp_path)
    assert md.startswith("# Composed-set results\n\nWritten by `python benchmarks/composed_report.py --results ")
    assert "run 2026-12-01, 200 bootstrap resamples, seed 42" in md
    assert "Training data: /data/composed" in md and "- **Composed**: 200 x 6 and 400 held out" in md


def test_missing_results_is_one_line(tmp_path, capsys):
    assert report.main(["--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python benchmarks/composed_report.py: error: --results ") and "\n" not in err
    assert "no results.json there" in err and not (tmp_path / "r.md").exists()


def test_bad_out_and_unreadable_results(inputs, tmp_path, capsys):
    res, runs = inputs
    assert report.main(["--results", str(res), "--out", str(tmp_path / "r.txt")]) == 2
    assert "must end in .md" in capsys.readouterr().err
    (res / "results.json").write_text("{not json")
    assert report.main(["--results", str(res), "--out", str(tmp_path / "r.md")]) == 2
    assert "not a readable results.json" in capsys.readouterr().err
