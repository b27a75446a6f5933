"""Benchmark data: LFW and CFP (downloaded, or a local copy), FIW and CelebA's aligned photos (a local copy),
and the CelebA subset (rebuilt from a user's CelebA).

    python -m facedata.fetch lfw                         # download lfw-deepfunneled.tgz + protocol files
    python -m facedata.fetch lfw --from /copy/of/lfw     # a folder (or the .tgz) you already have
    python -m facedata.fetch cfp                         # download cfp-dataset.zip (or --from the zip / folder)
    python -m facedata.fetch fiw --from /kaggle/recognizing-faces-in-the-wild    # train/ + train_relationships.csv
    python -m facedata.fetch celeba-aligned --from /data/CelebA/img_align_celeba --identities identity_CelebA.txt
    python -m facedata.fetch celeba-subset --from /data/CelebA/img_celeba      # rebuild the crops
    python -m facedata.fetch celeba-subset --from /copy/of/celeba-subset       # or copy built crops

``--from`` takes a folder or a .zip / .tar archive. Every set is checked before it is put in place (built in a
temporary folder beside ``DEST``, hard-linked where possible, moved in once complete); a second run finds it
done. ``DEST`` is only ever replaced when a fetch made it (it holds ``.fetched``, written last): a ``DEST``
with other files is refused and left as it is.

LFW lands in ``DEST`` (default ``config.LFW_ROOT``, ``data/lfw``) as the official layout:
``lfw-deepfunneled/<name>/<name>_NNNN.jpg`` and the protocol files (``pairs.txt`` = View 2,
``pairsDevTrain.txt`` / ``pairsDevTest.txt`` = View 1, ``people*.txt``, ``lfw-names.txt``). It is checked
for every person and image count of ``lfw-names.txt``, 13,233 images of 5,749 people, and every image the
pair files name.

CFP (``config.CFP_ROOT``): the official flat layout ``Data/Images/NNN/{frontal,profile}/NN.jpg`` (a copy split
into ``train/`` / ``test/`` is flattened), fiducials, ``Protocol/``, and ``face_boxes.csv`` from the fiducials
(see ``facedata.cfp``). FIW (``config.FIW_ROOT``): ``train/F####/MID#/*.jpg`` and ``train_relationships.csv``
(``facedata.fiw``). CelebA aligned (``config.CELEBA_IMG_ALIGN_ROOT``): ``id%05d/NNNNNN.jpg`` by
``identity_CelebA.txt``, a partial copy accepted (``facedata.celeba_aligned``).

The CelebA subset (239 identities) is defined by ``facedata/data/celeba_subset.csv``: identity, CelebA
``img_celeba`` file name, face box in that photo (the largest MTCNN face). Each crop is the box grown to
a square 2.2x its longer side around its centre (as LFW was cut), black outside the photo, resized to
250x250 (bicubic) and saved as JPEG quality 85.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .cli import command
from .errors import DatasetError, ImageReadError
from .io import atomic_output, check_output_folder

LFW_BASE_URLS = ("http://vis-www.cs.umass.edu/lfw/",)  # the LFW maintainers' site (UMass Amherst)
LFW_ARCHIVE = "lfw-deepfunneled.tgz"
LFW_IMAGES = "lfw-deepfunneled"
LFW_PROTOCOL_FILES = ("pairs.txt", "people.txt", "pairsDevTrain.txt", "pairsDevTest.txt", "peopleDevTrain.txt",
                      "peopleDevTest.txt", "lfw-names.txt")
LFW_PEOPLE, LFW_TOTAL_IMAGES = 5749, 13233  # the published counts
CELEBA_SUBSET_CSV = Path(__file__).resolve().parent / "data" / "celeba_subset.csv"
CELEBA_CROP_PX, CELEBA_GROW, CELEBA_JPEG_QUALITY = 250, 2.2, 85
FETCHED_MARK = ".fetched"  # written last into a folder fetch built: only such a folder is ever replaced


class FetchError(DatasetError):
    """Benchmark data that cannot be fetched, found or checked; the message says what to do."""


@dataclass(frozen=True)
class Fetched:
    """A checked copy in ``dest``: its counts, and whether an earlier run had already put it there."""

    dest: Path
    counts: dict[str, int]
    already: bool


# --- LFW ------------------------------------------------------------------------------------------------------
def check_lfw(root: Path) -> dict[str, int]:
    """Raise FetchError unless ``root`` holds a complete deep-funneled LFW with its protocol files."""
    from .lfw import pair_paths, parse_pairs

    root = Path(root)
    missing = [f for f in LFW_PROTOCOL_FILES if not (root / f).is_file()]
    if not (root / LFW_IMAGES).is_dir():
        missing.insert(0, LFW_IMAGES + "/")
    if missing:
        raise FetchError(f"{root}: not an LFW copy: missing {', '.join(missing)} (expected the official layout: "
                         f"{LFW_IMAGES}/<name>/<name>_NNNN.jpg and {', '.join(LFW_PROTOCOL_FILES)})")
    expected: dict[str, int] = {}
    for n, line in enumerate((root / "lfw-names.txt").read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise FetchError(f"{root / 'lfw-names.txt'}:{n}: expected 'name count', got {line!r}")
        expected[parts[0]] = int(parts[1])
    images = root / LFW_IMAGES
    found = {d.name: sum(1 for f in d.iterdir() if f.suffix.lower() == ".jpg") for d in images.iterdir() if d.is_dir()}
    wrong = [f"{k}: {found.get(k, 0)} of {v}" for k, v in sorted(expected.items()) if found.get(k, 0) != v]
    if wrong:
        raise FetchError(f"{images}: {len(wrong)} people do not have the images lfw-names.txt lists "
                         f"({'; '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}); the copy is incomplete: "
                         "fetch it again")
    total = sum(expected.values())
    if (len(expected), total) != (LFW_PEOPLE, LFW_TOTAL_IMAGES):
        raise FetchError(f"{root}: {len(expected)} people and {total} images, not LFW's {LFW_PEOPLE} and "
                         f"{LFW_TOTAL_IMAGES}: not the official deep-funneled LFW")
    for name in ("pairs.txt", "pairsDevTrain.txt", "pairsDevTest.txt"):
        try:
            pair_paths(parse_pairs(root / name), images)
        except DatasetError as exc:
            raise FetchError(f"{root / name}: {exc}") from None
    return {"people": len(expected), "images": total}


def _download(url: str, target: Path) -> None:
    """Stream ``url`` to ``target`` through a temporary file (a broken download never looks complete)."""
    import requests

    with atomic_output(target, suffix=".part") as tmp, open(tmp, "wb") as fh, \
            requests.get(url, stream=True, timeout=60) as r:
        r.raise_for_status()
        for chunk in r.iter_content(1 << 20):
            fh.write(chunk)


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract a .tgz refusing absolute paths, '..' and links (an archive may not write outside ``dest``)."""
    try:
        with tarfile.open(archive, "r:*") as tf:
            for m in tf.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise FetchError(f"{archive}: refusing member {m.name!r} (absolute, '..' or a link)")
            tf.extractall(dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(f"{archive}: not a readable .tgz archive ({exc}); download it again") from None


def _lfw_source(src: Path, work: Path) -> Path:
    """The folder holding lfw-deepfunneled/ and the protocol files: ``src`` itself, or extracted from a .tgz
    (``src`` the archive, or a folder holding it beside the protocol files)."""
    if src.is_file():
        archive, folder = src, src.parent
    elif (src / LFW_IMAGES).is_dir():
        return src
    elif (src / LFW_ARCHIVE).is_file():
        archive, folder = src / LFW_ARCHIVE, src
    elif src.is_dir():
        raise FetchError(f"{src}: not an LFW copy: neither {LFW_IMAGES}/ nor {LFW_ARCHIVE} inside")
    else:
        raise FetchError(f"{src}: not found; pass the folder holding {LFW_IMAGES}/ (or {LFW_ARCHIVE}) and pairs.txt")
    _safe_extract(archive, work)
    for f in LFW_PROTOCOL_FILES:
        if (folder / f).is_file():
            shutil.copy2(folder / f, work / f)
    return work


def shown(items: list[str], n: int = 5) -> str:
    """The first ``n`` of a list for an error message, with the count when there are more."""
    return ", ".join(items[:n]) + (f" ... ({len(items)} in all)" if len(items) > n else "")


def link_file(src: Path, dst: Path) -> None:
    """A hard link where the file system allows (no second copy of a dataset), else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard links where the file system allows (no second 160 MB), else copies."""
    for root, dirs, files in os.walk(src):
        out = dst / Path(root).relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            link_file(Path(root, f), out / f)


# --- putting a checked copy in place (shared by every data set) ----------------------------------------------
def extract_archive(archive: Path, dest: Path) -> None:
    """Extract a .zip or a tar archive (.tar, .tgz, .tar.gz, ...) into ``dest``, refusing members that would
    land outside it (absolute, '..') and links."""
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                for m in zf.infolist():
                    p = Path(m.filename)
                    if p.is_absolute() or ".." in p.parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                        raise FetchError(f"{archive}: refusing member {m.filename!r} (absolute, '..' or a link)")
                zf.extractall(dest)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise FetchError(f"{archive}: not a readable .zip archive ({exc}); get it again") from None
    elif tarfile.is_tarfile(archive):
        _safe_extract(archive, dest)
    else:
        raise FetchError(f"{archive}: neither a folder nor a .zip / .tar archive; pass the unpacked folder or "
                         "the archive as published")


def source_folder(source: Path, work: Path) -> Path:
    """``source`` itself when it is a folder; an archive is extracted into ``work`` (beside DEST)."""
    source = Path(source)
    if source.is_dir():
        return source
    if not source.exists():
        raise FetchError(f"{source}: not found; pass the folder (or the .zip / .tar archive) you downloaded")
    work.mkdir(parents=True, exist_ok=True)
    extract_archive(source, work)
    return work


def find_root(folder: Path, is_root: Callable[[Path], bool], depth: int = 2) -> Path | None:
    """``folder`` or the first folder below it (at most ``depth`` levels, name order) for which ``is_root``
    holds: an archive or a download often wraps the data set in one or two folders."""
    if is_root(folder):
        return folder
    if depth == 0:
        return None
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))):
        found = find_root(sub, is_root, depth - 1)
        if found is not None:
            return found
    return None


def check_dest(dest: Path) -> None:
    """Refuse a DEST that fetch may not replace: one holding files a fetch did not put there (no
    FETCHED_MARK). Absent, empty or fetched: fine; absent, it must be a path a folder can be made at (not
    under a file such as /dev/null, in a place this user can write)."""
    if not os.path.lexists(dest):
        check_output_folder(dest, "--dest")
        return
    if not dest.is_dir():
        raise FetchError(f"{dest}: is a file, not a folder; pass another --dest")
    if (dest / FETCHED_MARK).is_file():
        listed = _fetched_files(dest)
        if listed is None:
            return  # marked before fetch listed its files
        extra = sorted(str(p.relative_to(dest)) for p in dest.rglob("*")
                       if p.is_file() and p.name != FETCHED_MARK and str(p.relative_to(dest)) not in listed)
        if extra:
            raise FetchError(f"{dest}: holds {len(extra)} files fetch did not put there ({shown(extra)}); fetch never "
                             "deletes or replaces them: move them away, or pass another --dest")
        return
    inside = sorted(p.name for p in dest.iterdir())
    if inside:
        raise FetchError(f"{dest}: exists and holds files fetch did not put there ({shown(inside)}); fetch never "
                         "deletes or replaces them: move them away, or pass another --dest")


def _fetched_files(dest: Path) -> set[str] | None:
    """The files a fetch put in ``dest`` (its FETCHED_MARK lists them); None for a mark without the list."""
    try:
        listed = json.loads((dest / FETCHED_MARK).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return set()  # an unreadable mark protects everything: nothing is known to be fetch's
    return None if listed is None else set(listed)


def place(staged: Path, dest: Path, meta: dict) -> None:
    """Move a built, checked ``staged`` folder (a sibling of ``dest``) into place: FETCHED_MARK is written
    last, so a folder fetch built is known as such. ``dest`` is replaced only if absent, empty or fetched."""
    check_dest(dest)  # again: the user may have put something there meanwhile
    files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    (staged / FETCHED_MARK).write_text(json.dumps({**meta, "files": files}, indent=1, default=str) + "\n")
    if dest.exists():
        if (dest / FETCHED_MARK).is_file():
            os.replace(dest, staged.parent / "replaced")  # deleted with the staging folder
        else:
            dest.rmdir()  # empty (check_dest); rmdir fails rather than delete anything
    os.replace(staged, dest)


@contextmanager
def staging(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` (same file system: hard links and an atomic rename), removed after."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        yield Path(tmp)


def download_first(what: str, name: str, base_urls: Iterable[str], target: Path, offline: str) -> Path:
    """``target`` (kept from an earlier run) or ``name`` downloaded from the first of ``base_urls`` that
    answers; none: FetchError "cannot download ``what``" listing the tries, then ``offline`` (what to do)."""
    if target.exists():
        return target
    errors = []
    for base in base_urls:
        try:
            _download(base + name, target)
            return target
        except Exception as exc:  # network down, 404, ...: try the next mirror, then explain
            errors.append(f"{base + name}: {type(exc).__name__}")
    raise FetchError(f"cannot download {what} ({'; '.join(errors)}). {offline}")


def fetch_lfw(dest: Path, source: Path | None = None, base_urls: Iterable[str] = LFW_BASE_URLS) -> dict[str, int]:
    """Put a checked LFW into ``dest``: from ``source`` (folder or .tgz) or downloaded. Idempotent. A ``dest``
    holding files fetch did not put there is refused, never replaced."""
    dest = Path(dest)
    try:
        return check_lfw(dest)  # already there and complete
    except FetchError:
        pass  # absent or incomplete: built afresh beside it and swapped in once checked
    check_dest(dest)  # before any download: a user's folder is never replaced
    with staging(dest) as tmp:
        work = tmp / "new"
        work.mkdir()
        if source is None:
            downloads = dest.parent / "downloads"
            names = (LFW_ARCHIVE,) + LFW_PROTOCOL_FILES
            for name in names:
                download_first("LFW", name, base_urls, downloads / name,
                               f"Offline? Fetch {', '.join(names)} from {' or '.join(base_urls)} on a connected "
                               f"machine, put them in one folder, and run "
                               f"`python -m facedata.fetch lfw --from THAT_FOLDER`")
            source = downloads
        src = _lfw_source(Path(source), work / "extracted")
        try:
            check_lfw(src)  # the user's copy named in any error, not the staging folder
        except FetchError as exc:
            raise FetchError(str(exc).replace(str(src), str(source))) from None
        staged = tmp / "lfw"
        staged.mkdir()
        _copy_tree(src / LFW_IMAGES, staged / LFW_IMAGES)
        for f in LFW_PROTOCOL_FILES + ("README.txt",):
            if (src / f).is_file():
                shutil.copy2(src / f, staged / f)
        counts = check_lfw(staged)  # never put an incomplete copy in place
        place(staged, dest, {"dataset": "lfw", "source": str(source), "counts": counts})
    return counts


# --- CelebA subset ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubsetFace:
    identity: str
    source_file: str
    box: tuple[float, float, float, float]  # x1 y1 x2 y2 in the CelebA photo

    @property
    def crop_name(self) -> Path:
        return Path(self.identity) / (Path(self.source_file).stem + ".jpg")


def read_subset(path: Path = CELEBA_SUBSET_CSV) -> list[SubsetFace]:
    """The subset's faces with a crop (``status == ok``); errors name the file and row."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            if row.get("status") != "ok":
                continue
            try:
                box = tuple(float(v) for v in row["face_box_xyxy_in_source"].split())
                if len(box) != 4:
                    raise ValueError
            except (ValueError, KeyError, AttributeError):
                raise FetchError(f"{path}:{n}: expected identity, source_file, 'x1 y1 x2 y2', status") from None
            out.append(SubsetFace(row["identity"], row["source_file"], box))  # type: ignore[arg-type]
    return out


def lfw_style_crop(rgb, box: tuple[float, float, float, float], size: int = CELEBA_CROP_PX, grow: float = CELEBA_GROW):
    """The square ``grow`` x the box's longer side around its centre, black outside the image, resized."""
    import numpy as np
    from PIL import Image

    x1, y1, x2, y2 = box
    side = grow * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    img = Image.fromarray(np.asarray(rgb, np.uint8)).crop((left, top, left + s, top + s))  # pads with black
    return np.asarray(img.resize((size, size), Image.BICUBIC))


def _missing_report(missing: list[Path], where: Path, what: str) -> FetchError:
    shown = ", ".join(str(m) for m in missing[:5])
    return FetchError(f"{where}: {len(missing)} {what} of the CelebA subset are missing ({shown}"
                      f"{' ...' if len(missing) > 5 else ''}); the subset needs all of them")


def fetch_celeba_subset(dest: Path, source: Path, subset: Path = CELEBA_SUBSET_CSV) -> int:
    """Build the subset's crops in ``dest`` from ``source``: a CelebA ``img_celeba`` folder (crops are cut
    from the photos) or a folder of built crops (``<identity>/<file>.jpg``, copied). Returns the crop count."""
    from .io import load_image, save_image_atomic

    dest, source = Path(dest), Path(source)
    faces = read_subset(subset)
    if not source.is_dir():
        raise FetchError(f"{source}: not found; pass CelebA's img_celeba folder or a built celeba-subset folder")
    built = (source / faces[0].identity).is_dir()
    need = [f.crop_name if built else Path(f.source_file) for f in faces]
    missing = [n for n in need if not (source / n).is_file()]
    if missing:
        raise _missing_report(missing, source, "crops" if built else "img_celeba photos")
    done = [f for f in faces if (dest / f.crop_name).is_file()]
    todo = [f for f in faces if not (dest / f.crop_name).is_file()]
    if todo:  # a complete copy may lie where nothing can be written
        check_output_folder(dest, "--dest")
    for f in todo:  # crops are written atomically: an interrupted run resumes with the rest
        target = dest / f.crop_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if built:  # a built crop is checked like a cut one: it must decode, at the subset's size
            crop = source / f.crop_name
            try:
                shape = load_image(crop).shape
            except ImageReadError as exc:
                raise FetchError(f"{exc}; a crop of the CelebA subset must be a readable image: rebuild the subset "
                                 "from CelebA's img_celeba photos (--from /path/to/img_celeba)") from None
            if shape[:2] != (CELEBA_CROP_PX, CELEBA_CROP_PX):
                raise FetchError(f"{crop}: {shape[1]}x{shape[0]} pixels, not the subset's {CELEBA_CROP_PX}x"
                                 f"{CELEBA_CROP_PX} crops: pass a folder this fetch built, or CelebA's img_celeba")
            with atomic_output(target) as tmp:
                shutil.copyfile(crop, tmp)
        else:
            save_image_atomic(lfw_style_crop(load_image(source / f.source_file), f.box), target,
                              quality=CELEBA_JPEG_QUALITY)
    return len(done) + len(todo)


DATASETS = ("lfw", "cfp", "fiw", "celeba-aligned", "celeba-subset")
DEST_SETTINGS = {"lfw": "LFW_ROOT", "cfp": "CFP_ROOT", "fiw": "FIW_ROOT", "celeba-aligned": "CELEBA_IMG_ALIGN_ROOT",
                 "celeba-subset": "CELEBA_SUBSET_ROOT"}  # config.py names of each set's default --dest


def _report(dataset: str, r: Fetched) -> str:
    c, state = r.counts, "already in" if r.already else "ready in"
    if dataset == "cfp":
        return (f"CFP {state} {r.dest}: {c['people']} people, {c['images']} images ({c['frontal']} frontal, "
                f"{c['profile']} profile), {c['fiducials']} fiducial files; protocol checked: FF {c['ff_pairs']} "
                f"pairs, FP {c['fp_pairs']} pairs (10 folds x 350 same + 350 different); "
                f"{c['face_boxes']} face boxes in face_boxes.csv")
    if dataset == "fiw":
        return (f"FIW {state} {r.dest}: {c['families']} families, {c['people']} people, {c['images']} images; "
                f"{c['people_2plus']} people with >= 2 images, {c['people_5plus']} with >= 5"
                + (f", {c['people_no_images']} with none" if c["people_no_images"] else "")
                + f"; {c['relationships']} kin pairs in train_relationships.csv "
                f"({c['relationship_people_without_folder']} people named there have no folder); "
                f"{c['duplicate_images']} images are byte-identical copies of another (kept as published)")
    partial = f" (partial copy: {c['images']} of {c['published_images']} published images)" if c["partial"] else ""
    return f"CelebA aligned {state} {r.dest}: {c['images']} images of {c['identities']} identities{partial}"


@command("python -m facedata.fetch", interrupted="finished files are kept and nothing half-built is put in place: "
         "run the same command again")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m facedata.fetch", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--from", dest="source", type=Path, default=None,
                   help="a local copy, folder or .zip / .tar (lfw: also lfw-deepfunneled.tgz; celeba-subset: "
                        "img_celeba or built crops)")
    p.add_argument("--identities", type=Path, default=None,
                   help="celeba-aligned: CelebA's identity_CelebA.txt (default: one found in or beside --from)")
    p.add_argument("--dest", type=Path, default=None,
                   help="default: config." + " / config.".join(DEST_SETTINGS[d] for d in DATASETS))
    args = p.parse_args(argv)
    if args.identities is not None and args.dataset != "celeba-aligned":
        raise FetchError(f"--identities goes with celeba-aligned (CelebA's identity file), not {args.dataset}")
    if args.dest is None:
        import config  # the script layer: dataset roots (with their environment overrides)

        args.dest = getattr(config, DEST_SETTINGS[args.dataset])
    if args.dataset == "lfw":
        c = fetch_lfw(args.dest, args.source)
        print(f"LFW ready in {args.dest}: {c['people']} people, {c['images']} images, protocol files checked")
    elif args.dataset == "celeba-subset":
        if args.source is None:
            done = [f for f in read_subset() if (Path(args.dest) / f.crop_name).is_file()]
            if len(done) < len(read_subset()):  # built already: a second run needs no --from
                raise FetchError("the CelebA subset is rebuilt from your CelebA copy (no public download of the "
                                 "crops): pass --from /path/to/CelebA/img_celeba")
        n = fetch_celeba_subset(args.dest, args.source or args.dest)
        print(f"CelebA subset ready in {args.dest}: {n} crops")
    else:
        from .celeba_aligned import fetch_celeba_aligned
        from .cfp import fetch_cfp
        from .fiw import fetch_fiw

        r = fetch_cfp(args.dest, args.source) if args.dataset == "cfp" else \
            fetch_fiw(args.dest, args.source) if args.dataset == "fiw" else \
            fetch_celeba_aligned(args.dest, args.source, args.identities)
        print(_report(args.dataset, r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
