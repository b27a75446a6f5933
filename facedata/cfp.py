"""CFP (Celebrities in Frontal-Profile, Sengupta et al., WACV 2016): the copy check, names, protocol splits
and face boxes from the published fiducial points.

Official layout (``cfp-dataset.zip`` from http://www.cfpw.io/)::

    Data/Images/NNN/{frontal,profile}/NN.jpg     500 people (001-500), 10 frontal + 4 profile each
    Data/Fiducials/NNN/{frontal,profile}/NN.txt  30 "x,y" lines per image, image pixels
    Data/list_name.txt                           line k = person k's name
    Protocol/Pair_list_F.txt, Pair_list_P.txt    "k ../Data/Images/NNN/frontal/NN.jpg" (5,000 / 2,000 lines)
    Protocol/Split/{FF,FP}/01..10/{same,diff}.txt  350 lines "i,j" each; FF: both indices into Pair_list_F,
                                                 FP: the first into Pair_list_F, the second into Pair_list_P

Some copies split the people into ``Data/Images/{train,test}/NNN``; :func:`check_cfp` accepts both,
``python -m facedata.fetch cfp`` writes the flat layout the pair lists name.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import NamedTuple

from .fetch import (FETCHED_MARK, Fetched, FetchError, check_dest, download_first, find_root, link_file, place,
                    shown, source_folder, staging)
from .io import write_bytes_atomic

CFP_PEOPLE, CFP_FRONTAL, CFP_PROFILE = 500, 10, 4
CFP_IMAGES = CFP_PEOPLE * (CFP_FRONTAL + CFP_PROFILE)  # 7,000
CFP_FOLDS, CFP_PAIRS_PER_FILE = 10, 350  # per fold: 350 same + 350 different pairs
CFP_KINDS = ("FF", "FP")  # frontal-frontal, frontal-profile
CFP_FIDUCIAL_POINTS = 30
CFP_BASE_URLS = ("http://www.cfpw.io/",)  # the authors' site (University of Maryland)
CFP_ARCHIVE = "cfp-dataset.zip"
IMAGES, FIDUCIALS, NAMES = Path("Data/Images"), Path("Data/Fiducials"), Path("Data/list_name.txt")
PAIR_LISTS = {"F": Path("Protocol/Pair_list_F.txt"), "P": Path("Protocol/Pair_list_P.txt")}
SPLIT = Path("Protocol/Split")
FACE_BOXES = "face_boxes.csv"
_AGAIN = (f"the copy is incomplete: get {CFP_ARCHIVE} again from {CFP_BASE_URLS[0]} (or pass a complete copy "
          "with --from)")


class CfpPair(NamedTuple):
    fold: int  # 0..9 for the split folders 01..10
    path1: str  # relative to Data/Images, e.g. 001/frontal/01.jpg
    path2: str
    same: bool


def expected_images() -> list[str]:
    """Every image of the dataset, relative to Data/Images (``001/frontal/01.jpg`` ...), in person order."""
    return [f"{p:03d}/{view}/{n:02d}.jpg" for p in range(1, CFP_PEOPLE + 1)
            for view, count in (("frontal", CFP_FRONTAL), ("profile", CFP_PROFILE)) for n in range(1, count + 1)]


def person_dirs(folder: Path) -> dict[str, Path]:
    """Person id -> folder, in the flat layout (``folder/NNN``) or split into subfolders
    (``folder/train/NNN``, ``folder/test/NNN``)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        for d in [entry] if re.fullmatch(r"\d{3}", entry.name) else sorted(entry.iterdir()):
            if d.is_dir() and re.fullmatch(r"\d{3}", d.name):
                if d.name in out:
                    raise FetchError(f"{folder}: person {d.name} is in two places ({out[d.name]} and {d}); keep one")
                out[d.name] = d
    return out


def _resolve(people: dict[str, Path], base: Path, rel: str) -> Path:
    pid, rest = rel.split("/", 1)
    return people[pid] / rest if pid in people else base / rel


def cfp_names(root: str | Path) -> dict[str, str]:
    """Person id (``"001"``) -> name (``"50 Cent"``) from Data/list_name.txt (line k = person k)."""
    path = Path(root) / NAMES
    if not path.is_file():
        raise FetchError(f"{path}: not found; a CFP copy holds Data/list_name.txt (500 names); {_AGAIN}")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [n for n, ln in enumerate(lines, 1) if not ln.strip()]
    if blank:
        raise FetchError(f"{path}:{blank[0]}: empty line; line k names person k, so every line needs a name")
    if len(lines) != CFP_PEOPLE:
        raise FetchError(f"{path}: {len(lines)} names, CFP has {CFP_PEOPLE} (line k = person k); {_AGAIN}")
    return {f"{k:03d}": name.strip() for k, name in enumerate(lines, 1)}


def _pair_list(root: Path, letter: str) -> list[str]:
    """Pair_list_F / _P as image paths relative to Data/Images, index k - 1 for line k."""
    path = root / PAIR_LISTS[letter]
    if not path.is_file():
        raise FetchError(f"{path}: not found; a CFP copy holds Protocol/Pair_list_F.txt and Pair_list_P.txt; {_AGAIN}")
    view = "frontal" if letter == "F" else "profile"
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        m = re.fullmatch(rf"\s*(\d+)\s+(?:\.\./)?Data/Images/(\d{{3}}/{view}/\d{{2}}\.jpg)\s*", line)
        if not m or int(m.group(1)) != len(out) + 1:
            raise FetchError(f"{path}:{n}: expected '{len(out) + 1} ../Data/Images/NNN/{view}/NN.jpg', got {line!r}; "
                             f"{_AGAIN}")
        out.append(m.group(2))
    return out


def split_files(root: str | Path, kind: str) -> list[Path]:
    """The 20 split files of ``kind`` (FF or FP), fold by fold, same before diff."""
    if kind not in CFP_KINDS:
        raise FetchError(f"CFP protocol {kind!r} must be one of {CFP_KINDS}")
    return [Path(root) / SPLIT / kind / f"{fold:02d}" / f"{s}.txt" for fold in range(1, CFP_FOLDS + 1)
            for s in ("same", "diff")]


def _missing_split_files(root: Path) -> list[str]:
    return [str(f.relative_to(root)) for kind in CFP_KINDS for f in split_files(root, kind) if not f.is_file()]


def parse_split(root: str | Path, kind: str) -> list[CfpPair]:
    """The 7,000 pairs of protocol ``kind`` (FF or FP): 10 folds x (350 same + 350 different), paths
    relative to Data/Images. Errors name the file and line."""
    root = Path(root)
    files = split_files(root, kind)
    missing = _missing_split_files(root)
    if missing:
        raise FetchError(f"{root}: {len(missing)} CFP split files are missing ({shown(missing)}); {_AGAIN}")
    first = _pair_list(root, "F")
    second = first if kind == "FF" else _pair_list(root, "P")
    out = []
    for path in files:
        fold, same = int(path.parent.name) - 1, path.stem == "same"
        lines = [(n, ln) for n, ln in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                 if ln.strip()]
        if len(lines) != CFP_PAIRS_PER_FILE:
            raise FetchError(f"{path}: {len(lines)} pairs, CFP's split files hold {CFP_PAIRS_PER_FILE}; {_AGAIN}")
        for n, line in lines:
            m = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*", line)
            if not m:
                raise FetchError(f"{path}:{n}: expected 'i,j' (two image numbers), got {line!r}; {_AGAIN}")
            i, j = int(m.group(1)), int(m.group(2))
            if not (1 <= i <= len(first) and 1 <= j <= len(second)):
                raise FetchError(f"{path}:{n}: image numbers {i},{j} outside Pair_list_F (1-{len(first)}) / "
                                 f"Pair_list_{kind[1]} (1-{len(second)}); {_AGAIN}")
            out.append(CfpPair(fold, first[i - 1], second[j - 1], same))
    return out


def check_cfp(root: str | Path) -> dict[str, int]:
    """Raise FetchError unless ``root`` holds a complete CFP (flat or train/test layout): 500 names and
    people, 10 frontal + 4 profile images and a fiducials file each, every image the pair lists name, and
    20 well-formed split files per protocol. Missing files are listed together, with how many."""
    root = Path(root)
    needed = [IMAGES, NAMES, PAIR_LISTS["F"], PAIR_LISTS["P"], SPLIT]
    absent = [str(p) for p in needed if not (root / p).exists()]
    if absent:
        raise FetchError(f"{root}: not a CFP copy: missing {', '.join(absent)} (expected the official layout: "
                         f"Data/Images/NNN/{{frontal,profile}}/NN.jpg, Data/list_name.txt, Protocol/...)")
    cfp_names(root)
    people = person_dirs(root / IMAGES)
    extra = sorted(set(people) - {f"{k:03d}" for k in range(1, CFP_PEOPLE + 1)})
    if extra:
        raise FetchError(f"{root / IMAGES}: person folders outside CFP's 001-500 ({shown(extra)}); not the CFP copy")
    expected = expected_images()
    named = set(_pair_list(root, "F")) | set(_pair_list(root, "P"))
    images = [rel for rel in expected + sorted(named - set(expected))
              if not _resolve(people, root / IMAGES, rel).is_file()]
    fid_people = person_dirs(root / FIDUCIALS)
    fiducials = [rel[:-4] + ".txt" for rel in expected
                 if not _resolve(fid_people, root / FIDUCIALS, rel[:-4] + ".txt").is_file()]
    splits = _missing_split_files(root)
    problems = []
    if images:
        problems.append(f"{len(images)} images under {IMAGES} ({shown(images)})")
    if splits:
        problems.append(f"{len(splits)} split files ({shown(splits)})")
    if fiducials:
        problems.append(f"{len(fiducials)} fiducial files under {FIDUCIALS} ({shown(fiducials)})")
    if problems:
        raise FetchError(f"{root}: missing {'; '.join(problems)}; {_AGAIN}")
    counts = {"people": len(people), "images": len(expected), "frontal": CFP_PEOPLE * CFP_FRONTAL,
              "profile": CFP_PEOPLE * CFP_PROFILE, "fiducials": len(expected)}
    for kind in CFP_KINDS:
        pairs = parse_split(root, kind)
        counts[f"{kind.lower()}_pairs"] = len(pairs)
        counts[f"{kind.lower()}_same"] = sum(p.same for p in pairs)
    return counts


def read_fiducials(path: Path) -> list[tuple[float, float]]:
    """The 30 ``x,y`` points of one fiducials file; errors name the file and line."""
    points = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            x, y = (float(v) for v in line.split(","))
        except ValueError:
            raise FetchError(f"{path}:{n}: expected 'x,y' (two numbers), got {line!r}; {_AGAIN}") from None
        points.append((x, y))
    if len(points) != CFP_FIDUCIAL_POINTS:
        raise FetchError(f"{path}: {len(points)} points, CFP's fiducial files hold {CFP_FIDUCIAL_POINTS}; {_AGAIN}")
    return points


# Where MTCNN puts its five landmarks (image-left eye, image-right eye, nose, mouth left, mouth right), in units
# of the box around an image's 30 fiducial points (x from the box's left edge, y from its top), for a face whose
# nose lies right of its annotated eye: the median over the CFP photos MTCNN aligned on the hint box (detected
# with --pad 0.3), faces turned left mirrored (:func:`measured_hint_landmarks` on data/cfp_aligned). CFP annotates
# one half of each face, so a frontal box ends at the nose line; a face turned the other way is mirrored.
HINT_LANDMARKS = {
    "frontal": ((0.521, 0.150), (1.381, 0.144), (0.954, 0.430), (0.575, 0.638), (1.335, 0.633)),
    "profile": ((0.644, 0.151), (0.939, 0.169), (0.962, 0.429), (0.641, 0.683), (0.883, 0.699)),
}
EYE_POINTS, NOSE_POINTS = slice(12, 18), slice(18, 25)


def prepare_command(root: str | Path, aligned: str | Path) -> str:
    """How CFP is aligned (`make benchmarks`): every photo kept (the fiducials' box and landmarks as the
    fallback), detected on a padded copy (the photos end at the face) at most 640 px wide (fast, same faces)."""
    return (f"python -m facedata.prepare {Path(root) / IMAGES} {aligned} --fallback hints --hints "
            f"{Path(root) / FACE_BOXES} --detect-max-side 640 --pad 0.3 --workers 2")  # the fiducial points of the eye and of the nose


def faces_right(points: list[tuple[float, float]]) -> bool:
    """Whether the nose lies right of the annotated eye (the face turned to the image's right)."""
    xs = [p[0] for p in points]
    eye, nose = xs[EYE_POINTS], xs[NOSE_POINTS]
    return sum(nose) / len(nose) > sum(eye) / len(eye)


def hint_landmarks(points: list[tuple[float, float]], box: tuple[float, float, float, float],
                   view: str) -> list[tuple[float, float]]:
    """Five landmarks estimated from the fiducials' box (HINT_LANDMARKS), mirrored for a face turned left."""
    frac = HINT_LANDMARKS[view]
    if not faces_right(points):  # mirror: x -> 1 - x, and the image-left / image-right points swap
        frac = tuple((1 - x, y) for x, y in (frac[1], frac[0], frac[2], frac[4], frac[3]))
    x1, y1, x2, y2 = box
    return [(x1 + fx * (x2 - x1), y1 + fy * (y2 - y1)) for fx, fy in frac]


def measured_hint_landmarks(root: str | Path, aligned: str | Path) -> dict[str, list[list[float]]]:
    """The median MTCNN landmarks in fiducial-box units per view (faces turned right; left ones mirrored), over
    the images a `prepare --fallback hints` run aligned with plain MTCNN: how HINT_LANDMARKS was measured."""
    import numpy as np

    root = Path(root)
    boxes = {r["source"]: [float(r[k]) for k in ("x1", "y1", "x2", "y2")]
             for r in csv.DictReader(open(root / FACE_BOXES, newline=""))}
    acc: dict[str, list] = {"frontal": [], "profile": []}
    for r in csv.DictReader(open(Path(aligned) / "manifest.csv", newline="")):
        if r["method"] != "mtcnn" or r["source"] not in boxes:
            continue
        pid, view, name = r["source"].split("/")
        b = np.array(boxes[r["source"]])
        lm = (np.array(r["landmarks"].split(), float).reshape(5, 2) - b[:2]) / (b[2:] - b[:2])
        if not faces_right(read_fiducials(root / FIDUCIALS / pid / view / (name[:-4] + ".txt"))):
            lm = np.stack([1 - lm[[1, 0, 2, 4, 3], 0], lm[[1, 0, 2, 4, 3], 1]], 1)
        acc[view].append(lm)
    return {v: np.round(np.median(np.array(a), 0), 3).tolist() for v, a in acc.items() if a}


def write_face_boxes(root: str | Path) -> Path:
    """Write ``root/face_boxes.csv`` (``source,x1,y1,x2,y2,landmarks``, source relative to Data/Images): each
    image's box is the bounding box of its 30 fiducial points, clipped to the image (a few profile points lie
    outside it), and five landmarks estimated from it (:func:`hint_landmarks`, "x y" x 5 in pixels).
    ``prepare --fallback hints --hints`` uses them where MTCNN misses a face."""
    from PIL import Image

    root = Path(root)
    people, fid_people = person_dirs(root / IMAGES), person_dirs(root / FIDUCIALS)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["source", "x1", "y1", "x2", "y2", "landmarks"])
    for rel in expected_images():
        fid = _resolve(fid_people, root / FIDUCIALS, rel[:-4] + ".txt")
        if not fid.is_file():
            raise FetchError(f"{fid}: fiducials file not found; {_AGAIN}")
        pts = read_fiducials(fid)
        image = _resolve(people, root / IMAGES, rel)
        try:
            with Image.open(image) as im:  # the header only: the size
                w, h = im.size
        except OSError as exc:
            raise FetchError(f"{image}: cannot read the image ({exc}); {_AGAIN}") from None
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        box = (max(0.0, min(xs)), max(0.0, min(ys)), min(float(w), max(xs)), min(float(h), max(ys)))
        if not (box[2] > box[0] and box[3] > box[1]):
            raise FetchError(f"{fid}: the points' box {box} is empty inside the {w}x{h} image; {_AGAIN}")
        lm = hint_landmarks(pts, box, rel.split("/")[1])
        out.writerow([rel] + [f"{v:.2f}" for v in box] + [" ".join(f"{v:.2f}" for xy in lm for v in xy)])
    target = root / FACE_BOXES
    write_bytes_atomic(buf.getvalue().encode(), target)
    return target


def _is_cfp_root(folder: Path) -> bool:
    return (folder / IMAGES).is_dir() and (folder / "Protocol").is_dir()


def fetch_cfp(dest: str | Path, source: str | Path | None = None,
              base_urls: tuple[str, ...] = CFP_BASE_URLS) -> Fetched:
    """Put a checked CFP in ``dest`` in the official flat layout, with ``face_boxes.csv``: from ``source`` (a
    folder, flat or train/test, or cfp-dataset.zip) or downloaded. Idempotent; a ``dest`` holding files fetch
    did not put there is refused."""
    dest = Path(dest)
    try:
        counts = check_cfp(dest)
    except FetchError:
        pass  # absent or incomplete: built beside it
    else:
        boxes = dest / FACE_BOXES
        stale = not boxes.is_file() or "landmarks" not in boxes.read_text().split("\n", 1)[0]
        if stale and (dest / FETCHED_MARK).is_file():
            write_face_boxes(dest)  # fetch's own derived file, in a copy fetch made (new, or from before landmarks)
        elif stale:
            raise FetchError(f"{boxes}: missing or without landmarks in a CFP copy fetch did not make; fetch it "
                             "into a new --dest (nothing of yours is written to)")
        return Fetched(dest, {**counts, "face_boxes": counts["images"]}, True)
    check_dest(dest)  # before any download
    with staging(dest) as tmp:
        downloaded = source is None
        if downloaded:
            source = download_first(
                "CFP", CFP_ARCHIVE, base_urls, dest.parent / "downloads" / CFP_ARCHIVE,
                f"Offline, or has the link moved? Get {CFP_ARCHIVE} from the authors' page {CFP_BASE_URLS[0]} (it may "
                f"ask you to agree to their terms) on a connected machine, then run `python -m facedata.fetch cfp "
                f"--from /path/to/{CFP_ARCHIVE}` (the archive or its unpacked folder)")
        source = Path(source)
        extracted = tmp / "extracted"
        try:
            folder = source_folder(source, extracted)
        except FetchError as exc:
            if downloaded:  # e.g. an HTML page where the archive should be
                raise FetchError(f"{exc}. The download is not the dataset archive: delete {source} and get "
                                 f"{CFP_ARCHIVE} by hand from {CFP_BASE_URLS[0]}, then pass it with --from") from None
            raise
        root = find_root(folder, _is_cfp_root)
        if root is None:
            raise FetchError(f"{source}: not a CFP copy: no Data/Images/ and Protocol/ inside (expected the layout of "
                             f"{CFP_ARCHIVE} from {CFP_BASE_URLS[0]}: Data/Images/NNN/frontal/NN.jpg, Protocol/...)")
        try:
            check_cfp(root)  # the user's copy named in any error, not the staging folder
        except FetchError as exc:
            raise FetchError(str(exc).replace(str(extracted), str(source))) from None
        staged = tmp / "cfp"
        people, fid_people = person_dirs(root / IMAGES), person_dirs(root / FIDUCIALS)
        for rel in expected_images():  # normalised to the flat layout the pair lists name
            link_file(_resolve(people, root / IMAGES, rel), staged / IMAGES / rel)
            fid = rel[:-4] + ".txt"
            link_file(_resolve(fid_people, root / FIDUCIALS, fid), staged / FIDUCIALS / fid)
        for f in (NAMES, Path("Readme.txt"), PAIR_LISTS["F"], PAIR_LISTS["P"]):
            if (root / f).is_file():
                link_file(root / f, staged / f)
        for kind in CFP_KINDS:
            for f in split_files(root, kind):
                link_file(f, staged / f.relative_to(root))
        write_face_boxes(staged)
        counts = check_cfp(staged)  # never put an incomplete copy in place
        place(staged, dest, {"dataset": "cfp", "source": str(source), "counts": counts})
    return Fetched(dest, {**counts, "face_boxes": counts["images"]}, False)
