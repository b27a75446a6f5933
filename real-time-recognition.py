"""Live face recognition against people_faces/: a camera, a video file, one image or a folder of images.

    python real-time-recognition.py                       # the small model shipped in the repository, camera 0
    python real-time-recognition.py -model_name=ce-efficientnet
    python real-time-recognition.py -model_name=sface -cam data/sample_video.mp4 -output_path gifs/demo.gif --no-display

Every face gets a box, a name and a cosine similarity ("Unknown" below the model's threshold); the
recording (gif, 100 ms a frame, or mp4) and the optional CSV log are written when you press q, on Ctrl+C,
at --max-frames or at the end of the video. Nothing runs at import.

Outputs: -output_path, --log and --summary are checked before the model loads (a folder, or a place that
cannot be written, is refused). The recording is encoded while it is made, so it is ready at once when
the stream ends; a recording (or log) that cannot be renamed into place at the end is kept as
<name>.unsaved-<time>.<ext> next to it, and the run says where. An existing --log file is refused unless
--overwrite (a log is never replaced silently); the recording and the summary are replaced. A run that
was killed (SIGKILL, power loss) leaves hidden files .<name>.*.tmp.* next to its outputs: the next run
lists them and how to delete them, and --clean-partials deletes them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from facedata.cli import command, error_message
from models_definition.onnx_backend import add_backend_option


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The seed script's flags, kept as written, and the options added since."""
    from facedata.io import add_max_megapixels_option

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-model_name", default=None, help="a model name in config.MODELS (default: config.DEFAULT_MODEL, "
                   "the small model shipped in the repository)")
    p.add_argument("-device", default=None, help="cpu or cuda (default: cuda when available)")
    add_backend_option(p)
    p.add_argument("-cam", default="0", help="camera index, or a video file, an image or a folder of images")
    p.add_argument("-people_faces", default=None, help="gallery folder: <name>.jpg or <name>/*.jpg "
                   "(default: config.PEOPLE_FACES)")
    p.add_argument("-output_path", default=None, help="recording written at the end, .gif or .mp4 "
                   "(default: gifs/output.gif); 'none' records nothing")
    p.add_argument("--landmarks", action=argparse.BooleanOptionalAction, default=True, help="draw the 5 landmarks")
    p.add_argument("--threshold", type=float, default=None, help="cosine similarity below which a face is "
                   "Unknown (default: the model's, from config.py)")
    p.add_argument("--target-fpir", type=float, default=None, metavar="F", help="instead of --threshold: the share "
                   "of strangers that may be given a gallery name (e.g. 0.01); the threshold is computed for the "
                   "gallery's size from the model's measured false-match rates (recognition.open_set)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--display", action=argparse.BooleanOptionalAction, default=None,
                   help="show a window (default: when a camera is used and a display is available)")
    p.add_argument("--log", type=Path, default=None, help="CSV with a row per face per frame (an existing file is "
                   "refused unless --overwrite)")
    p.add_argument("--summary", type=Path, default=None, help="write the run summary as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --log file")
    p.add_argument("--clean-partials", action="store_true", help="delete the hidden unfinished files that a killed "
                   "earlier run left next to the outputs (without it they are only listed)")
    p.add_argument("--allow-empty-gallery", action="store_true", help="run with no known people: every face "
                   "is Unknown")
    p.add_argument("--gallery-cache", type=Path, default=None, help="folder of the gallery embedding cache "
                   "(default: data/cache/gallery); 'none' disables it")
    p.add_argument("--frame-ms", type=int, default=100, help="gif frame duration (the seed's 100 ms)")
    p.add_argument("--record-max-side", type=int, default=None, help="downsize the recording to this side")
    p.add_argument("--record-every", type=int, default=1, help="record one frame in N (a smaller gif)")
    speed = p.add_argument_group("speed")
    speed.add_argument("--detect-scale", type=float, default=0.5, help="detect on a copy this much smaller")
    speed.add_argument("--detector", default=None, metavar="NAME", help="face detector of the gallery and the frames: "
                       "mtcnn or yunet (default: config.DEFAULT_DETECTOR, mtcnn); yunet detects 6-13x faster a frame")
    speed.add_argument("--detect-every", type=int, default=3, help="run the detector every N frames; track between")
    speed.add_argument("--reembed-every", type=int, default=15, help="embed a tracked face again every M frames")
    speed.add_argument("--track", action=argparse.BooleanOptionalAction, default=True,
                       help="track faces between detections (--no-track: detect and embed every frame)")
    speed.add_argument("--threaded-reader", action=argparse.BooleanOptionalAction, default=True,
                       help="read frames on a separate thread")
    speed.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: at most 2, measured "
                       "fastest on a 2-core CPU; raise it on a bigger one)")
    p.add_argument("--quiet", action="store_true", help="print only errors, warnings and the summary")
    add_max_megapixels_option(p)
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> int:
    """Refuse values no run can use, before anything is opened; returns the image pixel limit."""
    from facedata.cli import at_least, torch_device
    from facedata.io import max_pixels_of
    from recognition.recorder import check_recording_options
    from models_definition.zoo import check_threshold

    check_threshold(args.threshold)
    if args.target_fpir is not None:
        from facedata.errors import UsageError
        from recognition.open_set import check_fpir

        if args.threshold is not None:
            raise UsageError("--threshold and --target-fpir: give one (a raw cosine threshold, or a false-positive "
                             "identification rate the threshold is computed for)")
        check_fpir(args.target_fpir)
    if args.detector is not None:
        from facedata.detect import check_detector_name

        check_detector_name(args.detector)
    torch_device("-device", args.device)
    at_least("--threads", args.threads, 1)
    at_least("--max-frames", args.max_frames, 1)
    check_recording_options(args.frame_ms, args.record_max_side, args.record_every,
                            names=("--frame-ms", "--record-max-side", "--record-every"))
    return max_pixels_of(args.max_megapixels)


def speed_options(args: argparse.Namespace):
    """The speed flags as ``SpeedOptions``; its own range checks become a usage error naming the flags."""
    from facedata.errors import UsageError
    from recognition.realtime import SpeedOptions

    try:
        return SpeedOptions(detect_scale=args.detect_scale, detect_every=args.detect_every,
                            reembed_every=args.reembed_every, track=args.track, threaded_reader=args.threaded_reader)
    except ValueError as exc:
        raise UsageError(f"--detect-scale / --detect-every / --reembed-every: {exc}") from None


def check_outputs(args: argparse.Namespace, default_output: Path) -> tuple[Path | None, Path | None, Path | None]:
    """(recording, log, summary) paths, each refused now if it could not be written at the end (their
    folders are created now: the OS's own answer, not a guess)."""
    from facedata.io import create_output_file
    from recognition.recorder import check_output_path

    out = args.output_path if args.output_path is not None else str(default_output)
    recording = None if out.lower() == "none" else check_output_path(out)
    log = create_output_file(args.log, "--log", overwrite=args.overwrite) if args.log else None
    summary = create_output_file(args.summary, "--summary") if args.summary else None
    return recording, log, summary


def captured(recorder, log) -> str:
    """Where what was captured before a failure lies (the outputs are closed by then), or that nothing was."""
    kept = [f"{what} ({getattr(obj, count)} {count}) at {where}"
            for what, obj, count in (("the recording", recorder, "frames"), ("the log", log, "rows"))
            if obj is not None and getattr(obj, count) and (where := getattr(obj, "saved_to", None))]
    return ("what was captured before it is saved: " + "; ".join(kept)) if kept else "nothing had been captured"


def report_leftovers(paths: list[Path], clean: bool) -> None:
    """List (or, with ``clean``, delete) the hidden temporary files a killed run left next to ``paths``."""
    from facedata.io import leftover_temps

    found = [t for p in paths for t in leftover_temps(p)]
    if not found:
        return
    if clean:
        for t in found:
            t.unlink(missing_ok=True)
        print(f"real-time-recognition: deleted {len(found)} unfinished file(s) of an earlier run: "
              + ", ".join(map(str, found)), file=sys.stderr)
        return
    listing = ", ".join(f"{t} ({t.stat().st_size / 1e6:.1f} MB)" for t in found)
    rm = " ".join(f"'{t}'" for t in found)
    print(f"real-time-recognition: warning: {len(found)} unfinished file(s) of an earlier run that was killed lie "
          f"next to the outputs (hidden): {listing}. A recording plays up to its last complete frame; keep one by "
          f"renaming it, delete them with: rm -- {rm}  (or run with --clean-partials)", file=sys.stderr)


def _gui_available() -> bool:
    """True when this OpenCV build can open windows (headless builds say "GUI: NONE") and, on Linux, a
    display is set: the full build aborts the process on imshow without one."""
    import re

    import cv2

    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    has_gui = gui is not None and gui.group(1).upper() != "NONE"
    return has_gui and (sys.platform != "linux" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))


def _window(title: str):
    import cv2

    def show(rgb) -> bool:
        cv2.imshow(title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)  # q or Esc quits

    return show


@command("real-time-recognition", interrupted="a recording or log already being written is saved as it stands")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import config
    from facedata.io import create_output_folder

    args.model_name = args.model_name or config.DEFAULT_MODEL
    args.detector = args.detector or config.DEFAULT_DETECTOR

    # Values and outputs first, before the model, the gallery and the first frame: a bad one costs nothing yet.
    max_pixels = check_args(args)
    speed = speed_options(args)
    output, log_path, summary_path = check_outputs(args, config.GIFS_DIR / "output.gif")
    cache = None if str(args.gallery_cache).lower() == "none" else create_output_folder(
        args.gallery_cache or config.DATA_DIR / "cache" / "gallery", "--gallery-cache")
    report_leftovers([p for p in (output, log_path, summary_path) if p is not None], args.clean_partials)
    import torch

    from facedata.detect import FaceDetector
    from facedata.errors import FaceKitError, UsageError
    from models_definition.zoo import load_model, require_threshold
    from recognition.gallery import enrol
    from recognition.index import IndexPolicy
    from recognition.open_set import model_fpir_threshold
    from recognition.realtime import Recognizer, run
    from recognition.recorder import FaceLog, Recorder
    from recognition.sources import ImageSource, iterate, open_source

    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    torch.set_num_threads(args.threads or min(2, torch.get_num_threads()))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")  # MTCNN runs where the model does
    source = open_source(args.cam, max_pixels)
    try:  # the camera is released however the setup ends
        if isinstance(source, ImageSource):  # unrelated photos: a box in one says nothing of the next
            speed = dataclasses.replace(speed, track=False)
        display = args.display if args.display is not None else (source.live and _gui_available())
        if display and not _gui_available():
            raise UsageError("--display: this OpenCV build has no window support (opencv-python-headless) or "
                             "there is no display; run with --no-display, or install opencv-python for a window")
        embedder = load_model(args.model_name, config.MODELS, device=device, backend=args.backend)
        threshold = require_threshold(embedder, args.threshold) if args.target_fpir is None else None
        gallery = enrol(args.people_faces or config.PEOPLE_FACES, embedder,
                        FaceDetector(dataclasses.replace(config.DATASET_DETECTOR, device=device, backend=args.detector)),
                        cache, allow_empty=args.allow_empty_gallery, say=say, max_pixels=max_pixels,
                        index_policy=IndexPolicy(**config.GALLERY_INDEX))
        say(gallery.summary())
        if args.target_fpir is not None:  # for this gallery's size: more images, more chances of a false match
            fpir = model_fpir_threshold(embedder, config.MODELS[args.model_name], args.target_fpir, max(1, len(gallery)))
            threshold = fpir.cos
            say(fpir.describe())
        recognizer = Recognizer(embedder, gallery, threshold,
                                dataclasses.replace(config.REALTIME_DETECTOR, device=device, backend=args.detector), speed)
        log = FaceLog(log_path) if log_path else None
        recorder = Recorder(output, args.frame_ms, args.record_max_side, args.record_every) if output else None
    except BaseException:
        source.close()
        raise
    at = f" (measured at FPR {embedder.threshold_fpr:g})" if args.threshold is None and embedder.threshold_fpr else ""
    at = f" (for FPIR {args.target_fpir:g})" if args.target_fpir is not None else at
    say(f"model {embedder.name}, threshold {threshold:.3f}{at}; source {source.description}"
        + ("; press q in the window to stop" if display else "; Ctrl+C stops and saves"))
    frames, reader = iterate(source, speed.threaded_reader)
    try:
        summary = run(frames, recognizer, recorder, log, args.max_frames, args.landmarks,
                      _window(f"faces - {embedder.name}") if display else None)
    except (FaceKitError, OSError) as exc:  # a camera unplugged, a disk full: run() has closed the outputs
        print(f"real-time-recognition: error: during the run: {error_message(exc)}; {captured(recorder, log)}",
              file=sys.stderr)
        for w in (getattr(log, "warning", None), getattr(recorder, "warning", None)):
            if w:
                print(f"real-time-recognition: warning: {w}", file=sys.stderr)
        return 2
    finally:
        (reader or source).close()  # the reader closes its source
        if display:
            import cv2

            cv2.destroyAllWindows()
    summary.dropped = reader.dropped if reader is not None else 0
    for path, reason in getattr(source, "skipped", []):
        say(f"skipped {path}: {reason}")
    print(summary.report())  # with a WARNING line for an output kept elsewhere than asked
    if summary_path:
        from facedata.io import write_bytes_atomic

        try:
            write_bytes_atomic(json.dumps({"model": embedder.name, "threshold": threshold, "detector": args.detector,
                                           "source": source.description,
                                           **summary.to_dict()}, indent=1).encode(), summary_path)
        except OSError as exc:
            print(f"real-time-recognition: error: --summary {summary_path} could not be written ({exc}); the summary "
                  "is printed above", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
