"""The shape of the code at two revisions: lines of the Trainer class and of the longest functions.

    python benchmarks/code_shape.py [--before REV] [--after REV] [--under PATH ...] [--top 10]

Reads each revision's Python files with ``git show`` (nothing is checked out) and measures with ``ast``: a
class's or function's lines run from its ``def``/``class`` line (decorators included) to its last line.
"""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("facedata", "models_definition", "id_rate", "training", "recognition", "train.py", "real-time-recognition.py")


def files_at(rev: str, under: list[str]) -> dict[str, str]:
    """``{path: source}`` of the ``.py`` files under the ``under`` paths at ``rev`` (``WORKTREE``: the files on disk)."""
    if rev == "WORKTREE":  # the tracked and new files git sees, not the virtual environment or data
        names = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard",
                                *under], check=True, capture_output=True, text=True).stdout.split()
        return {n: (ROOT / n).read_text() for n in names if n.endswith(".py") and (ROOT / n).is_file()}
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", rev, *under], check=True,
                           capture_output=True, text=True).stdout.split()
    return {n: subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{n}"], check=True, capture_output=True,
                              text=True).stdout for n in names if n.endswith(".py")}


def spans(source: str, path: str) -> list[tuple[str, str, int]]:
    """``(kind, qualified name, lines)`` of every class and function in ``source``."""
    out: list[tuple[str, str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                kind = "class" if isinstance(child, ast.ClassDef) else "def"
                name = f"{prefix}{child.name}"
                out.append((kind, f"{path}:{name}", child.end_lineno - first + 1))
                walk(child, name + ".")

    walk(ast.parse(source), "")
    return out


def shape(rev: str, under: list[str], cls: str, top: int) -> tuple[int | None, list[tuple[str, int]]]:
    """Lines of class ``cls`` (None when absent) and the ``top`` longest functions under ``under``."""
    all_spans = [s for path, src in files_at(rev, under).items() for s in spans(src, path)]
    cls_lines = next((n for k, q, n in all_spans if k == "class" and q.endswith(f":{cls}")), None)
    funcs = sorted(((q, n) for k, q, n in all_spans if k == "def"), key=lambda t: -t[1])[:top]
    return cls_lines, funcs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="HEAD", help="a git revision (default HEAD)")
    p.add_argument("--after", default="WORKTREE", help="a git revision, or WORKTREE for the files on disk")
    p.add_argument("--under", nargs="+", default=list(LIBRARY),
                   help="folders or files to measure (default: the library packages and the two scripts)")
    p.add_argument("--cls", default="Trainer", help="the class whose length is reported (default Trainer)")
    p.add_argument("--top", type=int, default=10)
    args = p.parse_args(argv)
    print(f"| | {args.before} | {args.after} |\n|---|---|---|")
    before, after = shape(args.before, args.under, args.cls, args.top), shape(args.after, args.under, args.cls, args.top)
    print(f"| lines of `{args.cls}` | {before[0]} | {after[0]} |")
    print(f"| lines of the {args.top} longest functions in {' '.join(args.under)} (sum) | "
          f"{sum(n for _, n in before[1])} | {sum(n for _, n in after[1])} |")
    for i in range(args.top):
        b = f"{before[1][i][0].split(':')[1]} {before[1][i][1]}" if i < len(before[1]) else ""
        a = f"{after[1][i][0].split(':')[1]} {after[1][i][1]}" if i < len(after[1]) else ""
        print(f"| {i + 1} | {b} | {a} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
