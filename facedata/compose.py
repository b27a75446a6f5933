"""Compose one training set from several aligned face sets, audited against every evaluation set.

    python -m facedata.compose OUT --source fiw=data/fiw_aligned,min_images=2 \\
        --source celeba=data/celeba-img-align_aligned,key=celeba,min_images=2 [--seed 0] [--pack]

Each source is an aligned folder made by ``python -m facedata.prepare`` (its ``manifest.csv`` names the
original file of every crop). An image's identity is the folder its crop sits in, relative to the source
(``F0001/MID1`` in FIW, ``id02880`` in CelebA), namespaced by the source: ``fiw/F0001/MID1``. Per source:
identities with fewer than ``min_images`` crops are dropped, then at most ``max_identities`` are kept (a
seeded draw). Byte-identical crops are removed: one copy is kept when all copies carry one identity, none
when they carry several (the label is in doubt). Then :mod:`facedata.audit` checks every identity against
every evaluation set the project reports on and the flagged ones are dropped (``--keep-flagged`` keeps them,
and training then refuses the set unless told otherwise).

``OUT`` gets ``<source>__<identity parts joined by __>/<file>.jpg`` (hard links where possible; an
ImageFolder that the training engine reads like any folder) or, with ``--pack``, ``OUT/train.rec`` +
``train.idx``; and beside it ``compose.csv`` (identity, source, original identity, original file, crop,
sha256), ``compose.json`` (settings and counts per source after each step) and the audit's files. The set is
built in a hidden folder beside ``OUT`` and moved into place whole, so an interrupted run leaves nothing
half-made; the same command finds a finished set done.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .cli import command
from .errors import DatasetError, UsageError
from .io import write_bytes_atomic

KEY_KINDS = ("none", "name", "celeba")  # what an identity's name means: nothing, a person's name, a CelebA number
MANIFEST = "compose.csv"
SPEC = "compose.json"
SEP = "__"  # joins namespace and identity parts in folder names (identities keep their "/" in the manifest)


class ComposeError(DatasetError):
    """A composition that cannot be built as asked; the message names the source or value and what to do."""


@dataclass(frozen=True)
class Source:
    """One aligned face set to draw identities from."""

    name: str  # namespace: identities become "<name>/<identity>"
    root: Path  # an aligned folder with prepare's manifest.csv
    key: str = "none"  # KEY_KINDS: how the audit can match identities by key (names, CelebA numbers)
    min_images: int = 2  # a training identity needs >= 2 crops for a same-person pair
    max_identities: int | None = None  # None: every identity that passes min_images

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ComposeError(f"source name {self.name!r} must be letters, digits, '-' or '_' (it namespaces "
                               "identities, e.g. fiw/F0001/MID1)")
        if self.key not in KEY_KINDS:
            raise ComposeError(f"source {self.name}: key {self.key!r} must be one of {KEY_KINDS}")
        if not isinstance(self.min_images, int) or self.min_images < 1:
            raise ComposeError(f"source {self.name}: min_images {self.min_images!r} must be a whole number >= 1")
        if self.max_identities is not None and (not isinstance(self.max_identities, int) or self.max_identities < 1):
            raise ComposeError(f"source {self.name}: max_identities {self.max_identities!r} must be >= 1 or unset")


@dataclass(frozen=True)
class Item:
    """One crop of the composed set."""

    identity: str  # namespaced: "fiw/F0001/MID1"
    source: str
    original_identity: str  # as the source names it: "F0001/MID1"
    original_file: str  # the photo it was cut from, relative to the folder the source was aligned from
    path: Path  # the aligned crop
    sha256: str

    @property
    def folder(self) -> str:
        """The composed set's folder for this identity (one level, as the training engine reads folders)."""
        return SEP.join(self.identity.split("/"))


@dataclass
class Composition:
    items: list[Item]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> step -> identities / images
    duplicates: dict[str, int] = field(default_factory=dict)


def original_identity(folder: str) -> str:
    """A composed set's folder back to the identity its source named (``celeba__id07203`` -> ``id07203``,
    ``fiw__F0001__MID1`` -> ``F0001/MID1``); any other name unchanged."""
    return "/".join(folder.split(SEP)[1:]) if SEP in folder else folder


def parse_source(text: str) -> Source:
    """``NAME=DIR[,key=KIND][,min_images=N][,max_identities=N]`` (the command line's --source)."""
    head, *opts = text.split(",")
    if "=" not in head:
        raise ComposeError(f"--source {text!r}: expected NAME=DIR[,key=none|name|celeba][,min_images=N]"
                           "[,max_identities=N]")
    name, root = head.split("=", 1)
    kw: dict = {}
    for opt in opts:
        k, _, v = opt.partition("=")
        if k == "key":
            kw[k] = v
        elif k in ("min_images", "max_identities"):
            try:
                kw[k] = int(v)
            except ValueError:
                raise ComposeError(f"--source {text!r}: {k} must be a whole number, got {v!r}") from None
        else:
            raise ComposeError(f"--source {text!r}: unknown option {k!r} (valid: key, min_images, max_identities)")
    return Source(name=name, root=Path(root), **kw)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_source(src: Source) -> list[Item]:
    """Every aligned crop of a source with its identity, from its prepare manifest (checked by check_sources)."""
    from .prepare import MANIFEST_NAME, read_manifest

    manifest = src.root / MANIFEST_NAME
    items = []
    for row in read_manifest(manifest).values():
        if row.get("status") != "ok":
            continue
        crop = src.root / row["output"]
        if not crop.is_file():
            raise ComposeError(f"source {src.name}: {crop} is listed in {manifest} but missing; run the same prepare "
                               "command again to redo it")
        ident = Path(row["output"]).parent.as_posix()
        if ident in ("", "."):
            raise ComposeError(f"source {src.name}: {crop} is not inside an identity folder (expected "
                               "<identity>/<image>)")
        items.append(Item(f"{src.name}/{ident}", src.name, ident, row["source"], crop, _sha256(crop)))
    if not items:
        raise ComposeError(f"source {src.name}: {manifest} lists no aligned crop")
    return sorted(items, key=lambda it: (it.identity, it.path.name))


def _count(items: Iterable[Item]) -> dict[str, int]:
    items = list(items)
    return {"identities": len({it.identity for it in items}), "images": len(items)}


def drop_duplicates(items: Sequence[Item]) -> tuple[list[Item], dict[str, int]]:
    """Byte-identical crops: keep the first copy when every copy has one identity, none when they disagree."""
    by_hash: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_hash[it.sha256].append(it)
    keep, same_identity, conflicting = set(), 0, 0
    for group in by_hash.values():
        if len({it.identity for it in group}) == 1:
            keep.add(id(group[0]))
            same_identity += len(group) - 1
        else:
            conflicting += len(group)
    return [it for it in items if id(it) in keep], {"removed_copies_same_identity": same_identity,
                                                     "removed_conflicting_identity": conflicting}


def select_identities(items: Sequence[Item], src: Source, seed: int) -> list[Item]:
    """``min_images`` per identity, then at most ``max_identities`` drawn with ``seed`` (sorted first, so the
    draw depends on the seed and the data alone, not on file-system order)."""
    per: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        per[it.identity].append(it)
    eligible = sorted(k for k, v in per.items() if len(v) >= src.min_images)
    if src.max_identities is not None and len(eligible) > src.max_identities:
        rng = np.random.default_rng([seed, int(hashlib.sha256(src.name.encode()).hexdigest()[:8], 16)])
        eligible = sorted(rng.choice(eligible, src.max_identities, replace=False).tolist())
    return [it for k in eligible for it in per[k]]


def check_sources(sources: Sequence[Source]) -> None:
    """What can be wrong with the sources themselves, found before anything is read or loaded."""
    names = [s.name for s in sources]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ComposeError(f"two sources share the namespace {dup[0]!r}; give each --source its own NAME")
    roots = [s.root.resolve() for s in sources]
    if len(set(roots)) != len(roots):
        raise ComposeError("two sources name the same folder; each folder is one source")
    if not sources:
        raise ComposeError("no --source given; pass at least one NAME=ALIGNED_DIR")
    from .prepare import MANIFEST_NAME

    for s in sources:
        if not s.root.is_dir():
            raise ComposeError(f"source {s.name}: {s.root} not found; align the set first (python -m facedata.prepare "
                               f"RAW_FOLDER {s.root})")
        if not (s.root / MANIFEST_NAME).is_file():
            raise ComposeError(f"source {s.name}: {s.root} has no {MANIFEST_NAME}: not a folder made by "
                               "`python -m facedata.prepare` (its manifest names each crop's original file)")


def compose(sources: Sequence[Source], seed: int = 0) -> Composition:
    """The candidate set: every source read, duplicates removed, filters applied (no audit yet)."""
    check_sources(sources)
    read = {s.name: read_source(s) for s in sources}
    counts = {s.name: {"read": _count(read[s.name])} for s in sources}
    every = [it for s in sources for it in read[s.name]]
    unique, dup_counts = drop_duplicates(every)
    kept: list[Item] = []
    for s in sources:
        mine = [it for it in unique if it.source == s.name]
        counts[s.name]["after_duplicates"] = _count(mine)
        chosen = select_identities(mine, s, seed)
        counts[s.name]["after_filters"] = _count(chosen)
        kept += chosen
    folders = Counter(it.folder for it in {it.identity: it for it in kept}.values())
    clash = [f for f, n in folders.items() if n > 1]
    if clash:
        raise ComposeError(f"identities {clash[:3]} map to one folder name; rename a source")
    return Composition(kept, counts, dup_counts)


def _write_manifest(items: Sequence[Item], out: Path, crop_of: dict[int, str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["identity", "source", "original_identity", "original_file", "crop", "sha256"])
    for it in items:
        w.writerow([it.identity, it.source, it.original_identity, it.original_file, crop_of[id(it)], it.sha256])
    write_bytes_atomic(buf.getvalue().encode("utf-8"), out / MANIFEST)


def write_set(items: Sequence[Item], work: Path, pack: bool) -> None:
    """The crops as an ImageFolder (``work/<folder>/<file>``) or a ``.rec`` pack, and compose.csv."""
    from .fetch import link_file

    crop_of = {}
    folder = work / "images" if pack else work
    for it in items:
        rel = Path(it.folder) / it.path.name
        link_file(it.path, folder / rel)
        crop_of[id(it)] = rel.as_posix()
    if pack:
        from .pack import write_pack

        write_pack(folder, work / "train.rec")
        shutil.rmtree(folder)
    _write_manifest(items, work, crop_of)


def spec_of(sources: Sequence[Source], seed: int, pack: bool, keep_flagged: bool) -> dict:
    """The settings a composed set is made with (compared on a second run)."""
    return {"sources": [{**asdict(s), "root": str(s.root.resolve())} for s in sources], "seed": seed, "pack": pack,
            "keep_flagged": keep_flagged}


def build(out: Path, sources: Sequence[Source], eval_sets: Sequence, embedder, seed: int = 0, pack: bool = False,
          keep_flagged: bool = False, cache_dir: Path | None = None, max_false_flag_rate: float | None = None,
          progress: bool = True) -> dict:
    """Compose, audit against ``eval_sets`` (facedata.audit.EvalSet) with ``embedder`` (the reference model of
    the face check) and write the set into ``out`` (see the module docstring); returns compose.json's content."""
    from . import audit as audit_mod
    from .fetch import staging
    from .io import check_output_folder
    from .io import folder_lock

    out = Path(out)
    spec = spec_of(sources, seed, pack, keep_flagged)
    spec["audit"] = {"eval_sets": [e.name for e in eval_sets], "reference": embedder.name,
                     "max_false_flag_rate": max_false_flag_rate}
    if (out / SPEC).is_file():
        done = json.loads((out / SPEC).read_text())
        if done.get("spec") == spec:
            return done
        raise ComposeError(f"{out} already holds a set composed with other settings; use another folder (a "
                           "composed set is never changed in place: checkpoints name it)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ComposeError(f"{out} exists and is not a composed set; choose a new folder (nothing there is touched)")
    check_output_folder(out.parent, "output folder's parent")
    out.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(out.parent, f"used by a compose run (into {out.name})", lock_name=f".{out.name}.lock"):
        comp = compose(sources, seed)
        rate = {} if max_false_flag_rate is None else {"max_false_flag_rate": max_false_flag_rate}
        report = audit_mod.audit(comp.items, {s.name: s.key for s in sources}, eval_sets, embedder, cache_dir,
                                 progress=progress, **rate)
        flagged = report.flagged_identities()
        kept = comp.items if keep_flagged else [it for it in comp.items if it.identity not in flagged]
        for s in sources:
            comp.counts[s.name]["after_audit"] = _count(it for it in kept if it.source == s.name)
        with staging(out) as tmp:  # built beside OUT, moved in whole
            work = tmp / "set"
            work.mkdir()
            write_set(kept, work, pack)
            report.write(work, remaining=None if not keep_flagged else flagged)
            result = {"spec": spec, "counts": comp.counts, "duplicates": comp.duplicates,
                      "identities": len({it.identity for it in kept}), "images": len(kept),
                      "audit": report.summary(kept_flagged=keep_flagged)}
            write_bytes_atomic(json.dumps(result, indent=1).encode(), work / SPEC)
            if out.exists():
                out.rmdir()  # an empty folder the user made for it
            os.replace(work, out)
    return result


def format_counts(result: dict) -> str:
    """The per-source table of identities / images after each step (markdown)."""
    steps = ("read", "after_duplicates", "after_filters", "after_audit")
    lines = ["| source | " + " | ".join(steps) + " |", "|---|" + "---|" * len(steps)]
    for name, c in result["counts"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{c[s]['identities']:,} / {c[s]['images']:,}" if s in c else "-" for s in steps) + " |")
    lines.append(f"| **all** | | | | {result['identities']:,} / {result['images']:,} |")
    return "\n".join(lines) + "\n\n(identities / images)"


def _reference(name: str, registry: dict):
    """The audit's reference model; a missing or broken weights file is a ComposeError saying what to do."""
    from models_definition.zoo import load_model

    from .cli import error_message
    from .errors import FaceKitError

    try:  # a missing or broken weights file; anything else is a bug and keeps its traceback
        return load_model(name, registry, device="cpu")
    except (FaceKitError, OSError) as exc:
        msg = error_message(exc)
        raise ComposeError(f"the audit's reference model {name!r} cannot be loaded ({msg}); the face check needs it: "
                           "install the requirements (`make venv`), or pass --reference with another model") from None


@command("python -m facedata.compose", interrupted="nothing was put in place; embeddings already computed are cached, "
         "so the same command goes on faster")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m facedata.compose", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, nargs="?", default=None,
                   help="new folder for the composed set (default config.COMPOSED, data/composed)")
    p.add_argument("--source", action="append", default=[], metavar="NAME=DIR[,key=K][,min_images=N][,max_identities=N]",
                   help="an aligned source (repeat); key: none (FIW), celeba (CelebA identity numbers), name (people's "
                        "names, as in LFW or CFP). Default: config.COMPOSE_SOURCES (FIW and CelebA's aligned photos)")
    p.add_argument("--seed", type=int, default=0, help="the draw of --source max_identities")
    p.add_argument("--pack", action="store_true", help="write an insightface train.rec/.idx instead of a folder")
    p.add_argument("--keep-flagged", action="store_true",
                   help="keep identities the audit flags (training then refuses the set unless allow_overlap)")
    p.add_argument("--reference", default="sface", help="the face check's model, a name in config.MODELS (sface)")
    p.add_argument("--max-false-flag-rate", type=float, default=None,
                   help="per identity pair known to differ (default facedata.audit.DEFAULT_MAX_FALSE_FLAG_RATE)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from . import audit as audit_mod
    import config as cfg  # the script layer: evaluation roots and models by name
    args.out = args.out or cfg.COMPOSED
    sources = [parse_source(s) for s in (args.source or cfg.COMPOSE_SOURCES)]
    check_sources(sources)  # the user's own mistakes first, before the evaluation sets and the model
    if args.max_false_flag_rate is not None and not 0 < args.max_false_flag_rate < 1:
        raise UsageError(f"--max-false-flag-rate {args.max_false_flag_rate} must lie in (0, 1)")
    if args.seed < 0:  # numpy's generator takes no negative seed
        raise UsageError(f"--seed {args.seed}: must be a whole number >= 0")
    eval_sets = audit_mod.project_eval_sets(cfg)
    embedder = _reference(args.reference, cfg.MODELS)
    result = build(args.out, sources, eval_sets, embedder, args.seed, args.pack, args.keep_flagged,
                   cfg.DATA_DIR / "cache" / "embeddings", args.max_false_flag_rate, progress=not args.no_progress)
    print(format_counts(result))
    print(f"\n{args.out}: {result['identities']:,} identities, {result['images']:,} images; audit: "
          f"{result['audit']['flagged_identities']} identities flagged"
          f"{' and kept (--keep-flagged)' if args.keep_flagged else ' and dropped'}; see {args.out / 'audit.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
