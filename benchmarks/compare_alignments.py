"""How far two alignments of one set put each photo's landmarks apart: photo by photo, the mean distance of the
five landmarks, in units of the eye distance (of the second alignment), over photos MTCNN found in both.

    python benchmarks/compare_alignments.py OLD_ALIGNED NEW_ALIGNED

E.g. CFP aligned without and with ``--pad 0.3`` (prepare into another folder to get the first).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from facedata.prepare import MANIFEST_NAME, read_manifest  # noqa: E402


def landmark_shift(old: Path, new: Path) -> np.ndarray:
    """Per photo found by plain MTCNN in both: mean landmark distance / the new alignment's eye distance."""
    a, b = read_manifest(old / MANIFEST_NAME), read_manifest(new / MANIFEST_NAME)
    out = []
    for src, ra in a.items():
        rb = b.get(src)
        if rb is None or ra["method"] != "mtcnn" or rb["method"] != "mtcnn":
            continue
        la = np.array(ra["landmarks"].split(), float).reshape(5, 2)
        lb = np.array(rb["landmarks"].split(), float).reshape(5, 2)
        out.append(np.linalg.norm(la - lb, axis=1).mean() / max(np.linalg.norm(lb[1] - lb[0]), 1.0))
    return np.array(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    args = p.parse_args()
    d = landmark_shift(args.old, args.new)
    if not len(d):
        sys.exit("error: no photo aligned by MTCNN in both folders; pass two prepare outputs of one set")
    row = {"photos": int(len(d)), "share moved > 0.1 eye distance": round(float((d > 0.1).mean()), 3),
           "share moved > 0.25 eye distance": round(float((d > 0.25).mean()), 3),
           "median (eye distances)": round(float(np.median(d)), 3)}
    print(row)
    print(record(f"compare_alignments_{args.new.name}", {"old": str(args.old), "new": str(args.new), **row}))


if __name__ == "__main__":
    main()
