"""Two training runs' log.csv, column by column: the largest absolute difference of each, over the rows
both have (wall-clock columns are listed but not judged: they time the machine, not the arithmetic).

Either compare two logs you have::

    python benchmarks/compare_training_logs.py --logs A/log.csv B/log.csv

or run one recipe with the code at two paths (each a checkout of this repository: its own ``train.py``
and packages, the same Python) and compare their logs::

    python benchmarks/compare_training_logs.py --before /work/before --after . --recipe sample-arcface \\
        --epochs 2 --data data/celeba_aligned --set batches_per_epoch=3 --set open_set_distractor_images=2

Both runs get one CPU thread (the same kernels, so equal code gives equal bits) and ``--no-progress``.
Exit status 0 when every judged column agrees within ``--tolerance`` (default 1e-6), 1 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WALL_CLOCK = ("images_per_s", "seconds", "wall_seconds")  # timings: they differ from run to run


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _value(text: str) -> float | None:
    return None if text == "" else float(text)


def column_differences(a: list[dict[str, str]], b: list[dict[str, str]]) -> dict[str, float]:
    """Max |a - b| per column over the rows both logs have (a row is matched by its epoch). An empty cell
    against a number, or a column only one log has, counts as an infinite difference."""
    rows_b = {r["epoch"]: r for r in b}
    columns = list(dict.fromkeys([*(a[0] if a else {}), *(b[0] if b else {})]))
    out = {c: 0.0 for c in columns}
    for ra in a:
        rb = rows_b.get(ra["epoch"])
        if rb is None:
            continue
        for c in columns:
            va, vb = ra.get(c), rb.get(c)
            if va is None or vb is None or (va == "") != (vb == ""):
                out[c] = math.inf
            elif va != "":
                out[c] = max(out[c], abs(_value(va) - _value(vb)))
    return out


def run_recipe(code: Path, out: Path, args: argparse.Namespace) -> Path:
    """``train.py`` of the checkout at ``code`` into ``out``; returns its log.csv."""
    cmd = [sys.executable, "train.py", "--recipe", args.recipe, "--epochs", str(args.epochs), "--out", str(out),
           "--no-progress", "--threads", "1"]
    if args.data:
        cmd += ["--data", str(Path(args.data).resolve())]
    for item in args.set:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    print(f"running {code}: {' '.join(cmd)}", file=sys.stderr)
    r = subprocess.run(cmd, cwd=code, env=env)
    if r.returncode != 0:
        raise SystemExit(f"compare_training_logs: the run with {code} failed (exit {r.returncode})")
    return out / "log.csv"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--logs", nargs=2, metavar=("A", "B"), type=Path, help="compare these two log.csv files")
    p.add_argument("--before", type=Path, help="checkout whose train.py runs first")
    p.add_argument("--after", type=Path, help="checkout whose train.py runs second")
    p.add_argument("--recipe", default="sample-arcface")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--data", help="the recipe's data replaced (a path, resolved here)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to train.py")
    p.add_argument("--keep", type=Path, help="write the two runs here (default: a temporary folder)")
    p.add_argument("--tolerance", type=float, default=1e-6)
    args = p.parse_args(argv)
    if args.logs:
        log_a, log_b = args.logs
    elif args.before and args.after:
        root = args.keep or Path(tempfile.mkdtemp(prefix="compare-training-"))
        log_a = run_recipe(args.before.resolve(), root / "before", args)
        log_b = run_recipe(args.after.resolve(), root / "after", args)
    else:
        p.error("give --logs A B, or --before and --after")
    a, b = read_log(log_a), read_log(log_b)
    diffs = column_differences(a, b)
    print(f"{log_a} vs {log_b}: {len(a)} and {len(b)} rows")
    print(f"{'column':28s} {'max |difference|':>18s}")
    failed = []
    for c, d in diffs.items():
        judged = c not in WALL_CLOCK
        print(f"{c:28s} {d:18.3g}{'' if judged else '  (wall clock: not judged)'}")
        if judged and not d <= args.tolerance:
            failed.append(c)
    same_rows = [r["epoch"] for r in a] == [r["epoch"] for r in b]
    print(("equal" if not failed and same_rows else "DIFFERENT") + f" within {args.tolerance:g} "
          f"(columns over it: {', '.join(failed) or 'none'}; same epochs: {same_rows})")
    return 0 if not failed and same_rows else 1


if __name__ == "__main__":
    sys.exit(main())
