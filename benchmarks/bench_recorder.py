"""The wait for the recording after the stream ends: old approach (spool raw frames, encode the gif at
the end) against the recorder that encodes while recording, in the same run.

Frames are the real 640x480 frames of data/sample_video.mp4 (cycled), handed over at the stream's rate
(``--fps``, 10 by default: 600 frames are one minute), as the real-time loop hands them over. The time
measured is from the last frame handed over ("stream ended") to the gif renamed into place ("file
written").

- **naive (old)**: the recorder before issue 12: raw frames appended to a spool file, then at the end a
  memmap of it through Pillow's ``save(save_all=True, append_images=...)`` (default median-cut palette
  per frame), written to a temporary file and renamed.
- **naive + fast palette**: the same, encoding with the new gif writer at the end (to separate what the
  quantiser buys from what encoding during the stream buys).
- **recorder (new)**: ``recognition.recorder.Recorder``, frames encoded by a background thread as they come.

    python benchmarks/bench_recorder.py [--frames 600] [--fps 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # config.py, whether or not the project is installed
from _common import record  # noqa: E402

import config  # noqa: E402
from recognition.recorder import GifStreamWriter, Recorder  # noqa: E402


def load_frames(video: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    src = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        src.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return [src[i % len(src)] for i in range(n)]


def paced(frames: list[np.ndarray], fps: float):
    """Yield frames no faster than ``fps`` (0: as fast as they are taken)."""
    start = time.perf_counter()
    for i, f in enumerate(frames):
        if fps > 0:
            wait = start + i / fps - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        yield f


class NaiveSpoolRecorder:
    """The old recorder, kept as the reference: spool raw RGB to disk, encode everything on close."""

    def __init__(self, path: Path, frame_ms: int, fast_palette: bool = False) -> None:
        self.path, self.frame_ms, self.fast = path, frame_ms, fast_palette
        fd, self._spool_path = tempfile.mkstemp(dir=path.parent, suffix=".partial")
        self._spool = os.fdopen(fd, "wb")
        self.frames, self._size = 0, None

    def add(self, rgb: np.ndarray) -> None:
        self._size = rgb.shape[:2]
        self._spool.write(np.ascontiguousarray(rgb).tobytes())
        self.frames += 1

    def close(self) -> Path:
        self._spool.close()
        h, w = self._size
        frames = np.memmap(self._spool_path, np.uint8, "r", shape=(self.frames, h, w, 3))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp.gif")
        os.close(fd)
        if self.fast:
            writer = GifStreamWriter(Path(tmp), (w, h), self.frame_ms)
            for f in frames:
                writer.write(np.asarray(f))
            writer.close()
        else:
            images = (Image.fromarray(np.asarray(f)) for f in frames)
            first = next(images)
            first.save(tmp, save_all=True, append_images=images, duration=self.frame_ms, loop=0, optimize=False)
        del frames
        os.replace(tmp, self.path)
        os.unlink(self._spool_path)
        return self.path


def measure(make, frames: list[np.ndarray], fps: float) -> dict:
    rec = make()
    t0 = time.perf_counter()
    for f in paced(frames, fps):
        rec.add(f)
    ended = time.perf_counter()
    path = rec.close()
    done = time.perf_counter()
    with Image.open(path) as gif:
        n = gif.n_frames
        gif.seek(n // 2)
        err = float(np.abs(np.asarray(gif.convert("RGB"), np.float32) - frames[n // 2]).mean())
    return {"stream_s": round(ended - t0, 2), "wait_after_end_s": round(done - ended, 3), "frames": n,
            "mb": round(path.stat().st_size / 1e6, 1), "mean_abs_error": round(err, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--fps", type=float, default=10.0, help="stream rate; 0 hands frames over as fast as possible")
    args = p.parse_args()
    frames = load_frames(config.SAMPLE_VIDEO, args.frames)
    h, w = frames[0].shape[:2]
    print(f"{args.frames} frames of {w}x{h} at {args.fps:g} FPS ({args.frames / args.fps:.0f} s of stream)"
          if args.fps else f"{args.frames} frames of {w}x{h}, unpaced")
    results = {}
    with tempfile.TemporaryDirectory(dir=config.GIFS_DIR) as d:
        d = Path(d)
        runs = {
            "naive (old): spool, Pillow save_all at the end": lambda: NaiveSpoolRecorder(d / "a.gif", 100),
            "naive + fast palette: spool, new gif writer at the end":
                lambda: NaiveSpoolRecorder(d / "b.gif", 100, fast_palette=True),
            "recorder (new): encoded while recording": lambda: Recorder(d / "c.gif", 100),
        }
        for name, make in runs.items():
            results[name] = r = measure(make, frames, args.fps)
            print(f"{name:58s} wait after the stream {r['wait_after_end_s']:7.3f} s  ({r['frames']} frames, "
                  f"{r['mb']} MB, mean abs error {r['mean_abs_error']})")
    old, new = (results[k]["wait_after_end_s"] for k in (list(runs)[0], list(runs)[2]))
    print(f"wait cut {old / max(new, 1e-3):.0f}x")
    print("wrote", record("recorder", {"frames": args.frames, "fps": args.fps, "size": [w, h], "results": results}))


if __name__ == "__main__":
    main()
