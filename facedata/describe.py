"""Describe a face folder: identities, images, and the splits a filter gives.

    python -m facedata.describe data/sample_aligned --min-images 2
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .cli import command
from .datasets import identity_disjoint_split, scan_face_folder, stratified_split
from .errors import UsageError
from .splits import DEFAULT_SPLIT_SEED


def describe(root: Path, min_images: int = 1, max_classes: int | None = None, seed: int = DEFAULT_SPLIT_SEED) -> str:
    folder = scan_face_folder(root, min_images_per_class=min_images, max_classes=max_classes)
    counts = np.bincount(folder.labels)
    lines = [
        f"{root}: {len(folder.classes)} identities with >= {min_images} images, {len(folder)} images",
        f"images per identity: min {counts.min()}, median {int(np.median(counts))}, max {counts.max()}",
        "most images: " + ", ".join(f"{folder.classes[i]} {counts[i]}" for i in np.argsort(-counts, kind="stable")[:5]),
    ]
    train, val, test = stratified_split(folder, (0.8, 0.1, 0.1), seed=seed)
    lines.append(f"stratified 80/10/10 (seed {seed}): {len(train)} / {len(val)} / {len(test)} images")
    multi = int((counts >= 2).sum())
    if multi >= 2:
        n_q = max(1, multi // 2)
        split = identity_disjoint_split(folder, n_query=n_q, n_distractor=min(n_q, len(counts) - n_q), seed=seed)
        lines.append(f"identity-disjoint (seed {seed}): query {len(split.query.labels)} images of {n_q} identities, "
                     f"distractor {len(split.distractor.labels)} images, train {len(split.train)} images")
    return "\n".join(lines)


@command("python -m facedata.describe")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m facedata.describe", description="Describe a face folder.")
    p.add_argument("root", type=Path)
    p.add_argument("--min-images", type=int, default=1, help="keep identities with at least this many images")
    p.add_argument("--max-classes", type=int, default=None, help="keep the N identities with most images")
    p.add_argument("--seed", type=int, default=DEFAULT_SPLIT_SEED)
    args = p.parse_args(argv)
    # checked here, where the options' names are known (the folder scan would blame its own parameters)
    for option, value in (("--min-images", args.min_images), ("--max-classes", args.max_classes)):
        if value is not None and value < 1:
            raise UsageError(f"{option} {value}: must be a whole number >= 1")
    if args.seed < 0:  # numpy's generator takes no negative seed
        raise UsageError(f"--seed {args.seed}: must be a whole number >= 0")
    print(describe(args.root, args.min_images, args.max_classes, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
