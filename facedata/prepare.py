"""Align a whole face-image folder into an aligned-crop folder with the same layout.

    python -m facedata.prepare SRC DST [--method arcface] [--size 112] [--workers 2]

Works on CASIA-WebFace (``<id>/<n>.jpg``) and LFW (``<name>/<name>_0001.jpg``) layouts alike: every file
under SRC becomes ``DST/<same relative path>.jpg`` and one row of ``DST/manifest.csv`` (source, status,
reason, face count, score, box, landmarks). A bad file (unreadable, empty, not an image, no face, too
large) is a row with its reason, never a crash. Re-running resumes: files with a manifest row are
skipped, so an interrupted run (Ctrl+C, a killed worker process) loses nothing. Identity folders that are
symbolic links are followed. The source folder is only read.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import Counter
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .cli import command
from .detect import DETECTORS, YUNET_RELAXED_SCORE, DetectorConfig, Face, check_detector_name
from .errors import DatasetError, FaceDataError, ImageReadError, ImageTooLargeError, UsageError
from .io import DEFAULT_MAX_PIXELS, add_max_megapixels_option, create_output_folder, folder_lock, max_pixels_of

MANIFEST_NAME = "manifest.csv"
RUNS_LOG = "prepare_runs.jsonl"  # one line per run: images, seconds, images/s, outcome
MANIFEST_FIELDS = [
    "source", "output", "status", "method", "reason", "n_faces", "score",
    "x1", "y1", "x2", "y2", "landmarks", "width", "height",
]
FALLBACKS = (None, "centred", "hints")
FALLBACK_KEYS = ("fallback", "relaxed_thresholds", "hints")  # settings that change only what happens to missed faces
HINT_MIN_IOU = 0.1  # a detection overlapping the hint box less than this is another face, not the labelled one
# Where MTCNN puts the five landmarks in an LFW-style centred image, as a share of its width and height:
# the median over 300 random LFW deep-funneled images (250 px; spread 1-2% of the side). LFW and the
# CelebA subset were both cut as a square 2.2x the face box around its centre, so one template fits both.
CENTRED_LANDMARKS_FRAC = np.array([[0.4202, 0.4543], [0.5875, 0.4503], [0.5041, 0.5496],
                                   [0.4351, 0.6367], [0.5809, 0.6333]], dtype=np.float32)
IN_FLIGHT_PER_WORKER = 4  # images handed to each worker ahead: keeps it busy, and few are redone after a crash


class WorkerDiedError(FaceDataError):
    """A worker process died mid-run (the out-of-memory killer's SIGKILL, a crash in native code): the run
    stops with the images finished so far in the manifest, so the same command resumes it."""


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
    # "hints": for datasets that publish where the labelled face is (CFP's fiducial points, a bounding-box
    # file), never drop an image: the detection overlapping the hint box most is kept, a miss is retried with
    # relaxed thresholds, and last the template landmarks are placed in the hint box (method hint_template).
    fallback: str | None = None
    relaxed_thresholds: tuple[float, float, float] = (0.5, 0.6, 0.6)  # finds Marilyn_Monroe_0001 (default misses it)
    hints: str | None = None  # with fallback="hints": a CSV `source,x1,y1,x2,y2` (source relative to SRC)

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
        if self.detector.backend not in DETECTORS:
            problems.append(f"detector {self.detector.backend!r} must be one of {', '.join(sorted(DETECTORS))}")
        if self.detector.min_face_size_px < 1:
            problems.append(f"min face size {self.detector.min_face_size_px} must be >= 1 pixel")
        if self.max_pixels <= 0:
            problems.append(f"max pixels {self.max_pixels} must be positive")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"JPEG quality {self.jpeg_quality} must be in 1..100")
        if self.fallback not in FALLBACKS:
            problems.append(f"fallback {self.fallback!r} must be one of {FALLBACKS}")
        if (self.fallback == "hints") != (self.hints is not None):
            problems.append("--fallback hints and --hints FILE go together (the file says where each labelled face is)")
        if problems:
            raise DatasetError("invalid prepare settings: " + "; ".join(problems))


def list_source_files(src: Path) -> list[Path]:
    """Every non-hidden file below ``src`` (relative paths, sorted); errors for a bad folder. A symbolic link
    to a folder is followed (identity folders linked in from elsewhere are aligned like the others); one that
    leads to a folder already listed (a loop, or one identity's images under two names) is refused."""
    if not src.exists():
        raise DatasetError(f"{src}: source folder not found; check the path")
    if not src.is_dir():
        raise DatasetError(f"{src}: is a file; pass the folder that holds <identity>/<image> files")

    def unreadable(exc: OSError) -> None:  # os.walk skips a folder it cannot list without a word otherwise
        raise exc

    files = []
    seen = {src.resolve(): src}  # real folder -> the path it was first reached by
    for root, dirs, names in os.walk(src, onerror=unreadable, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in dirs:
            real = Path(root, d).resolve()
            if real in seen:
                raise DatasetError(f"{seen[real]} and {Path(root, d)} are the same folder {real} (through a symbolic "
                                   "link): its images would be aligned twice, or for ever in a loop; remove the link")
            seen[real] = Path(root, d)
        for name in sorted(names):
            if not name.startswith("."):
                files.append(Path(root, name).relative_to(src))
    if not files:
        raise DatasetError(f"{src}: folder is empty; expected <identity>/<image> files")
    return files


def output_name(rel: Path) -> Path:
    return rel.with_suffix(".jpg")


def read_manifest(path: Path) -> dict[str, dict]:
    """Rows of an existing manifest keyed by source; a half-written last line (a crash) is dropped. A file
    that is not a manifest (not UTF-8, no ``source`` and ``status`` columns) is refused before it is touched."""
    if not path.exists():
        return {}

    def refuse(why: str) -> DatasetError:
        return DatasetError(f"{path}: not a manifest written by `python -m facedata.prepare` ({why}); the folder "
                            f"holds other files: choose another output folder, or move {path.name} away")

    try:
        text = path.read_text(encoding="utf-8")
        header = next(csv.reader(io.StringIO(text, newline="")), []) if "\n" in text else None
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except csv.Error as exc:
        raise refuse(f"not CSV: {exc}") from None
    if header is not None and not {"source", "status"} <= set(header):
        raise refuse(f"its first line {text.split(chr(10), 1)[0][:60]!r} is not a header with source and status")
    if header is None and text and not ",".join(MANIFEST_FIELDS).startswith(text):  # a crash mid-header, or not ours
        raise refuse(f"one line {text[:60]!r}, not a header with source and status")
    if text and not text.endswith("\n"):  # interrupted mid-row: cut the partial row off
        text = text[: text.rfind("\n") + 1]
        path.write_text(text, encoding="utf-8")
    rows = {}
    # csv over the text itself, not splitlines(): a quoted file name may hold a newline
    try:
        for row in csv.DictReader(io.StringIO(text, newline="")):
            if row.get("source") and row.get("status"):
                rows[row["source"]] = row
    except csv.Error as exc:
        raise refuse(f"not CSV: {exc}") from None
    return rows


# --- worker side -------------------------------------------------------------------------------------
_DETECTOR = None
_RELAXED = None
_CONFIG: PrepareConfig | None = None
_HINTS: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}


def _init_worker(config: PrepareConfig, threads: int, hints: dict | None = None) -> None:
    global _DETECTOR, _RELAXED, _CONFIG, _HINTS
    import torch

    from .detect import FaceDetector, relaxed_config

    torch.set_num_threads(max(1, threads))
    _CONFIG = config
    _DETECTOR = FaceDetector(config.detector)
    _RELAXED = FaceDetector(relaxed_config(config.detector, config.relaxed_thresholds)) if config.fallback else None
    _HINTS = hints or {}  # read and checked once by prepare_folder


def _init_pool_worker(config: PrepareConfig, threads: int, hints: dict | None = None) -> None:
    """A worker process's start: Ctrl+C is left to the driver, which lets the images in flight finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(config, threads, hints)


def centred_template_face(image_shape: tuple[int, ...]) -> Face:
    """A stand-in detection for a centred dataset image: the median LFW landmark positions scaled to it."""
    h, w = image_shape[:2]
    lm = CENTRED_LANDMARKS_FRAC * np.array([w, h], np.float32)
    # LFW-style images are 2.2x the face box: the box is the central 1 / 2.2 of the image
    half_w, half_h = w / 4.4, h / 4.4
    box = np.array([w / 2 - half_w, h / 2 - half_h, w / 2 + half_w, h / 2 + half_h], np.float32)
    return Face(box=box, score=np.float32(0.0), landmarks=lm)


def read_hints(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Face-location hints: ``source`` (relative to the prepared folder) -> (box x1 y1 x2 y2, five landmarks or
    None: the optional ``landmarks`` column, "x y" x 5 in pixels); errors name the line."""
    if not path.is_file():
        raise DatasetError(f"{path}: hints file not found; pass the CSV `source,x1,y1,x2,y2` that says where each "
                           "labelled face is (`python -m facedata.fetch cfp` writes face_boxes.csv)")
    try:
        return _parse_hints(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: not a UTF-8 CSV `source,x1,y1,x2,y2[,landmarks]` ({exc}); pass the hints "
                           "file, not an image") from None


def _parse_hints(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"source", "x1", "y1", "x2", "y2"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: expected a header `source,x1,y1,x2,y2`, got {reader.fieldnames}")
        for n, row in enumerate(reader, 2):
            try:
                box = np.array([float(row[k]) for k in ("x1", "y1", "x2", "y2")], np.float32)
            except (TypeError, ValueError):
                raise DatasetError(f"{path}:{n}: box values must be numbers, got {row}") from None
            if not (np.isfinite(box).all() and box[2] > box[0] and box[3] > box[1]):
                raise DatasetError(f"{path}:{n}: box {box.tolist()} must be finite with x2 > x1 and y2 > y1")
            lm = None
            if row.get("landmarks"):
                try:
                    lm = np.array(row["landmarks"].split(), np.float32).reshape(5, 2)
                except ValueError:
                    raise DatasetError(f"{path}:{n}: landmarks must be ten numbers 'x y' x 5, got "
                                       f"{row['landmarks']!r}") from None
                if not np.isfinite(lm).all():
                    raise DatasetError(f"{path}:{n}: landmarks must be finite numbers")
            out[row["source"]] = (box, lm)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1 y1 x2 y2 boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pick_hinted_face(faces: list[Face], hint: np.ndarray) -> Face | None:
    """The detection overlapping the hint box most, if it overlaps at least HINT_MIN_IOU (else None: a miss)."""
    scored = [(box_iou(f.box, hint), f) for f in faces]
    best = max(scored, key=lambda t: t[0], default=(0.0, None))
    return best[1] if best[0] >= HINT_MIN_IOU else None


def hint_template_face(hint: np.ndarray, landmarks: np.ndarray | None = None) -> Face:
    """A stand-in detection for a hinted face: the hint's own landmarks when it has them (CFP's, estimated from
    its fiducials), else the centred template's placed in the hint box (that template's face box is the
    central 1 / 2.2 of an LFW-style image, so its landmarks in box units follow)."""
    if landmarks is None:
        x1, y1, x2, y2 = (float(v) for v in hint)
        in_box = (CENTRED_LANDMARKS_FRAC - 0.5) * 2.2 + 0.5
        landmarks = np.array([x1, y1], np.float32) + in_box * np.array([x2 - x1, y2 - y1], np.float32)
    return Face(box=np.asarray(hint, np.float32), score=np.float32(0.0), landmarks=np.asarray(landmarks, np.float32))


def find_face(rgb: np.ndarray, rel: str = "") -> tuple[Face | None, int, str]:
    """(face, faces found, method): MTCNN, then (centred or hinted datasets) relaxed MTCNN, then the template."""
    from .detect import pick_centred_face, pick_main_face  # the project's face-choice rules live in detect

    fallback = _CONFIG.fallback
    hint, hint_lm = _HINTS.get(rel, (None, None)) if fallback == "hints" else (None, None)
    if fallback == "hints" and hint is None:
        fallback = None  # an image the hints file does not cover is aligned as without a fallback (said in its row)
    if fallback == "hints":
        pick = lambda fs, shape: pick_hinted_face(fs, hint)  # noqa: E731
    else:
        pick = pick_centred_face if fallback == "centred" else pick_main_face
    backend = _CONFIG.detector.backend  # the manifest's method names the detector: mtcnn, yunet, *_relaxed
    faces = _DETECTOR.detect_rgb(rgb)
    face = pick(faces, rgb.shape)
    if face is not None or fallback is None:
        return face, len(faces), backend
    faces = _RELAXED.detect_rgb(rgb)
    face = pick(faces, rgb.shape)
    if face is not None:
        return face, len(faces), f"{backend}_relaxed"
    if fallback == "hints":
        return hint_template_face(hint, hint_lm), len(faces), "hint_template"
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
        face, n_faces, method = find_face(rgb, rel)
        row["n_faces"] = n_faces
        if face is None:
            unhinted = cfg.fallback == "hints" and rel not in _HINTS
            by = {"mtcnn": "MTCNN", "yunet": "YuNet"}.get(cfg.detector.backend, cfg.detector.backend)
            row.update(status="no_face", reason=f"no face found by {by}" + ("; no hint for this image" if unhinted else ""))
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
        if method == "yunet_relaxed":
            row["reason"] = f"found only with YuNet's relaxed score {min(cfg.detector.yunet_score_threshold, YUNET_RELAXED_SCORE)}"
        elif method.endswith("_relaxed"):
            row["reason"] = f"found only with relaxed thresholds {tuple(cfg.relaxed_thresholds)}"
        elif method == "centred_template":
            row["reason"] = "no face found even with relaxed thresholds; centred template crop"
        elif method == "hint_template":
            row["reason"] = "no detection on the hint box even with relaxed thresholds; template in the hint box"
        elif n_faces > 1:
            kept = {"centred": "the most central", "hints": "the one on the hint box"}.get(
                cfg.fallback or "", "the largest, most central")
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


def _iter_results(jobs: list[tuple[str, str, str]], config: PrepareConfig, workers: int,
                  hints: dict | None = None) -> Iterator[dict]:
    if workers <= 0:
        _init_worker(config, threads=min(2, os.cpu_count() or 1), hints=hints)
        yield from map(_process, jobs)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    # An executor, not multiprocessing.Pool: a Pool replaces a killed worker but never redoes its images,
    # so the run used to wait for them for ever; the executor fails every pending image instead.
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker,
                               initargs=(config, threads, hints))
    queue = iter(jobs)
    try:
        pending = {pool.submit(_process, job) for job in itertools.islice(queue, IN_FLIGHT_PER_WORKER * workers)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                pending |= {pool.submit(_process, job) for job in itertools.islice(queue, 1)}
    except BrokenProcessPool:
        workers_seen = list((getattr(pool, "_processes", None) or {}).values())  # private: read for the message only
        pool.shutdown(wait=True, cancel_futures=True)  # joins them: their exit codes are known after
        raise WorkerDiedError(f"a worker process died ({_cause_of_death(workers_seen)})") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the images in flight finish; their rows are redone later


def _cause_of_death(processes: list) -> str:
    """Why one of a broken executor's workers ended, from their exit codes (it ends the others with SIGTERM)."""
    for code in (p.exitcode for p in processes):
        if not code or code == -signal.SIGTERM:
            continue
        if code > 0:
            return f"exit code {code}"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + ("; the out-of-memory killer sends it" if -code == signal.SIGKILL else "")
    return "cause unknown"


def _migrate_manifest(manifest: Path, rows: Iterable[dict]) -> bool:
    """Rewrite a manifest written before a column was added (e.g. ``method``) with today's header; ``rows``
    are its rows (read_manifest). Returns whether it was rewritten."""
    from .io import write_bytes_atomic

    if not manifest.exists() or manifest.stat().st_size == 0:
        return False
    with open(manifest, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if header == MANIFEST_FIELDS:
        return False
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) or ("mtcnn" if k == "method" and row.get("status") == "ok" else "")
                         for k in MANIFEST_FIELDS})
    write_bytes_atomic(buf.getvalue().encode("utf-8"), manifest)
    return True


def prepare_folder(src: Path, dst: Path, config: PrepareConfig = PrepareConfig(), workers: int = 2,
                   retry_failed: bool = False, progress: bool = True, limit: int | None = None) -> PrepareResult:
    """Align every image under ``src`` into ``dst``; see the module docstring. Returns counts by status."""
    if limit is not None and limit < 1:  # a negative slice would align all but the last images
        raise UsageError(f"--limit {limit}: must be a whole number of images >= 1 (at most that many new ones)")
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
    hinted = None
    if config.hints:  # a bad hints file, or one naming none of these files, is refused before any worker starts
        hinted = read_hints(Path(config.hints))
        if not any(str(rel) in hinted for rel in files):
            raise DatasetError(f"{config.hints} names none of the {len(files)} files under {src} (it has e.g. "
                               f"{next(iter(hinted), '-')!r}, the folder e.g. {str(files[0])!r}); its sources must be "
                               "relative to the folder being prepared: pass the folder the hints were written for")
    create_output_folder(dst, "output folder")  # a file, or a folder we cannot write: refused before any image
    with folder_lock(dst):
        return _prepare_locked(src, dst, files, config, workers, retry_failed, progress, limit, hinted)


def _prepare_locked(src: Path, dst: Path, files: list[Path], config: PrepareConfig, workers: int,
                    retry_failed: bool, progress: bool, limit: int | None,
                    hints: dict | None = None) -> PrepareResult:
    import json

    from tqdm import tqdm

    from .io import write_bytes_atomic

    manifest = dst / MANIFEST_NAME
    done = read_manifest(manifest)  # a file that is not a manifest is refused before anything is written
    spec_path = dst / "prepare.json"
    spec = json.loads(json.dumps(asdict(config)))  # tuples become lists, as they read back from the file
    if spec_path.exists():
        # a setting added since the folder was made reads as its default (also inside the detector's settings)
        defaults = json.loads(json.dumps(asdict(PrepareConfig())))
        try:
            saved = json.loads(spec_path.read_text(encoding="utf-8"))
            why = "" if isinstance(saved, dict) else f"a JSON {type(saved).__name__}, not an object"
        except ValueError as exc:  # UnicodeDecodeError is one too
            why = f"not JSON: {exc}"
        if why:
            raise DatasetError(f"{spec_path}: not the settings file prepare writes ({why}), so what the crops here "
                               "were made with is unknown: choose another output folder, or move it away")
        old = {**defaults, **saved}
        if isinstance(saved.get("detector"), dict):
            old["detector"] = {**defaults["detector"], **saved["detector"]}
        diff = {k: (old.get(k), v) for k, v in spec.items() if old.get(k) != v}
        if set(diff) - set(FALLBACK_KEYS):
            raise DatasetError(f"{dst} was prepared with other settings {diff} (old, new); use another output folder")
        # a new fallback only changes what happens to faces MTCNN missed: try those again with it
        retry_missed = bool(diff) and config.fallback is not None
    else:
        retry_missed = False
    write_bytes_atomic(json.dumps(spec, indent=1).encode(), spec_path)
    if _migrate_manifest(manifest, done.values()):
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
            for row in _iter_results(jobs, config, workers, hints):
                writer.writerow(row)
                fh.flush()  # one row per finished image: a crash loses at most the images in flight
                counts[row["status"]] += 1
                if row["status"] == "ok":
                    methods[row["method"]] += 1
                bar.update(1)
                bar.set_postfix(ok=counts["ok"], bad=sum(counts.values()) - counts["ok"], refresh=False)
        except WorkerDiedError as exc:
            raise WorkerDiedError(f"{exc}. The {sum(counts.values())} images this run finished before are in "
                                  f"{manifest}: run the same command again to do the rest (fewer --workers use less "
                                  "memory)") from None
        finally:
            bar.close()
    seconds = time.perf_counter() - start
    if jobs:  # each run's throughput and outcome, appended: the alignment figures of benchmarks/ read it
        run = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "images": len(jobs), "seconds": round(seconds, 2),
               "images_per_s": round(len(jobs) / seconds, 2) if seconds > 0 else None, "workers": workers,
               "status": dict(counts), "method": dict(methods)}
        with open(dst / RUNS_LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(run) + "\n")
    return PrepareResult(counts, skipped, seconds, manifest, methods)


@command("python -m facedata.prepare", interrupted="finished images are kept: run the same command again to resume")
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
    p.add_argument("--detect-max-side", type=int, default=defaults.detect_max_side_px, metavar="PX",
                   help=f"detect on a copy whose longer side is at most PX (default {defaults.detect_max_side_px}; "
                        "crops are cut from the full image): photos whose face fills the frame (CFP) stay fast at 640")
    p.add_argument("--detector", default=defaults.backend, metavar="NAME",
                   help=f"face detector: {', '.join(sorted(DETECTORS))} (default {defaults.backend}); yunet is faster, "
                        "align a benchmark set through it into its own folder (the folder's prepare.json records it)")
    p.add_argument("--pad", type=float, default=defaults.pad_frac, metavar="FRAC",
                   help="detect on a copy with a black border of FRAC x the longer side: for photos cropped tight "
                        "around the face (CFP: 0.3), where MTCNN's landmarks otherwise go wrong")
    add_max_megapixels_option(p)
    p.add_argument("--fallback", choices=[f for f in FALLBACKS if f], default=None,
                   help="centred: faces known to be at the image centre (LFW, CelebA crops) are never dropped: "
                        "the most central face is kept, a miss is retried with --relaxed-thresholds, then a "
                        "centred template crop is cut (the manifest's method column says which); hints: the "
                        "same for faces located by --hints (the detection on the hint box, else a template in it)")
    p.add_argument("--hints", type=Path, default=None,
                   help="with --fallback hints: CSV `source,x1,y1,x2,y2` (source relative to SRC) of each labelled "
                        "face (CFP: data/cfp/face_boxes.csv, written by `python -m facedata.fetch cfp`)")
    p.add_argument("--relaxed-thresholds", type=float, nargs=3, default=PrepareConfig.relaxed_thresholds,
                   help="MTCNN stage thresholds of the --fallback retry")
    p.add_argument("--retry-failed", action="store_true", help="re-try files the manifest lists as failed")
    p.add_argument("--limit", type=int, default=None, help="process at most N new files (quick trials)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.detect_max_side < 64:
        raise UsageError(f"--detect-max-side {args.detect_max_side} must be at least 64 pixels")
    if not 0 <= args.pad <= 1:  # also NaN
        raise UsageError(f"--pad {args.pad} must be a share of the photo's longer side in [0, 1] (0.3 for tight crops)")
    detector = DetectorConfig(thresholds=tuple(args.thresholds), min_face_size_px=args.min_face_size,
                              detect_max_side_px=args.detect_max_side, pad_frac=args.pad,
                              backend=check_detector_name(args.detector))
    config = PrepareConfig(method=args.method, size_px=args.size, detector=detector,
                           max_pixels=max_pixels_of(args.max_megapixels), fallback=args.fallback,
                           relaxed_thresholds=tuple(args.relaxed_thresholds),
                           hints=str(args.hints.resolve()) if args.hints else None)
    result = prepare_folder(args.src, args.dst, config, workers=args.workers,
                            retry_failed=args.retry_failed, progress=not args.no_progress, limit=args.limit)
    n = sum(result.counts.values())
    rate = n / result.seconds if result.seconds > 0 else 0.0
    summary = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "nothing new"
    if set(result.methods) - {detector.backend}:
        summary += " (" + ", ".join(f"{k} {v}" for k, v in sorted(result.methods.items())) + ")"
    print(f"{n} images in {result.seconds:.1f} s ({rate:.1f} img/s): {summary}; "
          f"{result.skipped} already done. Manifest: {result.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
