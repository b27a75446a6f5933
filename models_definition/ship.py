"""Ship a trained model inside the repository, with its model card.

    python -m models_definition.ship checkpoints/composed-arcface --name composed-arcface-r18half \\
        --results id_rate/results/benchmark/results.json

RUN is a run folder (its best.pt: the epoch train.py selected) or a checkpoint file. Into ``--out`` (default
``config.SHIPPED_DIR``, tracked by git) it writes ``NAME.pt``, the checkpoint's whole spec (preprocess, split,
train_config, thresholds) and its embedder's weights in float16 (``models_definition.shipped``; no head,
optimiser or RNG state), and ``NAME.md``, the model card: recipe and training settings, the data and their
licences, the thresholds the run measured, the benchmark rows of this model and of sface / random-init in the
``--results`` files (``python -m id_rate.benchmark``'s results.json), the file's SHA-256 and size, and how to
make it again. Both are written atomically; an existing NAME.pt is replaced only with ``--overwrite``. Prints the
SHA-256 and the line that registers the model in config.MODELS.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any, Mapping

import torch

from facedata.cli import command
from facedata.errors import UsageError
from facedata.io import check_output_file, write_bytes_atomic
from facedata.sample_data import sha256_file
from id_rate.report import markdown_rows
from id_rate.results_table import SETS as SET_TITLES, auc_cell, pair_cell, rate_cell, tar_cell

from .checkpoint import model_from_checkpoint
from .shipped import SHIP_COMMAND, check_name, shipped_checkpoint

PROG = SHIP_COMMAND
REPO = Path(__file__).resolve().parents[1]
MAX_SHIPPED_MB = 10.0  # every clone carries every version of the file: a small model, or none
# the rows every card compares with: SFace, and the seeded untrained baselines ("random-init", "random-init-r18-64")
BASELINES = ("sface", "random-init")
NON_COMMERCIAL = "for non-commercial research only"
UNKNOWN_LICENCE = "unknown to this command: find it before sharing the model"
# The licence of each training source, by the name the data carry (a composed set's "<source>__" identity prefix,
# else the folder's name starts with it). A source not here is named in the card as unknown, never guessed.
DATA_LICENCES: dict[str, tuple[str, str]] = {
    "fiw": ("FIW (Families In the Wild)", NON_COMMERCIAL),
    "celeba": ("CelebA (CelebFaces Attributes)", NON_COMMERCIAL),
    "sample": ("the built-in sample faces (docs/data.md: PyPI packages' test images and portraits)",
               "MIT / BSD-3-Clause as stated by their packages"),
}
# The training settings the card's summary lists (the file holds them all: spec["train_config"]).
SUMMARY_KEYS = ("data", "extra_data", "backbone", "pretrained", "embedding_size", "preprocess", "head", "head_kwargs",
                "teacher", "teacher_views", "sampler", "pk_k", "batch_size", "epochs", "optimizer", "lr",
                "weight_decay", "schedule", "warmup_epochs", "augment", "monitor", "seed", "split_seed")


# --- inputs ---------------------------------------------------------------------------------------------
def source_checkpoint(source: Path) -> Path:
    """The checkpoint a RUN argument names: a run folder's best.pt, or the file itself."""
    if source.is_dir():
        best = source / "best.pt"
        if not best.is_file():
            raise UsageError(f"{source}: a folder without best.pt, so not a finished training run; give a run folder "
                             "(`python train.py --recipe NAME` writes checkpoints/NAME/best.pt) or a checkpoint file")
        return best
    if not source.is_file():
        raise UsageError(f"{source}: no such run folder or checkpoint; train one with `python train.py --recipe NAME` "
                         "and give its folder (checkpoints/NAME)")
    return source


def read_results(path: Path) -> dict[str, Any]:
    """A results.json of ``python -m id_rate.benchmark`` (a folder: the one in it), refused unless it has that shape."""
    path = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--results {path}: not found; give the results.json `python -m id_rate.benchmark` wrote "
                         "(id_rate/results/benchmark/results.json by default)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--results {path}: not JSON ({exc}); rerun `python -m id_rate.benchmark`") from None
    models = results.get("models") if isinstance(results, dict) else None
    if not (isinstance(results, dict) and isinstance(results.get("meta"), dict) and "sets" in results["meta"]
            and isinstance(models, dict) and all(isinstance(v, dict) and all(isinstance(c, dict) for c in v.values())
                                                 for v in models.values())):
        raise UsageError(f"--results {path}: not a results.json of `python -m id_rate.benchmark` (it needs "
                         "meta.sets and models.<model>.<set> objects)")
    return {**results, "path": str(path)}


def data_sources(train_config: Mapping[str, Any], classes: list[str]) -> list[tuple[str, str, str]]:
    """(source, what it is, licence) of every training source: the composed set's sources by its identities'
    "<source>__" prefixes, other folders by name, then the unlabelled ``extra_data``."""
    prefixes = sorted({c.split("__", 1)[0] for c in classes if "__" in c})
    names = prefixes or [Path(str(train_config.get("data", "?"))).name]
    names += [Path(str(p)).name for p in train_config.get("extra_data") or ()]
    out = []
    for name in dict.fromkeys(names):
        key = next((k for k in DATA_LICENCES if name.lower().startswith(k)), None)
        what, licence = DATA_LICENCES[key] if key else (name, UNKNOWN_LICENCE)
        out.append((name, what, licence))
    return out


# --- the card ---------------------------------------------------------------------------------------------
def shown(path: Path) -> str:
    """``path`` as the card shows it: relative to the repository when inside it (the card is read in any clone)."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _value(v: Any) -> str:
    return f"`{json.dumps(v)}`" if isinstance(v, (dict, list)) else f"`{v}`"


def threshold_records(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The threshold records the checkpoint carries (measured on the run's held-out identities)."""
    return [r for r in (spec.get("metrics") or {}).get("thresholds") or [] if r.get("cos") is not None]


def threshold_rows(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """One card row per threshold record."""
    return [{"FPR": f"{r['fpr']:g}" if r.get("fpr") is not None else "-", "flip TTA": "yes" if r.get("flip") else "no",
             "cosine threshold": f"{r['cos']:.4f}", "measured on": str(r.get("data", "the run's held-out identities"))}
            for r in threshold_records(spec)]


def benchmark_rows(results: list[dict[str, Any]], models: list[str]) -> list[dict[str, str]]:
    """One row per (file, model, set) for ``models`` and the baselines, the figures as the README's table shows them."""
    rows = []
    for number, res in enumerate(results, 1):
        picked = [m for m in res["models"] if m in models or m in BASELINES or m.startswith("random-init-")]
        for model in sorted(picked, key=lambda m: (m not in models, m)):
            for name, fig in res["models"][model].items():
                row = {"model": f"`{model}`", "set": SET_TITLES.get(name, name)}
                if "skipped" in fig:
                    row.update({"accuracy % (10-fold)": f"skipped: {fig['skipped']}", "TAR@FAR=1e-3": "-",
                                "ID-rate AUC (95% CI)": "-", "TPR@FPR=1e-3": "-"})
                else:
                    row.update({"accuracy % (10-fold)": pair_cell(fig), "TAR@FAR=1e-3": tar_cell(fig),
                                "ID-rate AUC (95% CI)": auc_cell(fig), "TPR@FPR=1e-3": rate_cell(fig)})
                rows.append({**row, "results": f"[{number}]"})
    return rows


def registry_line(name: str, digest: str, recipe: str, threshold_fpr: float | None) -> str:
    """The config.MODELS line that registers the shipped file."""
    return f'"{name}": shipped_model("{name}", "{digest}", recipe="{recipe}", threshold_fpr={threshold_fpr!r}),'


def model_card(name: str, recipe: str, spec: Mapping[str, Any], pt: Path, digest: str, size_bytes: int,
               n_params: int, kept_fp32: list[str], source: Path, source_digest: str, results: list[dict[str, Any]],
               results_models: list[str], threshold_fpr: float | None, ship_args: str) -> str:
    """NAME.md: what the model is, what it learned from and under which licences, how well it does, how to remake it."""
    cfg = spec.get("train_config") or {}
    pre = spec["preprocess"]
    sources = data_sources(cfg, list(spec.get("classes") or []))
    restricted = [what for _, what, licence in sources if licence == NON_COMMERCIAL]
    split = spec.get("split") or {}
    lines = [
        f"# {name}", "",
        f"A face-embedding model trained by this project (recipe `{recipe}`), shipped as "
        f"`{shown(pt)}`: {size_bytes:,} bytes ({size_bytes / 1e6:.2f} MB), SHA-256 "
        f"`{digest}`. `load_model` checks that digest before it reads the file.", "",
    ]
    if restricted:
        lines += [f"**Licence: {NON_COMMERCIAL}.** The weights were learned from {' and '.join(restricted)}, whose "
                  f"images are licensed {NON_COMMERCIAL}; so is this model. Do not use it commercially.", ""]
    lines += ["## Use", "", "```python", "import config", "from models_definition.zoo import load_model", "",
              f'embedder = load_model("{name}", config.MODELS)  # aligned RGB uint8 crops -> unit-length embeddings',
              "```", "", "once `config.py` registers it (in MODELS' dict of entries) with", "", "```python",
              registry_line(name, digest, recipe, threshold_fpr), "```", ""]
    monitor = _value(cfg["monitor"]) if cfg.get("monitor") else "the default monitor"
    lines += ["## Model", "", *markdown_rows([
        {"property": "backbone", "value": f"`{spec['backbone']}`, {n_params:,} parameters"},
        {"property": "embedding", "value": f"{spec['embedding_size']}-D, L2-normalised; cosine similarity"},
        {"property": "input", "value": f"{pre['size_px']} px crops, alignment `{pre.get('alignment', '?')}`, "
                                       f"colour {pre.get('color_order', 'RGB')}, mean {pre.get('mean')}, "
                                       f"std {pre.get('std')}"},
        {"property": "objective", "value": f"`{spec.get('head')}` {_value(spec.get('head_kwargs') or {})}"},
        {"property": "epoch shipped", "value": f"{spec.get('epoch', '?')} of {cfg.get('epochs', '?')} (chosen on "
                                               f"{monitor})"},
        {"property": "weights", "value": "float16 in the file, cast to float32 when loaded" + (
            f"; kept in float32 (beyond float16's range): {', '.join(kept_fp32)}" if kept_fp32 else "")},
        {"property": "made from", "value": f"`{shown(source)}` (float32, SHA-256 `{source_digest}`)"},
    ]), ""]
    lines += ["## Training", "", f"Recipe `{recipe}` (`config.TRAIN_RECIPES`); the settings the run used (the file "
              "holds all of them, `spec['train_config']`):", "",
              *markdown_rows([{"setting": k, "value": _value(cfg[k])} for k in SUMMARY_KEYS if k in cfg]), "",
              f"{len(spec.get('classes') or [])} training identities. Held out of training by the split "
              f"(seed {split.get('split_seed', '?')}): " + (
                  f"{split['benchmark_query']} query and {split.get('benchmark_distractor', 0)} distractor identities "
                  "for the benchmark alone, then " if split.get("benchmark_query") else "") +
              f"{split.get('open_set_query', 0)} query and {split.get('open_set_distractor', 0)} distractor identities "
              "that chose the epoch and measured the thresholds below.", ""]
    lines += ["## Data and licences", "", *markdown_rows([{"source": f"`{n}`", "dataset": what, "licence": licence}
                                                          for n, what, licence in sources]), ""]
    if restricted:
        lines += [f"{' and '.join(restricted)} are {NON_COMMERCIAL}: the model inherits that restriction.", ""]
    rows = threshold_rows(spec)
    lines += ["## Unknown-face thresholds", "", "Measured by the training run on its held-out identities (a face "
              "whose best cosine similarity is below the threshold is Unknown); one per FPR and flip setting:", "",
              *(markdown_rows(rows) if rows else ["(none: the run held out no identities)"]), ""]
    lines += ["## Benchmark", ""]
    if results:
        lines += [f"Rows of `{'`, `'.join(results_models)}` and of the baselines (sface, random-init) as the results "
                  "files give them (`python -m id_rate.benchmark`; a run's rows score its float32 checkpoint):", "",
                  *markdown_rows(benchmark_rows(results, results_models)), ""]
        for i, res in enumerate(results, 1):
            meta = res["meta"]
            lines.append(f"{i}. `{res['path']}` ({meta.get('date', 'undated')}, flip TTA "
                         f"{'on' if meta.get('flip_tta') else 'off'}, {meta.get('bootstrap', '?')} bootstrap "
                         "resamples)")
            lines += [f"   - {SET_TITLES.get(k, k)}: {v}" for k, v in meta["sets"].items()]
        lines.append("")
    else:
        lines += ["(no --results given: not benchmarked here)", ""]
    lines += ["## Make it again", "", "```bash", f"python train.py --recipe {recipe}",
              f"{SHIP_COMMAND} checkpoints/{recipe} --name {name}{ship_args} --overwrite", "```", "",
              "then put the SHA-256 it prints into the config.MODELS entry above. Training is seeded, but not "
              "bit-identical across machines and library versions: a retrained file has another digest.", ""]
    return "\n".join(lines)


# --- the command ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, metavar="RUN_DIR_OR_CHECKPOINT",
                   help="a training run folder (its best.pt) or a checkpoint file")
    p.add_argument("--name", required=True, help="the model's name: NAME.pt, NAME.md and its config.MODELS key")
    p.add_argument("--recipe", help="the recipe that trained it (default: the run folder's name)")
    p.add_argument("--results", type=Path, nargs="+", default=[], metavar="RESULTS_JSON",
                   help="results.json files (or their folders) of `python -m id_rate.benchmark`")
    p.add_argument("--results-model", action="append", metavar="MODEL",
                   help="the model's name in those files (repeatable; default: NAME and the recipe's registry name)")
    p.add_argument("--out", type=Path, help="where to write (default config.SHIPPED_DIR)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing NAME.pt and NAME.md")
    return p.parse_args(argv)


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    import config  # the command checks its names against the project's registries; the package never needs them

    args = parse_args(argv)
    name = check_name(args.name)
    source = source_checkpoint(args.run)
    recipe = args.recipe or (args.run.name if args.run.is_dir() else source.parent.name)
    if recipe not in config.TRAIN_RECIPES:
        raise UsageError(f"recipe {recipe!r} ({'--recipe' if args.recipe else 'the run folder name'}): not in "
                         f"config.TRAIN_RECIPES; pass --recipe, one of: {', '.join(config.TRAIN_RECIPES)}")
    out = (args.out or config.SHIPPED_DIR).expanduser()
    pt, md = out / f"{name}.pt", out / f"{name}.md"
    taken = config.MODELS.get(name)
    if taken is not None and Path(taken.get("checkpoint", "")) != pt:
        raise UsageError(f"--name {name!r}: config.MODELS already has a model of that name; choose another")
    for path in (pt, md):
        check_output_file(path, "--name", overwrite=args.overwrite)
    results = [read_results(p) for p in args.results]
    results_models = args.results_model or [name, recipe + ("-last-epoch" if source.name == "last.pt" else "")]
    if results and not any(m in res["models"] for res in results for m in results_models):
        listed = sorted({m for res in results for m in res["models"]})
        raise UsageError(f"--results: no model named {' or '.join(results_models)} in them (they have: "
                         f"{', '.join(listed)}); pass --results-model with the name it was benchmarked under")

    # one read of the checkpoint (a run still training may replace it): a checkpoint that does not rebuild is
    # refused here, before any write; the model's state dict is the file's, loaded exactly
    model, _, spec = model_from_checkpoint(source)
    shipped, kept = shipped_checkpoint({"spec": spec, "model": model.state_dict()})
    buf = io.BytesIO()
    torch.save(shipped, buf)
    data = buf.getvalue()
    if len(data) > MAX_SHIPPED_MB * 1e6:
        raise UsageError(f"{source}: its float16 copy is {len(data) / 1e6:.1f} MB, above the {MAX_SHIPPED_MB:g} MB a "
                         "shipped model may take (every clone carries it); ship a smaller backbone")
    digest = hashlib.sha256(data).hexdigest()
    # the entry's FPR: the one every recipe measures at when the run has it, else the run's own
    fprs = [r.get("fpr") for r in threshold_records(spec)]
    threshold_fpr = config.RECIPE_THRESHOLD_FPR if config.RECIPE_THRESHOLD_FPR in fprs or not fprs else fprs[0]
    # the options that make the same card again (the run folder is then checkpoints/<recipe>: no --recipe)
    ship_args = "".join(f" --results {p}" for p in args.results) + \
        "".join(f" --results-model {m}" for m in args.results_model or ())
    card = model_card(name, recipe, spec, pt, digest, len(data), sum(p.numel() for p in model.parameters()), kept,
                      source, sha256_file(source), results, results_models, threshold_fpr,
                      ship_args)
    write_bytes_atomic(data, pt)
    write_bytes_atomic(card.encode(), md)
    model_from_checkpoint(pt)  # the written file loads back: its spec, shapes and finite weights
    if kept:
        print(f"{PROG}: kept in float32 (values beyond float16's range): {', '.join(kept)}", file=sys.stderr)
    unknown = [n for n, _, licence in data_sources(spec.get("train_config") or {}, list(spec.get("classes") or []))
               if licence == UNKNOWN_LICENCE]
    if unknown:
        print(f"{PROG}: the licence of {', '.join(unknown)} is unknown: state it in {md} before sharing",
              file=sys.stderr)
    print(f"wrote {pt} ({len(data):,} bytes, float16 weights) and its model card {md}")
    print(f"SHA-256 {digest}")
    print("register it in config.MODELS:")
    print(f"    {registry_line(name, digest, recipe, threshold_fpr)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
