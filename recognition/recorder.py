"""Outputs of a recognition run, none of which loses what was captured: the recording (gif or mp4) and
the per-face CSV log. Both are written into a hidden temporary file next to the target
(:func:`facedata.io.atomic_output`) and renamed into place on ``close()``, which the run calls on q,
Ctrl+C, --max-frames, the end of a video or an error. Where that rename fails, the data is moved to a
visible ``<name>.unsaved-<time>`` file and ``warning`` says where: a recording is never thrown away.

The recording is encoded while it is made: a background thread appends each frame to the gif (or mp4)
as it comes, so closing only writes the frames still queued (a bounded queue: at most
``QUEUE_FRAMES``, well under a second of encoding). A process killed with SIGKILL leaves its hidden
temporary file behind; :func:`facedata.io.leftover_temps` finds it on the next run.
"""
from __future__ import annotations

import csv
import queue
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import GifImagePlugin, Image

from facedata.cli import at_least
from facedata.draw import letterbox
from facedata.errors import OutputNotSavedError
from facedata.io import atomic_output, create_output_file

OUTPUT_SUFFIXES = (".gif", ".mp4")
# Frames waiting for the encoder. A full queue makes add() wait (the live loop slows down rather than
# memory growing); 32 frames of 640x480 are 30 MB and about 0.2 s of gif encoding on one core.
QUEUE_FRAMES = 32


def check_output_path(path: str | Path) -> Path:
    """The recording path, refused before any work starts unless it ends in .gif or .mp4 and can be
    written: not a folder, its folder created now, a name short enough for the temporary file it is
    written under first."""
    return create_output_file(path, "-output_path", suffixes=OUTPUT_SUFFIXES)


def check_recording_options(frame_ms: int, max_side_px: int | None, every: int,
                            names: tuple[str, str, str] = ("frame_ms", "max_side_px", "every")) -> None:
    """Refuse recording settings no recording can have with a ``UsageError`` naming each by ``names``: the
    :class:`Recorder` parameters, or a command line's flags (it checks them before any work)."""
    at_least(names[0], frame_ms, 1)
    at_least(names[1], max_side_px, 2)  # the smallest even frame (codecs need even sizes)
    at_least(names[2], every, 1)


class _FrameWriter(Protocol):
    def write(self, rgb: np.ndarray) -> None: ...

    def close(self) -> None: ...


class GifStreamWriter:
    """Appends frames to a looping gif file as they come: the header once, then per frame a local
    256-colour palette (Pillow's fast octree quantiser: 3 ms for 640x480 against 40 ms for the default
    median cut) and Pillow's LZW data; the trailer on close. A file cut short still plays up to its last
    complete frame."""

    def __init__(self, path: Path, size: tuple[int, int], frame_ms: int) -> None:
        self.frame_ms = frame_ms
        self._fh = open(path, "wb")
        w, h = size
        # GIF89a, logical screen w x h, no global colour table (every frame brings its own), NETSCAPE loop.
        self._fh.write(b"GIF89a" + w.to_bytes(2, "little") + h.to_bytes(2, "little") + bytes([0x70, 0, 0]))
        self._fh.write(b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")

    def write(self, rgb: np.ndarray) -> None:
        im = Image.fromarray(rgb).quantize(256, method=Image.Quantize.FASTOCTREE)
        for chunk in GifImagePlugin.getdata(im, duration=self.frame_ms, include_color_table=True):
            self._fh.write(chunk)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.write(b";")
            self._fh.close()


class Mp4Writer:
    """OpenCV's mp4v writer, fed RGB frames."""

    def __init__(self, path: Path, size: tuple[int, int], frame_ms: int) -> None:
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 1000.0 / frame_ms, size)
        if not self._writer.isOpened():
            raise OSError("OpenCV cannot write mp4 here; use a .gif output path")

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()


class Recorder:
    """Collects drawn RGB frames and writes ``path`` (.gif, ``frame_ms`` a frame; or .mp4), encoding on a
    background thread as frames come. ``max_side_px`` downsizes the recording and ``every`` keeps one
    frame in N (a smaller gif); neither changes what is recognised."""

    def __init__(self, path: str | Path, frame_ms: int = 100, max_side_px: int | None = None, every: int = 1,
                 queue_frames: int = QUEUE_FRAMES) -> None:
        check_recording_options(frame_ms, max_side_px, every)
        self.path = check_output_path(path)
        self.every = every
        self.frame_ms = frame_ms
        self.max_side_px = max_side_px
        self.frames = 0  # frames handed to the encoder
        self.saved_to: Path | None = None  # where the recording lies after close()
        self.warning: str | None = None  # set when it could not be written at ``path``
        self.closed = False
        self._seen = 0
        self._size: tuple[int, int] | None = None  # (w, h) of the recording, set by the first frame
        self._queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._error: BaseException | None = None

    def add(self, rgb: np.ndarray) -> None:
        """Queue a frame for the encoder (waits while the queue is full); raises the encoder's error."""
        self._seen += 1
        if (self._seen - 1) % self.every:
            return
        if self._size is None:
            h, w = rgb.shape[:2]
            s = min(1.0, self.max_side_px / max(h, w)) if self.max_side_px else 1.0
            self._size = (max(2, round(w * s)) // 2 * 2, max(2, round(h * s)) // 2 * 2)  # even: codecs need it
            self._start()
        frame = letterbox(rgb, self._size)  # image folders vary in size
        if frame is rgb:
            frame = rgb.copy()  # the encoder reads it later; the caller may reuse its buffer
        if not self._put(frame):
            raise OSError(f"{self.path}: the recording stopped: {self._error}")
        self.frames += 1

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._encode, name="recorder", daemon=True)
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            self._thread.join()
            raise OSError(f"{self.path}: cannot record: {self._error}")

    def _encode(self) -> None:
        """The encoder thread: the whole recording is one atomic_output, published when the end mark comes."""
        try:
            with atomic_output(self.path, keep_on_error=True) as tmp:
                opener = Mp4Writer if self.path.suffix.lower() == ".mp4" else GifStreamWriter
                writer: _FrameWriter = opener(tmp, self._size, self.frame_ms)
                self._opened.set()
                try:
                    while (frame := self._queue.get()) is not None:
                        writer.write(frame)
                finally:
                    writer.close()
            self.saved_to = self.path
        except OutputNotSavedError as exc:
            self._error = exc
            self.saved_to = Path(exc.kept) if exc.kept else None
        except BaseException as exc:  # handed to the recording thread by add() / close()
            self._error = exc
        finally:
            self._opened.set()

    def _put(self, item: np.ndarray | None) -> bool:
        """Queue ``item`` unless the encoder has stopped; False when it has."""
        while self._thread is not None and self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> Path | None:
        """Finish the recording; returns where it lies (``path``, or where it was kept when ``path`` could not
        be written, see ``warning``), or None when no frame was captured."""
        if self.closed:
            return self.saved_to
        self.closed = True
        if self._thread is None:
            return None
        self._put(None)  # the end mark: the encoder writes what is queued, then publishes
        self._thread.join()
        if isinstance(self._error, OutputNotSavedError):
            self.warning = f"recording: {self._error}"
        elif self._error is not None:
            self.warning = f"recording {self.path} failed: {self._error}"
        return self.saved_to


LOG_FIELDS = ("frame", "time_s", "track", "x1", "y1", "x2", "y2", "name", "similarity", "embedded")


class FaceLog:
    """A CSV row per face per frame, flushed every frame into a hidden temporary file (its own, never
    another run's), renamed into place on close."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.saved_to: Path | None = None
        self.warning: str | None = None
        self._out = ExitStack()
        tmp = self._out.enter_context(atomic_output(self.path, keep_on_error=True))
        self._fh = self._out.enter_context(open(tmp, "w", newline=""))
        self._csv = csv.writer(self._fh)
        self._csv.writerow(LOG_FIELDS)
        self.rows = 0

    def write(self, rows: list[tuple]) -> None:
        self._csv.writerows(rows)
        self._fh.flush()
        self.rows += len(rows)

    def close(self) -> Path | None:
        """Publish the log; returns where it lies (see ``warning`` when that is not ``path``)."""
        if self._fh.closed:
            return self.saved_to
        try:
            self._out.close()  # closes the file, then renames it into place
            self.saved_to = self.path
        except OutputNotSavedError as exc:
            self.saved_to = Path(exc.kept) if exc.kept else None
            self.warning = f"log: {exc}"
        return self.saved_to
