"""Where frames come from: a camera index, a video file, one image or a folder of images, read on a
separate thread so that decoding overlaps recognition.

Every source yields :class:`Frame` objects holding RGB uint8 arrays (OpenCV's BGR is converted here,
once). A live camera drops the frames that arrive while recognition is busy (the newest frame wins, so
the picture never lags behind); a file is never dropped from, so a run on a file is reproducible.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facedata.errors import FaceDataError, ImageReadError
from facedata.io import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, image_files, is_image_file, load_image


class SourceError(FaceDataError):
    """A camera that does not open, or a video, image or folder that cannot be read."""


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source (dropped frames leave gaps)
    rgb: np.ndarray
    read_time: float  # time.perf_counter() when the frame was read: latency is measured from here
    name: str = ""  # the file name, for image folders


class FrameSource:
    """Base class: ``frames()`` yields Frame objects; ``live`` sources may drop frames."""

    live = False
    fps: float | None = None  # frames per second of a video or camera, when known
    description = ""

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class VideoSource(FrameSource):
    """A camera (``int`` index) or a video file, through OpenCV."""

    def __init__(self, spec: int | Path) -> None:
        self.live = isinstance(spec, int)
        self.description = f"camera {spec}" if self.live else str(spec)
        self._cap = cv2.VideoCapture(spec if self.live else str(spec))
        if not self._cap.isOpened():
            self._cap.release()
            if self.live:
                raise SourceError(f"camera {spec} does not open: there is no camera at that index or another "
                                  f"program holds it. Try another index (-cam 1), or pass a video file, an image "
                                  f"or a folder of images with -cam")
            raise SourceError(f"{spec}: OpenCV cannot open this video (not a video, or a codec this OpenCV "
                              f"build lacks); convert it to H.264 mp4, or pass an image or a folder of images")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._cap.release()
            raise SourceError(f"{self.description}: no frame could be read (an empty or damaged video, or a "
                              f"camera that gives no picture)")
        self._first = bgr

    def frames(self) -> Iterator[Frame]:
        index = 0
        bgr = self._first
        while bgr is not None:
            yield Frame(index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.perf_counter())
            index += 1
            ok, bgr = self._cap.read()
            if not ok:
                break

    def close(self) -> None:
        self._cap.release()


class ImageSource(FrameSource):
    """One image, or the images of a folder in name order; an unreadable image in a folder (damaged, too
    large, a broken link or a link loop) is reported and skipped. A single image is read when the source
    opens, so a bad one stops the run before the model loads."""

    def __init__(self, path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.description = str(path)
        self.max_pixels = max_pixels
        self._first: np.ndarray | None = None
        if path.is_dir():
            self.paths = image_files(path)
            if not self.paths:
                raise SourceError(f"{path}: the folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        else:
            self.paths = [path]
            try:
                self._first = load_image(path, max_pixels=max_pixels)
            except ImageReadError as exc:
                raise SourceError(str(exc)) from exc
        self.skipped: list[tuple[str, str]] = []

    def frames(self) -> Iterator[Frame]:
        if self._first is not None:
            yield Frame(0, self._first, time.perf_counter(), self.paths[0].name)
            return
        for index, p in enumerate(self.paths):
            try:
                rgb = load_image(p, max_pixels=self.max_pixels)
            except ImageReadError as exc:
                self.skipped.append((str(p), exc.detail))
                continue
            yield Frame(index, rgb, time.perf_counter(), p.name)


def open_source(cam: str | int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> FrameSource:
    """A camera index ("0"), a video file, an image file or a folder of images (images above
    ``max_pixels`` are refused, see ``--max-megapixels``)."""
    if isinstance(cam, int) or str(cam).strip().lstrip("-").isdigit():
        return VideoSource(int(cam))
    path = Path(cam).expanduser()
    if not os.path.lexists(path):  # a dangling link or a link loop exists: the image reader says what it is
        raise SourceError(f"{path}: no such file or folder. -cam takes a camera index (0), a video file, an "
                          f"image or a folder of images")
    if path.is_dir() or is_image_file(path):
        return ImageSource(path, max_pixels)
    return VideoSource(path)


class ThreadedReader:
    """Reads a source on a daemon thread into a small queue. For a live source the queue keeps only the
    newest frame (older ones are dropped and counted); for files the reader waits, so nothing is dropped."""

    _END = object()

    def __init__(self, source: FrameSource, prefetch: int = 4) -> None:
        self.source = source
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=1 if source.live else prefetch)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self.source.frames():
                if self._stop.is_set():
                    return
                if self.source.live:
                    try:
                        self._queue.get_nowait()  # drop the stale frame: the newest wins
                        self.dropped += 1
                    except queue.Empty:
                        pass
                    self._queue.put(frame)
                else:
                    while not self._stop.is_set():
                        try:
                            self._queue.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as exc:  # handed to the consumer, raised there
            self._error = exc
        finally:
            while not self._stop.is_set():
                try:
                    self._queue.put(self._END, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is self._END:
                if self._error is not None:
                    raise self._error
                return
            # A file frame waiting in the prefetch queue is not late (the file is read ahead of need);
            # latency counts from when it is taken. A live frame's clock started when the camera gave it.
            yield item if self.source.live else replace(item, read_time=time.perf_counter())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.source.close()


def iterate(source: FrameSource, threaded: bool = True) -> tuple[Iterator[Frame], "ThreadedReader | None"]:
    """Frames of ``source``, through a ThreadedReader when ``threaded`` (close it when done)."""
    if threaded:
        reader = ThreadedReader(source)
        return iter(reader), reader
    return source.frames(), None
