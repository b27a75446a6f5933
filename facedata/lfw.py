"""LFW pair files: View 1 (pairsDevTrain.txt / pairsDevTest.txt) and View 2 (pairs.txt).

View 2 starts with "10 300": 10 folds, each 300 same-person lines ``name n1 n2`` then 300
different-person lines ``name1 n1 name2 n2``. View 1 files start with one number N: N same lines, then
N different lines (one fold). Images are ``<root>/<name>/<name>_<n:04d>.jpg``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DatasetError


@dataclass(frozen=True)
class Pair:
    fold: int
    name1: str
    n1: int
    name2: str
    n2: int
    same: bool


def parse_pairs(path: str | os.PathLike) -> list[Pair]:
    """Parse a View 1 or View 2 pairs file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: pairs file not found")
    lines = [ln.split() for ln in path.read_text().splitlines()]
    lines = [(i + 1, t) for i, t in enumerate(lines) if t]
    if not lines:
        raise DatasetError(f"{path}: empty pairs file")
    head_no, head = lines[0]
    try:
        nums = [int(t) for t in head]
    except ValueError:
        raise DatasetError(f"{path}:{head_no}: header must be 'N' (View 1) or 'folds N' (View 2), got {' '.join(head)!r}") from None
    if len(nums) == 1:
        folds, n = 1, nums[0]
    elif len(nums) == 2:
        folds, n = nums
    else:
        raise DatasetError(f"{path}:{head_no}: header must hold one or two numbers, got {' '.join(head)!r}")
    if folds < 1 or n < 1:  # a header alone ("10 0"): no pairs to score, never an empty table
        raise DatasetError(f"{path}:{head_no}: header {' '.join(head)!r} promises no pairs; a pairs file needs at "
                           "least one fold of one same-person and one different-person pair (View 2: '10 300')")
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise DatasetError(f"{path}: header promises {folds} fold(s) x {2 * n} pairs = {folds * 2 * n} lines, "
                           f"found {len(body)}")
    pairs = []
    for k, (line_no, t) in enumerate(body):
        fold, pos = divmod(k, 2 * n)
        same = pos < n
        try:
            if same and len(t) == 3:
                pairs.append(Pair(fold, t[0], int(t[1]), t[0], int(t[2]), True))
            elif not same and len(t) == 4:
                pairs.append(Pair(fold, t[0], int(t[1]), t[2], int(t[3]), False))
            else:
                kind = "same-person 'name n1 n2'" if same else "different-person 'name1 n1 name2 n2'"
                raise DatasetError(f"{path}:{line_no}: expected a {kind} line in fold {fold + 1}, got {' '.join(t)!r}")
        except ValueError:
            raise DatasetError(f"{path}:{line_no}: image numbers must be integers, got {' '.join(t)!r}") from None
    return pairs


def image_path(root: Path, name: str, n: int, ext: str = ".jpg") -> Path:
    return Path(root) / name / f"{name}_{n:04d}{ext}"


MISSING_POLICIES = ("error", "wrong")


def pair_paths(pairs: Sequence[Pair], root: str | os.PathLike, ext: str = ".jpg",
               missing: str | None = None) -> list[tuple[Path, Path]] | tuple[list[tuple[Path, Path]], np.ndarray]:
    """Map pairs to image paths under an (aligned) LFW folder. A missing image is an error listing them;
    with ``missing="wrong"`` the pairs are kept and a boolean mask of the pairs with a missing image is
    returned too (``(paths, mask)``; the protocol counts those pairs as wrong answers, never skips them).
    ``missing="error"`` also returns ``(paths, mask)``, the mask all False."""
    if missing is not None and missing not in MISSING_POLICIES:
        raise DatasetError(f"missing-image policy {missing!r} must be one of {MISSING_POLICIES}")
    root = Path(root)
    out = [(image_path(root, p.name1, p.n1, ext), image_path(root, p.name2, p.n2, ext)) for p in pairs]
    absent = np.array([not (a.is_file() and b.is_file()) for a, b in out], dtype=bool)
    if missing == "wrong":
        return out, absent
    gone = sorted({str(q) for (a, b), bad in zip(out, absent) if bad for q in (a, b) if not q.is_file()})
    if gone:
        shown = "\n  ".join(gone[:5])
        more = f"\n  ... and {len(gone) - 5} more" if len(gone) > 5 else ""
        raise DatasetError(f"{len(gone)} image(s) named by the pairs are missing under {root} "
                           f"(expected <name>/<name>_NNNN{ext}; were they dropped by alignment? Align with "
                           f"`--fallback centred`, or count such pairs as wrong with --missing-pairs wrong):"
                           f"\n  {shown}{more}")
    return out if missing is None else (out, absent)


def format_pairs(pairs: Sequence[Pair], folds: int, n: int) -> str:
    """Write pairs back in the file format (View 2 header when folds > 1)."""
    lines = [f"{folds}\t{n}" if folds > 1 else f"{n}"]
    for p in pairs:
        lines.append(f"{p.name1}\t{p.n1}\t{p.n2}" if p.same else f"{p.name1}\t{p.n1}\t{p.name2}\t{p.n2}")
    return "\n".join(lines) + "\n"
