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
import csv
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .detect import DetectorConfig
from .errors import DatasetError, ImageReadError, ImageTooLargeError
from .io import DEFAULT_MAX_PIXELS

MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = [
    "source", "output", "status", "reason", "n_faces", "score",
    "x1", "y1", "x2", "y2", "landmarks", "width", "height",
]


@dataclass(frozen=True)
class PrepareConfig:
    """What an aligned-crop folder is made with (also written beside the crops as prepare.json)."""

    method: str = "arcface"  # alignment, one of facedata.align.ALIGNERS
    size_px: int = 112  # crop side; ArcFace-style models use 112, InceptionResnetV1 160
    detector: DetectorConfig = DetectorConfig()  # MTCNN thresholds, min face size, downscaling
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse larger images (decompression-bomb guard)
    jpeg_quality: int = 95  # crops are stored as JPEG like insightface's packs


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
    for row in csv.DictReader(text.splitlines()):
        if row.get("source") and row.get("status"):
            rows[row["source"]] = row
    return rows


# --- worker side -------------------------------------------------------------------------------------
_DETECTOR = None
_CONFIG: PrepareConfig | None = None


def _init_worker(config: PrepareConfig, threads: int) -> None:
    global _DETECTOR, _CONFIG
    import torch

    from .detect import FaceDetector

    torch.set_num_threads(max(1, threads))
    _CONFIG = config
    _DETECTOR = FaceDetector(config.detector)


def _process(job: tuple[str, str, str]) -> dict:
    """Detect, align and save one image; always returns a manifest row, never raises."""
    import numpy as np

    from .align import get_aligner
    from .io import write_bytes_atomic
    from .detect import pick_main_face
    from .io import load_image, save_image_atomic

    src_root, dst_root, rel = job
    cfg = _CONFIG
    row = {k: "" for k in MANIFEST_FIELDS}
    row["source"] = rel
    try:
        rgb = load_image(Path(src_root, rel), max_pixels=cfg.max_pixels)
        row["width"], row["height"] = rgb.shape[1], rgb.shape[0]
        faces = _DETECTOR.detect_rgb(rgb)
        row["n_faces"] = len(faces)
        face = pick_main_face(faces, rgb.shape)
        if face is None:
            row.update(status="no_face", reason="no face found by MTCNN")
            return row
        crop, _ = get_aligner(cfg.method)(rgb, face, size=cfg.size_px)
        out_rel = output_name(Path(rel))
        save_image_atomic(crop, Path(dst_root, out_rel), quality=cfg.jpeg_quality)
        x1, y1, x2, y2 = (float(v) for v in face.box)
        row.update(
            status="ok", output=str(out_rel), score=f"{float(face.score):.5f}",
            x1=f"{x1:.2f}", y1=f"{y1:.2f}", x2=f"{x2:.2f}", y2=f"{y2:.2f}",
            landmarks=" ".join(f"{v:.2f}" for v in np.asarray(face.landmarks).ravel()),
        )
        if len(faces) > 1:
            row["reason"] = f"{len(faces)} faces; kept the largest, most central"
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


def _iter_results(jobs: list[tuple[str, str, str]], config: PrepareConfig, workers: int) -> Iterator[dict]:
    if workers <= 0:
        _init_worker(config, threads=min(2, os.cpu_count() or 1))
        yield from map(_process, jobs)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(config, threads)) as pool:
        yield from pool.imap_unordered(_process, jobs, chunksize=2)


def prepare_folder(src: Path, dst: Path, config: PrepareConfig = PrepareConfig(), workers: int = 2,
                   retry_failed: bool = False, progress: bool = True, limit: int | None = None) -> PrepareResult:
    """Align every image under ``src`` into ``dst``; see the module docstring. Returns counts by status."""
    import json

    from tqdm import tqdm

    from .align import get_aligner
    from .io import write_bytes_atomic

    src, dst = Path(src).resolve(), Path(dst).resolve()
    get_aligner(config.method)  # unknown method: fail before any work
    if dst == src or src in dst.parents:
        raise DatasetError(f"{dst}: output folder is inside the source {src}; choose a folder outside it")
    files = list_source_files(src)
    outputs: dict[Path, Path] = {}
    for rel in files:
        other = outputs.setdefault(output_name(rel), rel)
        if other != rel:
            raise DatasetError(f"{src / other} and {src / rel} would both become {dst / output_name(rel)}; "
                               "rename one of them")
    dst.mkdir(parents=True, exist_ok=True)
    spec_path = dst / "prepare.json"
    spec = json.loads(json.dumps(asdict(config)))  # tuples become lists, as they read back from the file
    if spec_path.exists():
        old = json.loads(spec_path.read_text())
        if old != spec:
            diff = {k: (old.get(k), v) for k, v in spec.items() if old.get(k) != v}
            raise DatasetError(f"{dst} was prepared with other settings {diff} (old, new); use another output folder")
    else:
        write_bytes_atomic(json.dumps(spec, indent=1).encode(), spec_path)
    manifest = dst / MANIFEST_NAME
    done = read_manifest(manifest)
    todo = []
    for rel in files:
        row = done.get(str(rel))
        if row is None:
            todo.append(rel)
        elif row["status"] == "ok" and not (dst / row["output"]).exists():
            todo.append(rel)  # crop deleted since: redo it
        elif row["status"] != "ok" and retry_failed:
            todo.append(rel)
    skipped = len(files) - len(todo)  # finished before this run (not those a --limit leaves for later)
    if limit is not None:
        todo = todo[:limit]
    counts: Counter = Counter()
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
                bar.update(1)
                bar.set_postfix(ok=counts["ok"], bad=sum(counts.values()) - counts["ok"], refresh=False)
        finally:
            bar.close()
    return PrepareResult(counts, skipped, time.perf_counter() - start, manifest)


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
    p.add_argument("--retry-failed", action="store_true", help="re-try files the manifest lists as failed")
    p.add_argument("--limit", type=int, default=None, help="process at most N new files (quick trials)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(list(argv) if argv is not None else None)
    detector = DetectorConfig(thresholds=tuple(args.thresholds), min_face_size_px=args.min_face_size)
    config = PrepareConfig(method=args.method, size_px=args.size, detector=detector,
                           max_pixels=int(args.max_megapixels * 1e6))
    try:
        result = prepare_folder(args.src, args.dst, config, workers=args.workers,
                                retry_failed=args.retry_failed, progress=not args.no_progress, limit=args.limit)
    except (DatasetError, KeyError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished images are kept; run the same command again to resume", file=sys.stderr)
        return 130
    n = sum(result.counts.values())
    rate = n / result.seconds if result.seconds > 0 else 0.0
    summary = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "nothing new"
    print(f"{n} images in {result.seconds:.1f} s ({rate:.1f} img/s): {summary}; "
          f"{result.skipped} already done. Manifest: {result.manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
