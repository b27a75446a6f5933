"""Live face recognition against people_faces/ (camera, video file or photo folder).

    python real-time-recognition.py -model_name=ce-efficientnet

Not available yet: it needs the embedding models (models issue) and the recognition loop (real-time
issue). Detection and alignment, which it will use, are in the facedata package today.
Nothing runs at import.
"""
from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The seed script's flags, kept as written."""
    p = argparse.ArgumentParser(description="Real-time face recognition against people_faces/.")
    p.add_argument("-model_name", default="ce-efficientnet", help="a model name from config.py")
    p.add_argument("-device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("-cam", default="0", help="camera index, or a video file, image or image folder")
    p.add_argument("-people_faces", default="people_faces", help="gallery folder: <name>.jpg or <name>/*.jpg")
    p.add_argument("-output_path", default="gifs/output.gif", help="recording written on exit (.gif or .mp4)")
    p.add_argument("--landmarks", action=argparse.BooleanOptionalAction, default=True, help="draw 5 landmarks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"error: recognition with model {args.model_name!r} is not available yet: the embedding models "
          "and the real-time loop are still to be built (see README, 'Status').", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
