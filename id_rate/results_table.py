"""The README's results table, generated from recorded result files: nothing in it is typed by hand.

    python -m id_rate.results_table record id_rate/results/benchmark --command "make benchmarks"
    python -m id_rate.results_table            # rewrites the table between the markers of README.md
    python -m id_rate.results_table --check    # exit 1 when README.md's table is not what the records give

``--check`` exits as diff does: 0 the table is up to date, 1 it is stale, 2 trouble (a bad record, no markers).

``record`` copies a ``results.json`` that ``python -m id_rate.benchmark`` or ``python -m id_rate`` wrote (both
git-ignored, under ``id_rate/results/``) into ``docs/results/<name>.json`` (tracked), with the command that made
it and its date. The table has one row per model and record: a model a later record scored again with the same
figures is not repeated.

Keys read (a key that is absent leaves its cell '-', so older and newer files both render):

* ``meta.date`` (else the date ``record`` saved), ``meta.command`` (else the command ``record`` saved);
* a benchmark file: ``models.<model>.<set>`` for the sets ``lfw``, ``cfp-ff``, ``cfp-fp``, ``celeba``,
  ``composed``; an
  ``id_rate`` file: ``models.<model>`` for the one set ``record --set`` names (``lfw`` pair figures under
  ``models.<model>.lfw``);
* pair sets: ``accuracy_mean``, ``accuracy_std``, ``tar_at_far_1e3`` and, when present, the FAR it was reached
  at, ``achieved_far_1e3``; ID-rate sets: ``auc``, ``bootstrap95_over_identities.auc`` (or ``bootstrap95.auc``),
  ``points[].target_fpr`` / ``tpr`` and, when present, the FPR reached, ``points[].fpr``;
  a skipped cell: ``skipped``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from facedata.cli import command
from facedata.errors import UsageError
from facedata.io import write_bytes_atomic

from .report import markdown_rows

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "results"  # tracked copies of result files: the table's only input
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# The sets the table has columns for, and the protocol names `python -m id_rate` writes for them.
SETS = {"lfw": "LFW", "cfp-ff": "CFP-FF", "cfp-fp": "CFP-FP", "celeba": "CelebA", "composed": "Composed"}
IDRATE_SETS = ("celeba", "composed")  # the held-out people sets: an AUC and a TPR@FPR column each
# The keys under which the evaluation code states the FPR / FAR a threshold really reaches (ties can keep it under
# the target): RatePoint.fpr and PairVerificationResult.achieved_far_1e3 (id_rate/protocols.py).
ACHIEVED_FPR_KEY = "fpr"
ACHIEVED_FAR_KEY = "achieved_far_1e3"
TARGET_FPR = 1e-3  # the operating point of the table's rate columns: the seed's strictest FPR
# A rate from a result file that states no reached FPR / FAR was made before the tie-safe rule (issue 19): its
# threshold accepted every negative tied at it, so the FPR it reached may be above the stated one.
OLD_RULE = "(old rule)"

COLUMNS = ["model", "LFW acc. %", "CFP-FF acc. %", "CFP-FP acc. %", "CFP-FP TAR@FAR=1e-3",
           *[f"{SETS[s]} {c}" for s in IDRATE_SETS for c in ("ID-rate AUC (95% CI)", "TPR@FPR=1e-3")],
           "made by", "date"]


# --- reading ----------------------------------------------------------------------------------------------
def _reached(cell: str, what: str, rate: float | None) -> str:
    """``cell`` with the FPR / FAR it was reached at, in brackets: "0.889 (FPR 0.00093)"."""
    return f"{cell} {OLD_RULE}" if rate is None else f"{cell} ({what} {rate:.2g})"


def _shape_error(rec: Any) -> str | None:
    """What keeps ``rec`` (a record file's JSON) from being a record the table can read; None when nothing."""
    if not isinstance(rec, dict) or not isinstance(rec.get("recorded"), dict):
        return "no 'recorded' object"
    results = rec.get("results")
    shape = _results_shape_error(results)
    if shape:
        return shape
    meta = results.get("meta", {})
    for key in ("command", "date"):
        if not isinstance(meta.get(key) or rec["recorded"].get(key), str):
            return f"no {key} in 'results.meta' or 'recorded'"
    return None


def _results_shape_error(results: Any) -> str | None:
    """What keeps ``results`` (a results.json) from being one the table can read; None when nothing."""
    if not isinstance(results, dict):
        return "the results are not a JSON object"
    if not isinstance(results.get("meta", {}), dict):
        return "'meta' is not an object"
    models = results.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        return "'models' is not an object of one object per model"
    if "sets" in results.get("meta", {}) and not all(isinstance(f, dict) for v in models.values() for f in v.values()):
        return "a benchmark file's 'models.<model>.<set>' is not an object"
    return None


def sets_of(results: dict[str, Any], set_name: str | None = None) -> dict[str, dict[str, dict]]:
    """{model: {set: figures}} of a results.json of either command (``set_name``: the set an id_rate file is on)."""
    models = results.get("models", {})
    if "sets" in results.get("meta", {}):  # id_rate.benchmark: already per set
        return {m: {s: v for s, v in per.items() if s in SETS} for m, per in models.items()}
    if set_name is None:
        raise UsageError("an id_rate results.json scores one set: say which with --set "
                         f"({', '.join(SETS)})")
    out = {}
    for m, fig in models.items():
        cell = {k: v for k, v in fig.items() if k != "lfw"}
        if "bootstrap95" in cell:
            cell["bootstrap95_over_identities"] = cell.pop("bootstrap95")
        per = {set_name: cell}
        if "lfw" in fig:  # --lfw-pairs / --bin: LFW's pair figures beside the ID-rate ones
            per["lfw"] = {**per.get("lfw", {}), **fig["lfw"]}
        out[m] = per
    return out


def load_records(folder: Path = RECORDS) -> list[dict[str, Any]]:
    """The recorded files of ``folder``, in name order (the order of the table's rows)."""
    records = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stem):
        try:
            rec = json.loads(path.read_text())
        except ValueError as exc:
            rec, shape = None, f"not JSON: {exc}"
        else:
            shape = _shape_error(rec)
        if shape:  # only the shape is checked here: an error while rendering a good record is a bug, not bad input
            raise UsageError(f"{path}: not a result record ({shape}); make it with "
                             "`python -m id_rate.results_table record DIR --command ...`")
        meta = rec["results"].get("meta", {})
        rec["name"] = path.stem
        rec["command"] = meta.get("command") or rec["recorded"]["command"]
        rec["date"] = meta.get("date") or rec["recorded"]["date"]
        rec["sets"] = sets_of(rec["results"], rec["recorded"].get("set"))
        records.append(rec)
    return records


# --- cells -----------------------------------------------------------------------------------------------
def pair_cell(fig: dict | None) -> str:
    if not fig:
        return "-"
    if "skipped" in fig:
        return f"skipped: {fig['skipped']}"
    if fig.get("accuracy_mean") is None:
        return "-"
    return f"{100 * fig['accuracy_mean']:.2f} ± {100 * (fig.get('accuracy_std') or 0):.2f}"


def tar_cell(fig: dict | None) -> str:
    if not fig or fig.get("tar_at_far_1e3") is None:
        return "-"
    return _reached(f"{fig['tar_at_far_1e3']:.3f}", "FAR", fig.get(ACHIEVED_FAR_KEY))


def auc_cell(fig: dict | None) -> str:
    if not fig:
        return "-"
    if "skipped" in fig:
        return f"skipped: {fig['skipped']}"
    if fig.get("auc") is None or "points" not in fig:
        return "-"
    ci = (fig.get("bootstrap95_over_identities") or {}).get("auc")
    return f"{fig['auc']:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci and None not in ci else "")


def rate_cell(fig: dict | None, target: float = TARGET_FPR) -> str:
    pt = next((p for p in (fig or {}).get("points", []) if p.get("target_fpr") == target), None)
    if pt is None:
        return "-"
    if pt.get("tpr") is None:
        return "n/r"
    return _reached(f"{pt['tpr']:.3f}", "FPR", pt.get(ACHIEVED_FPR_KEY))


def figure_cells(per_set: dict[str, dict]) -> dict[str, str]:
    """The figure columns of one model in one record."""
    cells = {"LFW acc. %": pair_cell(per_set.get("lfw")), "CFP-FF acc. %": pair_cell(per_set.get("cfp-ff")),
             "CFP-FP acc. %": pair_cell(per_set.get("cfp-fp")), "CFP-FP TAR@FAR=1e-3": tar_cell(per_set.get("cfp-fp"))}
    for s in IDRATE_SETS:
        cells[f"{SETS[s]} ID-rate AUC (95% CI)"] = auc_cell(per_set.get(s))
        cells[f"{SETS[s]} TPR@FPR=1e-3"] = rate_cell(per_set.get(s))
    return cells


# --- the table -------------------------------------------------------------------------------------------
def table_rows(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per model and record; a row whose figures an earlier row of that model already shows is dropped."""
    rows: list[dict[str, str]] = []
    for number, rec in enumerate(records, 1):
        for model, per_set in rec["sets"].items():
            cells = figure_cells(per_set)
            shown = {k: v for k, v in cells.items() if v != "-"}
            if any(r["model"] == f"`{model}`" and all(r[k] == v for k, v in shown.items()) for r in rows):
                continue
            rows.append({"model": f"`{model}`", **cells, "made by": f"[{number}]", "date": rec["date"]})
    return rows


def render(records: list[dict[str, Any]]) -> str:
    """The block between the markers: the table, what its columns mean, and the command of each record."""
    lines = ["<!-- Generated by `python -m id_rate.results_table` from docs/results/*.json: do not edit. -->", "",
             *markdown_rows(table_rows(records), COLUMNS)]
    lines += ["", "acc.: 10-fold accuracy over all pairs (mean ± std over folds, each fold's threshold from the other "
              "9). CelebA: held-out people of the CelebA subset scored with the seed's ID-rate protocol "
              "(each record's results.json describes its split); Composed: the same on the people of the composed "
              "training set that config.COMPOSED_SPLIT sets aside for the benchmark (no composed-* recipe trains "
              "on them); 95% CI: bootstrap over identities. In brackets: the FPR / FAR the threshold "
              "really reached (never above the stated one); '(old rule)': a result file made before that rule, whose "
              "threshold accepted negatives tied at it, so the FPR it reached may exceed the stated one. '-': not scored in that run. What each set is: [docs/evaluation.md](docs/evaluation.md).",
              "", "Made by:", ""]
    lines += [f"{n}. `{rec['command']}` ({rec['date']}; recorded in `docs/results/{rec['name']}.json`)"
              for n, rec in enumerate(records, 1)]
    return "\n".join(lines)


def replace_block(text: str, block: str, where: str = "README.md") -> str:
    """``text`` with everything between the markers replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise UsageError(f"{where}: needs exactly one {BEGIN} line followed by one {END} line for the table")
    head, rest = text.split(BEGIN, 1)
    return head + BEGIN + "\n" + block + "\n" + END + rest.split(END, 1)[1]


def current_block(text: str) -> str:
    """What lies between the markers now (without the newlines next to them)."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


# --- recording -------------------------------------------------------------------------------------------
def record(result_dir: Path, command_line: str, name: str | None = None, set_name: str | None = None,
           folder: Path = RECORDS) -> Path:
    """Copy ``result_dir/results.json`` to ``folder/<name>.json`` with the command and date; returns the path."""
    src = result_dir / "results.json" if result_dir.is_dir() else result_dir
    if set_name is not None and set_name not in SETS:
        raise UsageError(f"--set {set_name!r}: the table has columns for {', '.join(SETS)}")
    try:
        results = json.loads(src.read_text())
    except ValueError as exc:
        raise UsageError(f"{src}: not JSON ({exc}); rerun the command that writes it") from exc
    shape = _results_shape_error(results)
    if shape:
        raise UsageError(f"{src}: not a results.json of `python -m id_rate` or `python -m id_rate.benchmark` "
                         f"({shape})")
    if set_name is None and "sets" not in results.get("meta", {}):  # id_rate: its protocol may name the set
        set_name = {v: k for k, v in SETS.items()}.get(results.get("meta", {}).get("protocol"))
    sets_of(results, set_name)  # refuses a file it could not render, before anything is written
    date = dt.date.fromtimestamp(src.stat().st_mtime).isoformat()  # when the command wrote it
    where = str(src.resolve().relative_to(ROOT)) if src.resolve().is_relative_to(ROOT) else str(src)
    payload = {"recorded": {"command": command_line, "date": date, "source": where, "set": set_name},
               "results": results}
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name or (result_dir.name if result_dir.is_dir() else result_dir.parent.name)}.json"
    write_bytes_atomic((json.dumps(payload, indent=1) + "\n").encode(), out)
    return out


@command("python -m id_rate.results_table")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m id_rate.results_table", description=__doc__.split("\n\n")[0])
    p.add_argument("action", nargs="?", choices=["write", "record"], default="write")
    p.add_argument("result_dir", nargs="?", type=Path, help="record: the folder holding results.json (or the file)")
    p.add_argument("--command", dest="command_line", help="record: the command that wrote it, as it was run")
    p.add_argument("--name", help="record: the record's name (default: the result folder's name)")
    p.add_argument("--set", dest="set_name", help=f"record, an id_rate file: the set it scored ({', '.join(SETS)})")
    p.add_argument("--records", type=Path, default=RECORDS, help="the folder of records (default docs/results)")
    p.add_argument("--readme", type=Path, default=README)
    p.add_argument("--check", action="store_true", help="write nothing; exit 0 when the README's table is up to "
                   "date, 1 when it is stale (as diff does), 2 on trouble")
    args = p.parse_args(argv)
    if args.action == "record":
        if args.result_dir is None or not args.command_line:
            raise UsageError("record needs the result folder and --command (the command that wrote it)")
        print(f"recorded {record(args.result_dir, args.command_line, args.name, args.set_name, args.records)}")
        return 0
    text = args.readme.read_text()
    new = replace_block(text, render(load_records(args.records)), str(args.readme))
    if args.check:
        if new != text:
            print(f"{args.readme}: the results table is not what {args.records} gives; "
                  "run `python -m id_rate.results_table`")
            return 1
        print(f"{args.readme}: the results table is up to date")
        return 0
    if new != text:
        write_bytes_atomic(new.encode(), args.readme)
    print(f"wrote the results table of {args.readme} from {args.records}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
