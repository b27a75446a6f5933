"""The own-models table of docs/results-by-date.md, assembled from what `make celeba-models` wrote (nothing is recomputed):

* each run's ``checkpoints/<recipe>/log.csv``: ``train min`` sums its epochs' training seconds; ``wall min``
  sums its ``wall_seconds`` (each process's set-up and teacher table, training, the per-epoch checks and
  checkpoint writing; an epoch cut short by an interruption is not counted; '-' for runs logged before that
  column existed) and its ``best.pt`` epoch;
* ``id_rate/results/lfw-own/results.json`` (LFW View 2 accuracy, TAR@FAR=1e-3, ID-rate AUC with its
  bootstrap interval) and ``id_rate/results/celeba-own/results.json`` (the held-out CelebA people);
* the last column: whether a random-init row's AUC interval lies wholly above that of the same backbone
  untrained (the issue's aim), with the gap between the two bounds.

    python benchmarks/own_models_table.py [--lfw id_rate/results/lfw-own] [--celeba id_rate/results/celeba-own]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (puts the repository root on sys.path)

import config  # noqa: E402
from models_definition.checkpoint import load_checkpoint  # noqa: E402

ROWS = [  # (model name, objective, backbone, start)
    ("random-init", "none (untrained)", "EfficientNet-B0", "random"),
    ("celeba-ce", "cross-entropy", "EfficientNet-B0", "random"),
    ("celeba-arcface", "ArcFace s=32 m=0.3", "EfficientNet-B0", "random"),
    ("celeba-triplet", "triplet, batch-hard", "EfficientNet-B0", "random"),
    ("celeba-triplet-semihard", "triplet, semi-hard, 12 epochs", "EfficientNet-B0", "random"),
    ("celeba-siamese", "contrastive, all pairs, m=1.4", "EfficientNet-B0", "random"),
    ("celeba-distill-sface", "distillation from SFace, no labels (teacher on plain crops)", "EfficientNet-B0 (128-D)", "random"),
    ("celeba-distill-sface-labels", "distillation from SFace + ArcFace (teacher on plain crops)", "EfficientNet-B0 (128-D)", "random"),
    ("random-init-r18-64", "none (untrained)", "ResNet-18 at 64 px (128-D)", "random"),
    ("celeba-arcface-r18", "ArcFace s=32 m=0.3, labels alone, 24 epochs", "ResNet-18 at 64 px (128-D)", "random"),
    ("celeba-siamese-r18", "contrastive, all pairs, m=1.4, 24 epochs", "ResNet-18 at 64 px (128-D)", "random"),
    ("celeba-triplet-r18", "triplet, semi-hard, 24 epochs", "ResNet-18 at 64 px (128-D)", "random"),
    ("celeba-distill-sface-views", "distillation from SFace, no labels, 10 consistent views, + sample faces",
     "ResNet-18 at 64 px (128-D)", "random"),
    ("celeba-distill-sface-views-labels", "ArcFace + distillation from SFace (10 views), + sample faces",
     "ResNet-18 at 64 px (128-D)", "random"),
    ("celeba-distill-sface-64", "distillation from SFace (10 views), + sample faces", "MobileFaceNet (SFace) at 64 px",
     "SFace, output block resampled"),
    ("sface-torch", "none (SFace's weights converted)", "MobileFaceNet (SFace)", "SFace"),
    ("celeba-sface-finetune", "ArcFace fine-tune (head 1 epoch, then all at lr/10)", "MobileFaceNet (SFace)", "SFace"),
    ("celeba-sface-finetune-anchored", "fine-tune: 0.1 x ArcFace + (1 - cos) to SFace", "MobileFaceNet (SFace)", "SFace"),
    ("sface", "reference: OpenCV SFace ONNX", "MobileFaceNet", "-"),
    ("dlib", "reference: dlib ResNet", "ResNet-29", "-"),
]


def run_facts(name: str) -> tuple[str, str, str]:
    """(training minutes, wall minutes, best epoch / epochs) of a checkpoint model, '-' otherwise."""
    entry = config.MODELS.get(name, {})
    if "checkpoint" not in entry or not Path(entry["checkpoint"]).exists():
        return "-", "-", "-"
    log = Path(entry["checkpoint"]).parent / "log.csv"
    rows = list(csv.DictReader(open(log)))
    train_s = sum(float(r["seconds"]) for r in rows if r["seconds"])
    walls = [r.get("wall_seconds") or "" for r in rows]
    wall = f"{sum(map(float, walls)) / 60:.1f}" if all(walls) else "-"  # only when every epoch logged it
    best = load_checkpoint(entry["checkpoint"])["spec"].get("epoch")
    return f"{train_s / 60:.1f}", wall, f"{best} / {len(rows) - 1}"


# The untrained network each random-init row must beat: the same backbone at the same input size.
UNTRAINED = {"EfficientNet-B0": "random-init", "ResNet-18": "random-init-r18-64"}


def clear_of_untrained(results: dict, name: str, backbone: str) -> str:
    """'yes' when the row's AUC interval lies wholly above its untrained backbone's (the aim's margin), with the
    gap between the row's lower and the baseline's upper 95% bound; '-' for rows that are not from random init."""
    base = next((b for prefix, b in UNTRAINED.items() if backbone.startswith(prefix)), None)
    if base is None or base == name or name not in results or base not in results:
        return "-"
    low, high = results[name].get("bootstrap95", {}).get("auc"), results[base].get("bootstrap95", {}).get("auc")
    if not low or not high or low[0] is None or high[1] is None:  # no interval (too few identities)
        return "-"
    gap = low[0] - high[1]
    return f"{'yes' if gap > 0 else 'no'} ({gap:+.3f})"


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lfw", type=Path, default=Path("id_rate/results/lfw-own"))
    p.add_argument("--celeba", type=Path, default=Path("id_rate/results/celeba-own"))
    args = p.parse_args()
    lfw = json.loads((args.lfw / "results.json").read_text())["models"]
    cel = json.loads((args.celeba / "results.json").read_text())["models"]
    print("| objective | backbone | start | train min | wall min | best epoch | LFW View 2 acc. (%) | LFW TAR@FAR=1e-3 | "
          "LFW ID-rate AUC (95% CI) | CelebA held-out TPR@FPR=1e-3 | CelebA AUC (95% CI) | CelebA rank-1 | "
          "AUC interval above untrained's (LFW / CelebA) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, objective, backbone, start in ROWS:
        if name not in lfw and name not in cel:
            continue
        cells = [f"{objective} (`{name}`)", backbone, start, *run_facts(name)]
        if name in lfw:
            m = lfw[name]
            ci = m.get("bootstrap95", {}).get("auc")
            cells += [f"{100 * m['lfw']['accuracy_mean']:.2f} ± {100 * m['lfw']['accuracy_std']:.2f}",
                      fmt(m["lfw"]["tar_at_far_1e3"]),
                      f"{m['auc']:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "")]
        else:
            cells += ["-", "-", "-"]
        if name in cel:
            m = cel[name]
            ci = m.get("bootstrap95", {}).get("auc")
            tpr = next(pt["tpr"] for pt in m["points"] if pt["target_fpr"] == 0.001)
            cells += [fmt(tpr), f"{m['auc']:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else ""),
                      fmt(m.get("open_set", {}).get("rank1"))]
        else:
            cells += ["-", "-", "-"]
        cells.append(f"{clear_of_untrained(lfw, name, backbone)} / {clear_of_untrained(cel, name, backbone)}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
