"""FIW (Families In the Wild; the RFIW / Kaggle "recognizing-faces-in-the-wild" training faces): the copy check.

Layout: ``train/F####/MID#/*.jpg`` (one folder per family, one per family member, 224x224 face crops) and
``train_relationships.csv`` (``p1,p2`` rows ``F####/MID#``: kin pairs). There is no direct public download
(Kaggle needs an account and the competition's rules accepted), so ``python -m facedata.fetch fiw`` takes a
user's copy with ``--from``: the folder holding train/ (or Kaggle's train.zip) and train_relationships.csv,
or the competition's .zip.
"""
from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from pathlib import Path

from .fetch import (Fetched, FetchError, check_dest, extract_archive, find_root, link_file, place, shown,
                    source_folder, staging)
from .io import is_image_file

FIW_KAGGLE = "https://www.kaggle.com/competitions/recognizing-faces-in-the-wild/data"
FIW_SITE = "https://web.northeastern.edu/smilelab/fiw/"  # the FIW / RFIW authors (Northeastern SMILE Lab)
RELATIONSHIPS = "train_relationships.csv"
_WHERE = (f"get the Kaggle competition \"recognizing-faces-in-the-wild\" data ({FIW_KAGGLE}: train.zip and "
          f"{RELATIONSHIPS}) or FIW from the RFIW site ({FIW_SITE})")


def _duplicates(files: list[Path]) -> int:
    """Files that are byte-identical copies of an earlier one (the published set has some)."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for f in files:
        by_size[f.stat().st_size].append(f)
    dup = 0
    for group in by_size.values():
        if len(group) > 1:  # only same-size files can be equal: most files are never read
            digests = [hashlib.sha1(f.read_bytes()).digest() for f in group]
            dup += len(digests) - len(set(digests))
    return dup


def check_fiw_parts(train: Path, relationships: Path) -> dict[str, int]:
    """The counts of a FIW copy given as its ``train`` folder and relationships file; FetchError naming the
    file (and line) for anything that is not FIW's layout."""
    try:
        return _check_fiw_parts(train, relationships)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FetchError(f"{relationships}: not a UTF-8 CSV 'p1,p2' ({exc}); take it from FIW's release again") from None


def _check_fiw_parts(train: Path, relationships: Path) -> dict[str, int]:
    if not train.is_dir():
        raise FetchError(f"{train}: not found; a FIW copy holds train/F####/MID#/*.jpg; {_WHERE}")
    if not relationships.is_file():
        raise FetchError(f"{relationships}: not found; the kin pairs come with the faces (the same download): "
                         f"pass the folder holding train/ and {RELATIONSHIPS}; {_WHERE}")
    families = sorted(p for p in train.iterdir() if not p.name.startswith("."))
    bad = [p.name for p in families if not (p.is_dir() and re.fullmatch(r"F\d{4}", p.name))]
    if bad:
        raise FetchError(f"{train}: {len(bad)} entries are not family folders F#### ({shown(bad)}); pass FIW's "
                         "train/ folder as published")
    if not families:
        raise FetchError(f"{train}: no family folders F####; {_WHERE}")
    people: dict[str, list[Path]] = {}
    for fam in families:
        for person in sorted(p for p in fam.iterdir() if not p.name.startswith(".")):
            if not (person.is_dir() and re.fullmatch(r"MID\d+", person.name)):
                raise FetchError(f"{person}: not a family member folder MID#; pass FIW's train/ folder as published")
            files = sorted(f for f in person.iterdir() if not f.name.startswith("."))
            other = [f.name for f in files if not (f.is_file() and is_image_file(f))]
            if other:
                raise FetchError(f"{person}: {len(other)} entries are not images ({shown(other)}); expected face "
                                 "crops *.jpg")
            people[f"{fam.name}/{person.name}"] = files
    rows, unknown = 0, set()
    with open(relationships, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["p1", "p2"]:
            raise FetchError(f"{relationships}:1: expected the header 'p1,p2', got {header}")
        for n, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != 2 or not all(re.fullmatch(r"F\d{4}/MID\d+", v.strip()) for v in row):
                raise FetchError(f"{relationships}:{n}: expected 'F####/MID#,F####/MID#', got {','.join(row)!r}")
            rows += 1
            unknown |= {v.strip() for v in row if v.strip() not in people}
    sizes = [len(f) for f in people.values()]
    return {"families": len(families), "people": len(people), "images": sum(sizes),
            "people_2plus": sum(s >= 2 for s in sizes), "people_5plus": sum(s >= 5 for s in sizes),
            "people_no_images": sum(s == 0 for s in sizes), "relationships": rows,
            "relationship_people_without_folder": len(unknown),
            "duplicate_images": _duplicates([f for fs in people.values() for f in fs])}


def check_fiw(root: str | Path) -> dict[str, int]:
    """Raise FetchError unless ``root`` holds FIW's train/F####/MID#/*.jpg and train_relationships.csv."""
    root = Path(root)
    return check_fiw_parts(root / "train", root / RELATIONSHIPS)


def _is_fiw_root(folder: Path) -> bool:
    return (folder / "train").is_dir() or (folder / "train.zip").is_file()


def fetch_fiw(dest: str | Path, source: str | Path | None = None) -> Fetched:
    """Put a checked FIW (train/ and train_relationships.csv) in ``dest`` from ``source``: a folder holding
    train/ (or Kaggle's train.zip) and the relationships file, or an archive of it. Idempotent; a ``dest``
    holding files fetch did not put there is refused."""
    dest = Path(dest)
    try:
        return Fetched(dest, check_fiw(dest), True)
    except FetchError:
        pass
    if source is None:
        raise FetchError(f"FIW has no direct download: {_WHERE}, then run `python -m facedata.fetch fiw --from "
                         "THAT_FOLDER` (the folder holding train/ or train.zip, and train_relationships.csv)")
    check_dest(dest)
    source = Path(source)
    with staging(dest) as tmp:
        extracted = tmp / "extracted"
        root = find_root(source_folder(source, extracted), _is_fiw_root)
        if root is None:
            raise FetchError(f"{source}: not a FIW copy: no train/ folder (or train.zip) inside; {_WHERE}")
        train = root / "train"
        if not train.is_dir():  # Kaggle's download: train.zip beside the csv
            extract_archive(root / "train.zip", tmp / "train_zip")
            found = find_root(tmp / "train_zip", lambda p: any(re.fullmatch(r"F\d{4}", c.name) for c in p.iterdir()
                                                               if c.is_dir()))
            if found is None:
                raise FetchError(f"{root / 'train.zip'}: no family folders F#### inside; {_WHERE}")
            train = found
        try:
            check_fiw_parts(train, root / RELATIONSHIPS)  # the user's copy named in any error
        except FetchError as exc:
            raise FetchError(str(exc).replace(str(extracted), str(source))) from None
        staged = tmp / "fiw"
        for f in sorted(train.glob("F*/MID*/*")):
            if not f.name.startswith("."):
                link_file(f, staged / "train" / f.relative_to(train))
        for person in train.glob("F*/MID*"):  # a member without images stays listed
            (staged / "train" / person.relative_to(train)).mkdir(parents=True, exist_ok=True)
        link_file(root / RELATIONSHIPS, staged / RELATIONSHIPS)
        counts = check_fiw(staged)
        place(staged, dest, {"dataset": "fiw", "source": str(source), "counts": counts})
    return Fetched(dest, counts, False)
