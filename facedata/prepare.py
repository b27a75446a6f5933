"""Align a whole face-image folder into an aligned-crop folder with the same layout.

    python -m facedata.prepare SRC DST [--method arcface] [--size 112] [--workers 2]

Works on CASIA-WebFace (``<id>/<n>.jpg``) and LFW (``<name>/<name>_0001.jpg``) layouts alike: every file
under SRC becomes ``DST/<same relative path>.jpg`` and one row of ``DST/manifest.csv`` (source, status,
reason, face count, score, box, landmarks). A bad file (unreadable, empty, not an image, no face, too
large) is a row with its reason, never a crash. Re-running resumes: files with a manifest row are
skipped, so an interrupted run loses nothing. The source folder is only read.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .detect import DetectorConfig, Face
from .errors import DatasetError, FaceDataError, ImageReadError, ImageTooLargeError
from .io import DEFAULT_MAX_PIXELS, check_output_folder

MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = [
    "source", "output", "status", "method", "reason", "n_faces", "score",
    "x1", "y1", "x2", "y2", "landmarks", "width", "height",
]
FALLBACKS = (None, "centred")
FALLBACK_KEYS = ("fallback", "relaxed_thresholds")  # settings that change only what happens to missed faces
# Where MTCNN puts the five landmarks in an LFW-style centred image, as a share of its width and height:
# the median over 300 random LFW deep-funneled images (250 px; spread 1-2% of the side). LFW and the
# CelebA subset were both cut as a square 2.2x the face box around its centre, so one template fits both.
CENTRED_LANDMARKS_FRAC = np.array([[0.4202, 0.4543], [0.5875, 0.4503], [0.5041, 0.5496],
                                   [0.4351, 0.6367], [0.5809, 0.6333]], dtype=np.float32)


@dataclass(frozen=True)
class PrepareConfig:
    """What an aligned-crop folder is made with (also written beside the crops as prepare.json)."""

    method: str = "arcface"  # alignment, one of facedata.align.ALIGNERS
    size_px: int = 112  # crop side; ArcFace-style models use 112, InceptionResnetV1 160
    detector: DetectorConfig = DetectorConfig()  # MTCNN thresholds, min face size, downscaling
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse larger images (decompression-bomb guard)
    jpeg_quality: int = 95  # crops are stored as JPEG like insightface's packs
    # "centred": for datasets whose labelled face is known to sit at the image centre (LFW, the CelebA
    # subset), never drop an image: pick the face nearest the centre, retry a miss with relaxed MTCNN
    # thresholds, and last cut a template crop at the centre. The manifest's `method` says which.
    fallback: str | None = None
    relaxed_thresholds: tuple[float, float, float] = (0.5, 0.6, 0.6)  # finds Marilyn_Monroe_0001 (default misses it)

    def __post_init__(self) -> None:
        """Bad settings fail here, before any image is read (a size 0 would mark every image 'error')."""
        from .align import get_aligner

        problems = []
        try:
            get_aligner(self.method)
        except KeyError as exc:  # the registry's own message: the valid names
            problems.append(str(exc.args[0]))
        if not isinstance(self.size_px, int) or not 16 <= self.size_px <= 1024:
            problems.append(f"size {self.size_px!r} must be a whole number of pixels in 16..1024 (112 or 160 usually)")
        for name, th in (("thresholds", self.detector.thresholds), ("relaxed thresholds", self.relaxed_thresholds)):
            if len(th) != 3 or not all(0.0 < t <= 1.0 for t in th):
                problems.append(f"{name} {tuple(th)} must be three MTCNN stage thresholds in (0, 1]")
        if self.detector.min_face_size_px < 1:
            problems.append(f"min face size {self.detector.min_face_size_px} must be >= 1 pixel")
        if self.max_pixels <= 0:
            problems.append(f"max pixels {self.max_pixels} must be positive")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"JPEG quality {self.jpeg_quality} must be in 1..100")
        if self.fallback not in FALLBACKS:
            problems.append(f"fallback {self.fallback!r} must be one of {FALLBACKS}")
        if problems:
            raise DatasetError("invalid prepare settings: " + "; ".join(problems))


def list_source_files(src: Path) -> list[Path]:
    """Every regular, non-hidden file below ``src`` (relative paths, sorted); errors for a bad folder."""
    if not src.exists():
        raise DatasetError(f"{src}: source folder not found; check the path")
    if not src.is_dir():
        raise DatasetError(f"{src}: is a file; pass the folder that holds <identity>/<image> files")
    files = []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                files.append(Path(root, name).relative_to(src))
    if not files:
        raise DatasetError(f"{src}: folder is empty; expected <identity>/<image> files")
    return files


def output_name(rel: Path) -> Path:
    return rel.with_suffix(".jpg")


def read_manifest(path: Path) -> dict[str, dict]:
    """Rows of an existing manifest keyed by source; a half-written last line (a crash) is dropped."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):  # interrupted mid-row: cut the partial row off
        text = text[: text.rfind("\n") + 1]
        path.write_text(text, encoding="utf-8")
    rows = {}
    # csv over the text itself, not splitlines(): a quoted file name may hold a newline
    for row in csv.DictReader(io.StringIO(text, newline="")):
        if row.get("source") and row.get("status"):
            rows[row["source"]] = row
    return rows


# --- worker side -------------------------------------------------------------------------------------
_DETECTOR = None
_RELAXED = None
_CONFIG: PrepareConfig | None = None


def _init_worker(config: PrepareConfig, threads: int) -> None:
    global _DETECTOR, _RELAXED, _CONFIG
    import torch

    from .detect import FaceDetector

    torch.set_num_threads(max(1, threads))
    _CONFIG = config
    _DETECTOR = FaceDetector(config.detector)
    _RELAXED = FaceDetector(dataclasses.replace(config.detector, thresholds=tuple(config.relaxed_thresholds))) \
        if config.fallback else None


def pick_centred_face(faces: list[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face whose box centre is nearest the image centre (datasets cut around their labelled face)."""
    if not faces:
        return None
    h, w = image_shape[:2]
    return min(faces, key=lambda f: float(np.hypot((f.box[0] + f.box[2]) / 2 - w / 2, (f.box[1] + f.box[3]) / 2 - h / 2)))


def centred_template_face(image_shape: tuple[int, ...]) -> Face:
    """A stand-in detection for a centred dataset image: the median LFW landmark positions scaled to it."""
    h, w = image_shape[:2]
    lm = CENTRED_LANDMARKS_FRAC * np.array([w, h], np.float32)
    # LFW-style images are 2.2x the face box: the box is the central 1 / 2.2 of the image
    half_w, half_h = w / 4.4, h / 4.4
    box = np.array([w / 2 - half_w, h / 2 - half_h, w / 2 + half_w, h / 2 + half_h], np.float32)
    return Face(box=box, score=np.float32(0.0), landmarks=lm)


def find_face(rgb: np.ndarray) -> tuple[Face | None, int, str]:
    """(face, faces found, method): MTCNN, then (centred datasets) relaxed MTCNN, then the template."""
    from .detect import pick_main_face

    centred = _CONFIG.fallback == "centred"
    faces = _DETECTOR.detect_rgb(rgb)
    pick = pick_centred_face if centred else pick_main_face
    if faces or not centred:
        return pick(faces, rgb.shape), len(faces), "mtcnn"
    faces = _RELAXED.detect_rgb(rgb)
    if faces:
        return pick(faces, rgb.shape), len(faces), "mtcnn_relaxed"
    return centred_template_face(rgb.shape), 0, "centred_template"


def _process(job: tuple[str, str, str]) -> dict:
    """Detect, align and save one image; always returns a manifest row, never raises."""
    from .align import get_aligner
    from .io import load_image, save_image_atomic

    src_root, dst_root, rel = job
    cfg = _CONFIG
    row = {k: "" for k in MANIFEST_FIELDS}
    row["source"] = rel
    try:
        rgb = load_image(Path(src_root, rel), max_pixels=cfg.max_pixels)
        row["width"], row["height"] = rgb.shape[1], rgb.shape[0]
        face, n_faces, method = find_face(rgb)
        row["n_faces"] = n_faces
        if face is None:
            row.update(status="no_face", reason="no face found by MTCNN")
            return row
        crop, _ = get_aligner(cfg.method)(rgb, face, size=cfg.size_px)
        out_rel = output_name(Path(rel))
        save_image_atomic(crop, Path(dst_root, out_rel), quality=cfg.jpeg_quality)
        x1, y1, x2, y2 = (float(v) for v in face.box)
        row.update(
            status="ok", method=method, output=str(out_rel), score=f"{float(face.score):.5f}",
            x1=f"{x1:.2f}", y1=f"{y1:.2f}", x2=f"{x2:.2f}", y2=f"{y2:.2f}",
            landmarks=" ".join(f"{v:.2f}" for v in np.asarray(face.landmarks).ravel()),
        )
        if method == "mtcnn_relaxed":
            row["reason"] = f"found only with relaxed thresholds {tuple(cfg.relaxed_thresholds)}"
        elif method == "centred_template":
            row["reason"] = "no face found even with relaxed thresholds; centred template crop"
        elif n_faces > 1:
            kept = "the most central" if cfg.fallback == "centred" else "the largest, most central"
            row["reason"] = f"{n_faces} faces; kept {kept}"
    except ImageTooLargeError as exc:
        row.update(status="too_large", reason=exc.reason)
    except ImageReadError as exc:
        row.update(status="unreadable", reason=exc.reason)
    except Exception as exc:  # one bad file is recorded, never fatal
        row.update(status="error", reason=f"{type(exc).__name__}: {exc}")
    return row


# --- driver ------------------------------------------------------------------------------------------
@dataclass
class PrepareResult:
    counts: Counter
    skipped: int
    seconds: float
    manifest: Path
    methods: Counter = dataclasses.field(default_factory=Counter)  # ok crops by method (mtcnn, fallbacks)


def _iter_results(jobs: list[tuple[str, str, str]], config: PrepareConfig, workers: int) -> Iterator[dict]:
    if workers <= 0:
        _init_worker(config, threads=min(2, os.cpu_count() or 1))
        yield from map(_process, jobs)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(config, threads)) as pool:
        yield from pool.imap_unordered(_process, jobs, chunksize=2)


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "prepared") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``.lock`` inside it) for the block; a second holder is refused
    with who holds it, so two runs never do the same images twice into one manifest."""
    import fcntl
    import socket

    lock = folder / ".lock"
    fh = open(lock, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise DatasetError(f"{folder} is being {what} by another run ({holder}); wait for it to finish, "
                               "or use another output folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the lock


def _migrate_manifest(manifest: Path) -> None:
    """Rewrite a manifest written before a column was added (e.g. ``method``) with today's header."""
    from .io import write_bytes_atomic

    if not manifest.exists() or manifest.stat().st_size == 0:
        return
    with open(manifest, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if header == MANIFEST_FIELDS:
        return
    rows = read_manifest(manifest).values()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) or ("mtcnn" if k == "method" and row.get("status") == "ok" else "")
                         for k in MANIFEST_FIELDS})
    write_bytes_atomic(buf.getvalue().encode("utf-8"), manifest)


def prepare_folder(src: Path, dst: Path, config: PrepareConfig = PrepareConfig(), workers: int = 2,
                   retry_failed: bool = False, progress: bool = True, limit: int | None = None) -> PrepareResult:
    """Align every image under ``src`` into ``dst``; see the module docstring. Returns counts by status."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if dst == src or src in dst.parents:
        raise DatasetError(f"{dst}: output folder is inside the source {src}; choose a folder outside it")
    files = list_source_files(src)
    outputs: dict[Path, Path] = {}
    for rel in files:
        other = outputs.setdefault(output_name(rel), rel)
        if other != rel:
            raise DatasetError(f"{src / other} and {src / rel} would both become {dst / output_name(rel)}; "
                               "rename one of them")
    check_output_folder(dst, "output folder")  # a file, or a folder we cannot write: refused before any image
    dst.mkdir(parents=True, exist_ok=True)
    with folder_lock(dst):
        return _prepare_locked(src, dst, files, config, workers, retry_failed, progress, limit)


def _prepare_locked(src: Path, dst: Path, files: list[Path], config: PrepareConfig, workers: int,
                    retry_failed: bool, progress: bool, limit: int | None) -> PrepareResult:
    import json

    from tqdm import tqdm

    from .io import write_bytes_atomic

    spec_path = dst / "prepare.json"
    spec = json.loads(json.dumps(asdict(config)))  # tuples become lists, as they read back from the file
    if spec_path.exists():
        # a setting added since the folder was made reads as its default
        old = {**json.loads(json.dumps(asdict(PrepareConfig()))), **json.loads(spec_path.read_text())}
        diff = {k: (old.get(k), v) for k, v in spec.items() if old.get(k) != v}
        if set(diff) - set(FALLBACK_KEYS):
            raise DatasetError(f"{dst} was prepared with other settings {diff} (old, new); use another output folder")
        # a new fallback only changes what happens to faces MTCNN missed: try those again with it
        retry_missed = bool(diff) and config.fallback is not None
    else:
        retry_missed = False
    write_bytes_atomic(json.dumps(spec, indent=1).encode(), spec_path)
    manifest = dst / MANIFEST_NAME
    _migrate_manifest(manifest)
    done = read_manifest(manifest)
    todo = []
    for rel in files:
        row = done.get(str(rel))
        if row is None:
            todo.append(rel)
        elif row["status"] == "ok" and not (dst / row["output"]).exists():
            todo.append(rel)  # crop deleted since: redo it
        elif row["status"] != "ok" and (retry_failed or (retry_missed and row["status"] == "no_face")):
            todo.append(rel)
    skipped = len(files) - len(todo)  # finished before this run (not those a --limit leaves for later)
    if limit is not None:
        todo = todo[:limit]
    counts: Counter = Counter()
    methods: Counter = Counter()  # how the "ok" crops were found
    start = time.perf_counter()
    new_file = not manifest.exists() or manifest.stat().st_size == 0
    jobs = [(str(src), str(dst), str(rel)) for rel in todo]
    with open(manifest, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        if new_file:
            writer.writeheader()
        bar = tqdm(total=len(jobs), unit="img", desc="aligning", disable=not progress, smoothing=0.1)
        try:
            for row in _iter_results(jobs, config, workers):
                writer.writerow(row)
                fh.flush()  # one row per finished image: a crash loses at most the images in flight
                counts[row["status"]] += 1
                if row["status"] == "ok":
                    methods[row["method"]] += 1
                bar.update(1)
                bar.set_postfix(ok=counts["ok"], bad=sum(counts.values()) - counts["ok"], refresh=False)
        finally:
            bar.close()
    return PrepareResult(counts, skipped, time.perf_counter() - start, manifest, methods)


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m facedata.prepare", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="folder of <identity>/<image> files (read only)")
    p.add_argument("dst", type=Path, help="output folder for aligned crops and manifest.csv")
    p.add_argument("--method", default="arcface", help="alignment: arcface (default), eye_rotation, box")
    p.add_argument("--size", type=int, default=112, help="crop side in pixels (112; 160 for InceptionResnetV1)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="decode/detect processes; 0 = in-process")
    defaults = DetectorConfig()
    p.add_argument("--min-face-size", type=int, default=defaults.min_face_size_px, help="smallest face side searched for, pixels")
    p.add_argument("--thresholds", type=float, nargs=3, default=defaults.thresholds, help="MTCNN stage thresholds")
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6,
                   help=f"refuse larger images (default {DEFAULT_MAX_PIXELS / 1e6:g})")
    p.add_argument("--fallback", choices=[f for f in FALLBACKS if f], default=None,
                   help="centred: faces known to be at the image centre (LFW, CelebA crops) are never dropped: "
                        "the most central face is kept, a miss is retried with --relaxed-thresholds, then a "
                        "centred template crop is cut (the manifest's method column says which)")
    p.add_argument("--relaxed-thresholds", type=float, nargs=3, default=PrepareConfig.relaxed_thresholds,
                   help="MTCNN stage thresholds of the --fallback retry")
    p.add_argument("--retry-failed", action="store_true", help="re-try files the manifest lists as failed")
    p.add_argument("--limit", type=int, default=None, help="process at most N new files (quick trials)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(list(argv) if argv is not None else None)
    detector = DetectorConfig(thresholds=tuple(args.thresholds), min_face_size_px=args.min_face_size)
    try:
        config = PrepareConfig(method=args.method, size_px=args.size, detector=detector,
                               max_pixels=int(args.max_megapixels * 1e6), fallback=args.fallback,
                               relaxed_thresholds=tuple(args.relaxed_thresholds))
        result = prepare_folder(args.src, args.dst, config, workers=args.workers,
                                retry_failed=args.retry_failed, progress=not args.no_progress, limit=args.limit)
    except (FaceDataError, KeyError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished images are kept; run the same command again to resume", file=sys.stderr)
        return 130
    n = sum(result.counts.values())
    rate = n / result.seconds if result.seconds > 0 else 0.0
    summary = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "nothing new"
    if set(result.methods) - {"mtcnn"}:
        summary += " (" + ", ".join(f"{k} {v}" for k, v in sorted(result.methods.items())) + ")"
    print(f"{n} images in {result.seconds:.1f} s ({rate:.1f} img/s): {summary}; "
          f"{result.skipped} already done. Manifest: {result.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
