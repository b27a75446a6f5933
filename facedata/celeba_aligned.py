"""CelebA's aligned photos (``img_align_celeba``, 202,599 files NNNNNN.jpg) grouped by identity.

``python -m facedata.fetch celeba-aligned --from DIR [--identities FILE]`` lays DEST out as
``id%05d/NNNNNN.jpg`` by the identity numbers of ``identity_CelebA.txt`` (lines ``000001.jpg 2880``), the
layout of the CelebA subset (``id07203/``), and copies the identity file beside them. DIR is the folder of
NNNNNN.jpg files, a folder holding ``img_align_celeba/``, or img_align_celeba.zip. A partial copy (some of
the files) is accepted and reported as partial; every file it has needs a line in the identity file.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .fetch import Fetched, FetchError, check_dest, find_root, link_file, place, shown, source_folder, staging

CELEBA_IMAGES = 202_599  # img_align_celeba as published
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"  # the authors' page (CUHK MMLab)
IDENTITY_FILE = "identity_CelebA.txt"
ALIGNED_FOLDER = "img_align_celeba"
_NAME = re.compile(r"\d{6}\.jpg")
_WHERE = (f"get {ALIGNED_FOLDER}.zip (Img/) and Anno/{IDENTITY_FILE} from the CelebA authors ({CELEBA_URL}) and "
          f"run `python -m facedata.fetch celeba-aligned --from /path/to/{ALIGNED_FOLDER} --identities "
          f"/path/to/{IDENTITY_FILE}`")


def read_identities(path: str | Path) -> dict[str, int]:
    """``NNNNNN.jpg`` -> CelebA identity number, from identity_CelebA.txt (a header line is skipped);
    errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FetchError(f"{path}: identity file not found; pass CelebA's Anno/{IDENTITY_FILE} with --identities")
    out: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) == 2 and _NAME.fullmatch(parts[0]) and parts[1].isdigit():
                if parts[0] in out:
                    raise FetchError(f"{path}:{n}: {parts[0]} is listed twice; is this CelebA's {IDENTITY_FILE}?")
                out[parts[0]] = int(parts[1])
            elif n > 1 or out:  # only the first line may be a header ("img label")
                raise FetchError(f"{path}:{n}: expected 'NNNNNN.jpg IDENTITY', got {line.rstrip()!r}; is this "
                                 f"CelebA's {IDENTITY_FILE}?")
    if not out:
        raise FetchError(f"{path}: no 'NNNNNN.jpg IDENTITY' lines; pass CelebA's Anno/{IDENTITY_FILE}")
    return out


def image_names(folder: Path) -> list[str]:
    """The CelebA file names (NNNNNN.jpg) in ``folder``, sorted."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if _NAME.fullmatch(e.name) and e.is_file())


def _has_images(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return any(_NAME.fullmatch(e.name) for e in it)


def _images_dir(folder: Path) -> Path | None:
    """The folder of NNNNNN.jpg files: ``folder`` itself, its ``img_align_celeba/``, or one of these up to two
    levels below (an archive's wrapping folders)."""
    found = find_root(folder, lambda p: (p / ALIGNED_FOLDER).is_dir() or _has_images(p))
    if found is None:
        return None
    return found / ALIGNED_FOLDER if (found / ALIGNED_FOLDER).is_dir() and not _has_images(found) else found


def check_images(images: Path, identities: Path) -> dict[str, int]:
    """Counts of a folder of CelebA files against an identity file: FetchError naming how many and which
    images lack a line."""
    names = image_names(images)
    if not names:
        raise FetchError(f"{images}: no CelebA files NNNNNN.jpg inside; {_WHERE}")
    ids = read_identities(identities)
    lacking = [n for n in names if n not in ids]
    if lacking:
        raise FetchError(f"{identities}: {len(lacking)} images of {images} have no line in it ({shown(lacking)}); "
                         f"is it CelebA's {IDENTITY_FILE} for these files? Pass the right one with --identities")
    return {"images": len(names), "identities": len({ids[n] for n in names}), "published_images": CELEBA_IMAGES,
            "partial": int(len(names) < CELEBA_IMAGES)}


def check_celeba_aligned(root: str | Path) -> dict[str, int]:
    """Raise FetchError unless ``root`` holds ``id%05d/NNNNNN.jpg`` files, each in its identity's folder by
    the identity_CelebA.txt beside them."""
    root = Path(root)
    ids = read_identities(root / IDENTITY_FILE)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"id\d{5}", p.name))
    names, wrong = [], []
    for d in folders:
        for n in image_names(d):
            names.append(n)
            if ids.get(n) != int(d.name[2:]):
                wrong.append(f"{d.name}/{n}")
    if not names:
        raise FetchError(f"{root}: no id#####/NNNNNN.jpg files; {_WHERE}")
    if wrong:
        raise FetchError(f"{root}: {len(wrong)} images are not in their identity's folder by {IDENTITY_FILE} "
                         f"({shown(wrong)}); fetch again into an empty --dest")
    return {"images": len(names), "identities": len(folders), "published_images": CELEBA_IMAGES,
            "partial": int(len(names) < CELEBA_IMAGES)}


def find_identities(*folders: Path) -> Path | None:
    """identity_CelebA.txt in or beside one of ``folders`` (also in an ``Anno/`` folder, as published)."""
    for f in folders:
        for base in (f, f.parent):
            for cand in (base / IDENTITY_FILE, base / "Anno" / IDENTITY_FILE):
                if cand.is_file():
                    return cand
    return None


def _count_in(source: Path) -> int:
    """CelebA files NNNNNN.jpg in a folder or a .zip / .tar archive (its listing only: nothing extracted)."""
    import re
    import tarfile
    import zipfile

    if source.is_dir():
        images = _images_dir(source)
        return 0 if images is None else len(image_names(images))
    is_celeba = re.compile(r"(^|/)\d{6}\.jpg$").search
    try:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as zf:
                return sum(1 for n in zf.namelist() if is_celeba(n))
        with tarfile.open(source) as tf:
            return sum(1 for n in tf.getnames() if is_celeba(n))
    except (OSError, tarfile.TarError) as exc:
        raise FetchError(f"{source}: not a readable folder, .zip or .tar ({exc}); {_WHERE}") from None


def fetch_celeba_aligned(dest: str | Path, source: str | Path | None = None,
                         identities: str | Path | None = None) -> Fetched:
    """Put CelebA's aligned photos from ``source`` in ``dest`` as ``id%05d/NNNNNN.jpg`` with the identity
    file. Idempotent; a partial copy in ``dest`` that fetch made is replaced by a fuller ``source``; a
    ``dest`` holding files fetch did not put there is refused."""
    dest = Path(dest)
    try:
        have = check_celeba_aligned(dest)
    except FetchError:
        have = None
    if source is None:
        if have is not None:
            return Fetched(dest, have, True)
        raise FetchError(f"CelebA's aligned photos have no direct download: {_WHERE}")
    source = Path(source)
    if have is not None:
        fuller = False
        if have["partial"]:  # a partial copy fetch made gives way to a fuller source, folder or archive
            fuller = _count_in(source) > have["images"]
        if not fuller:
            return Fetched(dest, have, True)
    check_dest(dest)
    with staging(dest) as tmp:
        extracted = tmp / "extracted"
        folder = source_folder(source, extracted)
        images = _images_dir(folder)
        if images is None:
            raise FetchError(f"{source}: no CelebA files NNNNNN.jpg (or {ALIGNED_FOLDER}/) inside; {_WHERE}")
        ident = Path(identities) if identities is not None else \
            find_identities(images, folder, source if source.is_dir() else source.parent)
        if ident is None:
            raise FetchError(f"{source}: no {IDENTITY_FILE} in or beside it: pass CelebA's Anno/{IDENTITY_FILE} with "
                             f"--identities FILE ({CELEBA_URL})")
        try:
            check_images(images, ident)  # the user's copy named in any error
        except FetchError as exc:
            raise FetchError(str(exc).replace(str(extracted), str(source))) from None
        ids = read_identities(ident)
        staged = tmp / "celeba"
        for n in image_names(images):
            link_file(images / n, staged / f"id{ids[n]:05d}" / n)
        link_file(ident, staged / IDENTITY_FILE)
        counts = check_celeba_aligned(staged)
        place(staged, dest, {"dataset": "celeba-aligned", "source": str(source), "identities": str(ident),
                             "counts": counts})
    return Fetched(dest, counts, False)
