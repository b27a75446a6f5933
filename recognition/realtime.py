"""The recognition loop behind ``real-time-recognition.py``: frames in, named boxes out, fast on a CPU.

Speed comes from four choices, each switchable (:class:`SpeedOptions`): detection runs on a downscaled
copy of the frame; every face of a frame is embedded in one batch; faces are tracked between detections
(IoU), so detection runs every N frames and a tracked face is embedded again only when it is new, every
M frames, or after it moved; frames are read on a separate thread.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from facedata.detect import DetectorConfig, Face, FaceDetector
from facedata.draw import draw_faces, line_width
from models_definition.zoo import FaceEmbedder

from .embed import embed_faces
from .gallery import UNKNOWN, Gallery
from .recorder import FaceLog, Recorder
from .sources import Frame
from .tracker import IoUTracker, Track

KNOWN_COLOUR = (0, 200, 0)  # RGB
UNKNOWN_COLOUR = (220, 30, 30)


@dataclass(frozen=True)
class SpeedOptions:
    """How much work each frame does. The defaults keep a 640x480 stream above 25 FPS on 2 CPU cores
    with MobileFaceNet (benchmarks/README.md); ``SpeedOptions.seed_style()`` is the slow reference."""

    # Detect on a copy this much smaller (MTCNN's cost grows with pixels); landmarks are mapped back and
    # faces aligned on the full-resolution frame.
    detect_scale: float = 0.5
    # Detect every N frames; between detections tracked faces keep their box and name.
    detect_every: int = 3
    # Embed a tracked face again after this many frames (a name can change when a person turns).
    reembed_every: int = 15
    # Embed again when the box moved so much that its IoU with the box embedded falls below this.
    reembed_below_iou: float = 0.5
    # Follow faces between detections; False detects and embeds every face on every frame.
    track: bool = True
    # Read frames on a separate thread.
    threaded_reader: bool = True
    # Embed all faces of a frame in one batch; False embeds them one at a time (the seed's loop).
    batch_embed: bool = True

    def __post_init__(self) -> None:
        if not 0.05 <= self.detect_scale <= 1.0:
            raise ValueError(f"detect_scale must be in [0.05, 1], got {self.detect_scale}")
        if self.detect_every < 1 or self.reembed_every < 1:
            raise ValueError(f"detect_every and reembed_every must be >= 1, got {self.detect_every}, "
                             f"{self.reembed_every}")

    @classmethod
    def seed_style(cls) -> "SpeedOptions":
        """The seed script's loop: full-frame detection every frame, one face at a time, no tracking."""
        return cls(detect_scale=1.0, detect_every=1, reembed_every=1, track=False, threaded_reader=False,
                   batch_embed=False)


@dataclass
class FaceResult:
    """One face in one frame: where, who, how sure, and whether it was embedded on this frame."""

    face: Face
    name: str
    similarity: float
    track: int = -1
    embedded: bool = False


class Recognizer:
    """Per-frame recognition: ``process(rgb, frame_index) -> [FaceResult]``."""

    def __init__(self, embedder: FaceEmbedder, gallery: Gallery, threshold: float,
                 detector_config: DetectorConfig, speed: SpeedOptions = SpeedOptions()) -> None:
        self.embedder = embedder
        self.gallery = gallery
        self.threshold = float(threshold)
        self.speed = speed
        self.detector = FaceDetector(replace(detector_config, detect_scale=speed.detect_scale))
        self.tracker = IoUTracker()
        self.timings: Counter = Counter()  # seconds spent per stage: detect, embed, match
        self._tracks: list[Track] = []
        self._since_detect: int | None = None  # frames processed since the last detection (None: never)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        t = time.perf_counter()
        faces = self.detector.detect_rgb(rgb)  # on the downscaled copy SpeedOptions.detect_scale asks for
        self.timings["detect"] += time.perf_counter() - t
        return faces

    def identify(self, rgb: np.ndarray, faces: list[Face]) -> list[tuple[str, float]]:
        """(name, similarity) per face: embedded in one batch (or one by one), matched to the gallery."""
        if not faces:
            return []
        t = time.perf_counter()
        if self.speed.batch_embed:
            emb = embed_faces(rgb, faces, self.embedder)
        else:
            emb = np.concatenate([embed_faces(rgb, [f], self.embedder) for f in faces])
        t2 = time.perf_counter()
        matches = self.gallery.match(emb, self.threshold)
        self.timings["embed"] += t2 - t
        self.timings["match"] += time.perf_counter() - t2
        return [(m.name, m.similarity) for m in matches]

    def process(self, rgb: np.ndarray, frame_index: int) -> list[FaceResult]:
        if not self.speed.track:
            faces = self.detect(rgb)
            return [FaceResult(f, n, s, -1, True) for f, (n, s) in zip(faces, self.identify(rgb, faces))]
        # Counted in processed frames, not frame indices: a live source drops frames and leaves gaps.
        if self._since_detect is None or self._since_detect + 1 >= self.speed.detect_every:
            self._since_detect = 0
            self._tracks = self.tracker.update(self.detect(rgb))
            due = [t for t in self._tracks if t.needs_embedding(frame_index, self.speed.reembed_every,
                                                                 self.speed.reembed_below_iou)]
            for t, (name, sim) in zip(due, self.identify(rgb, [t.face for t in due])):
                t.name, t.similarity = name, sim
                t.embedded_frame, t.embedded_box = frame_index, t.face.box.copy()
            fresh = {t.id for t in due}
        else:
            self._since_detect += 1
            fresh = set()
        return [FaceResult(t.face, t.name, t.similarity, t.id, t.id in fresh) for t in self._tracks]


def draw_results(rgb: np.ndarray, results: Sequence[FaceResult], landmarks: bool, fps: float | None) -> np.ndarray:
    """A copy of the frame with a box, name and score per face (green known, red Unknown), landmarks
    when asked, and the FPS figure in the corner."""
    labels = [r.name if not math.isfinite(r.similarity) else f"{r.name} {r.similarity:.2f}" for r in results]
    colours = [UNKNOWN_COLOUR if r.name == UNKNOWN else KNOWN_COLOUR for r in results]
    out = draw_faces(rgb, [r.face for r in results], labels, landmarks, colours=colours)
    if fps is not None:
        thick = line_width(out)
        cv2.putText(out, f"{fps:.1f} FPS", (8, 8 + int(11 * thick)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick,
                    (255, 255, 0), thick, cv2.LINE_AA)
    return out


@dataclass
class RunSummary:
    """What a run did: frames, speed, and per person the frames they were named in."""

    frames: int = 0
    frames_with_faces: int = 0
    frames_unknown: int = 0  # frames with at least one Unknown face
    frames_by_name: Counter = field(default_factory=Counter)  # frames each gallery person was named in
    dropped: int = 0  # live frames dropped while recognition was busy
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # frame read -> labels drawn
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stopped_by: str = "end"
    output: str | None = None
    log: str | None = None
    warnings: list[str] = field(default_factory=list)  # an output kept elsewhere than asked, and why

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def to_dict(self) -> dict:
        return {"frames": self.frames, "frames_with_faces": self.frames_with_faces,
                "frames_unknown": self.frames_unknown, "frames_by_name": dict(sorted(self.frames_by_name.items())),
                "dropped": self.dropped, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2),
                "latency_ms_median": round(self.latency_ms(50), 2), "latency_ms_p95": round(self.latency_ms(95), 2),
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
                "stopped_by": self.stopped_by, "output": self.output, "log": self.log, "warnings": self.warnings}

    def report(self) -> str:
        lines = [f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS), stopped by {self.stopped_by}; "
                 f"latency median {self.latency_ms(50):.0f} ms, p95 {self.latency_ms(95):.0f} ms"
                 + (f"; {self.dropped} live frames dropped" if self.dropped else ""),
                 f"frames with a face: {self.frames_with_faces}; with an Unknown face: {self.frames_unknown}"]
        lines += [f"  {name}: named in {n} frames" for name, n in sorted(self.frames_by_name.items())]
        if self.output:
            lines.append(f"recording: {self.output}")
        if self.log:
            lines.append(f"log: {self.log}")
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def run(frames: Iterable[Frame], recognizer: Recognizer, recorder: Recorder | None = None,
        log: FaceLog | None = None, max_frames: int | None = None, landmarks: bool = True,
        show: Callable[[np.ndarray], bool] | None = None) -> RunSummary:
    """Recognise every frame, draw, record and log it. ``show(frame_rgb)`` displays a frame and returns
    False when the user asked to quit. Outputs are closed (written) however the loop ends: q, Ctrl+C,
    ``max_frames``, the end of the source, or an error (which is raised after the outputs are saved)."""
    summary = RunSummary()
    summary.frames_by_name.update({p: 0 for p in recognizer.gallery.people})  # people never seen show as 0
    start = time.perf_counter()
    recent: list[float] = []  # end times of the last frames, for the live FPS figure
    try:
        for frame in frames:
            results = recognizer.process(frame.rgb, frame.index)
            now = time.perf_counter()
            recent = [t for t in recent[-29:]] + [now]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else None
            drawn = draw_results(frame.rgb, results, landmarks, fps)
            summary.latencies_ms.append((time.perf_counter() - frame.read_time) * 1000.0)
            summary.frames += 1
            if results:
                summary.frames_with_faces += 1
                names = {r.name for r in results}
                summary.frames_unknown += UNKNOWN in names
                summary.frames_by_name.update(names - {UNKNOWN, ""})
            if log is not None:
                t = frame.read_time - start
                log.write([(frame.index, f"{t:.3f}", r.track, *(f"{float(v):.1f}" for v in r.face.box), r.name,
                            f"{r.similarity:.4f}" if math.isfinite(r.similarity) else "", int(r.embedded)) for r in results])
            if recorder is not None:
                recorder.add(drawn)
            if show is not None and not show(drawn):
                summary.stopped_by = "q"
                break
            if max_frames is not None and summary.frames >= max_frames:
                summary.stopped_by = "max-frames"
                break
    except KeyboardInterrupt:
        summary.stopped_by = "Ctrl+C"
    except BaseException:
        summary.stopped_by = "error"
        raise
    finally:
        summary.seconds = time.perf_counter() - start
        summary.stage_seconds = dict(recognizer.timings)
        # Each output says where it lies: its path, or where its data was kept when that failed.
        try:
            if log is not None:
                where = log.close()
                summary.log = str(where) if where else None
        finally:  # a log that cannot be closed must not cost the recording
            if recorder is not None:
                out = recorder.close()
                summary.output = str(out) if out else None
            summary.warnings += [w for w in (getattr(log, "warning", None), getattr(recorder, "warning", None)) if w]
    return summary
