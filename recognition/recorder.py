"""Outputs of a recognition run, none of which loses what was captured: the recording (gif or mp4) and
the per-face CSV log. Both are written to a temporary file next to the target and renamed into place on
``close()``, which the run calls on q, Ctrl+C, --max-frames, the end of a video or an error.

A gif cannot be appended to, so its frames are spooled to a raw file on disk (not memory: an hour of
640x480 is 80 GB of RAM otherwise) and encoded at the end.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facedata.draw import letterbox
from facedata.io import publish_file

OUTPUT_SUFFIXES = (".gif", ".mp4")


def check_output_path(path: str | Path) -> Path:
    """The recording path, refused unless it ends in .gif or .mp4 (checked before any work starts)."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"-output_path {path}: the recording must end in .gif or .mp4 (or be 'none': no recording)")
    return path


class Recorder:
    """Collects drawn RGB frames and writes ``path`` (.gif, ``frame_ms`` a frame; or .mp4) on close.
    ``max_side_px`` downsizes the recording and ``every`` keeps one frame in N (a smaller gif); neither
    changes what is recognised."""

    def __init__(self, path: str | Path, frame_ms: int = 100, max_side_px: int | None = None, every: int = 1) -> None:
        self.path = check_output_path(path)
        if frame_ms <= 0 or every < 1:
            raise ValueError(f"frame_ms and every must be positive, got {frame_ms}, {every}")
        self.every = every
        self._seen = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frame_ms = frame_ms
        self.max_side_px = max_side_px
        self.frames = 0
        self._size: tuple[int, int] | None = None  # (w, h) of the recording, set by the first frame
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial")
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer: cv2.VideoWriter | None = None
        self._spool = None
        self.closed = False

    def add(self, rgb: np.ndarray) -> None:
        self._seen += 1
        if (self._seen - 1) % self.every:
            return
        if self._size is None:
            h, w = rgb.shape[:2]
            s = min(1.0, self.max_side_px / max(h, w)) if self.max_side_px else 1.0
            self._size = (max(2, round(w * s)) // 2 * 2, max(2, round(h * s)) // 2 * 2)  # even: codecs need it
            if self.path.suffix.lower() == ".mp4":
                tmp_mp4 = self._tmp.with_suffix(".partial.mp4")
                self._tmp.unlink(missing_ok=True)
                self._tmp = tmp_mp4
                self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"),
                                               1000.0 / self.frame_ms, self._size)
                if not self._writer.isOpened():
                    raise OSError(f"{self.path}: OpenCV cannot write mp4 here; use a .gif output path")
            else:
                self._spool = open(self._tmp, "wb")
        frame = letterbox(rgb, self._size)  # image folders vary in size
        if self._writer is not None:
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        else:
            self._spool.write(np.ascontiguousarray(frame).tobytes())
        self.frames += 1

    def close(self) -> Path | None:
        """Write the recording; returns its path, or None when no frame was captured."""
        if self.closed:
            return self.path if self.frames else None
        self.closed = True
        try:
            if self._writer is not None:
                self._writer.release()
                publish_file(self._tmp, self.path)
                return self.path
            if self._spool is None:
                return None
            self._spool.close()
            w, h = self._size
            frames = np.memmap(self._tmp, np.uint8, "r", shape=(self.frames, h, w, 3))
            _write_gif(frames, self.path, self.frame_ms)
            del frames
            return self.path
        finally:
            self._tmp.unlink(missing_ok=True)


def _write_gif(frames: np.ndarray, path: Path, frame_ms: int) -> None:
    """Frames -> looping gif, atomically. One palette per frame (Pillow's default adaptive quantiser)."""
    from PIL import Image

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.gif")
    os.close(fd)
    try:
        images = (Image.fromarray(np.asarray(f)) for f in frames)
        first = next(images)
        first.save(tmp, save_all=True, append_images=images, duration=frame_ms, loop=0, optimize=False)
        publish_file(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


LOG_FIELDS = ("frame", "time_s", "track", "x1", "y1", "x2", "y2", "name", "similarity", "embedded")


class FaceLog:
    """A CSV row per face per frame, flushed every frame, renamed into place on close."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        self._fh = open(self._tmp, "w", newline="")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(LOG_FIELDS)
        self.rows = 0

    def write(self, rows: list[tuple]) -> None:
        self._csv.writerows(rows)
        self._fh.flush()
        self.rows += len(rows)

    def close(self) -> Path:
        if not self._fh.closed:
            self._fh.close()
            publish_file(self._tmp, self.path)
        return self.path
