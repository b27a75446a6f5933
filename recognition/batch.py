"""Batch mode: recognise every face in every photo of a folder against the gallery and write a CSV
(the offline twin of the real-time script, like face_recognition's command line).

    python -m recognition.batch photos/ --model sface --people-faces people_faces --out results.csv

One row per face (file, face, box, name, similarity, status); a photo with no face gets one row with
status ``no_face``, an unreadable one ``unreadable`` and the reason: nothing stops the run.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Callable

from facedata.cli import command, torch_device
from facedata.detect import FaceDetector
from facedata.errors import ImageReadError
from facedata.io import (
    DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, add_max_megapixels_option, create_output_file, create_output_folder,
    image_files, load_image, max_pixels_of, write_bytes_atomic,
)
from models_definition.zoo import check_threshold, load_model, require_threshold
from models_definition.onnx_backend import add_backend_option

from .gallery import enrol
from .realtime import Recognizer, SpeedOptions
from .sources import SourceError

FIELDS = ("file", "face", "x1", "y1", "x2", "y2", "name", "similarity", "status")


def recognise_folder(folder: str | Path, recognizer: Recognizer, say: Callable[[str], None] | None = None,
                     max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[dict]:
    """Rows (see FIELDS) for every image in ``folder`` (recursively), in path order; images above
    ``max_pixels`` get an ``unreadable`` row (``--max-megapixels``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder; pass a folder of photos")
    paths = image_files(folder, recursive=True)
    if not paths:
        raise SourceError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    rows: list[dict] = []
    for i, p in enumerate(paths):
        rel = str(p.relative_to(folder))
        empty = dict(file=rel, face="", x1="", y1="", x2="", y2="", name="", similarity="")
        try:
            rgb = load_image(p, max_pixels=max_pixels)
        except ImageReadError as exc:
            rows.append({**empty, "status": f"unreadable: {exc.detail}"})
            if say:
                say(f"skipped {p}: {exc.detail}")
            continue
        results = recognizer.process(rgb, i)
        if not results:
            rows.append({**empty, "status": "no_face"})
        for j, r in enumerate(results):
            x1, y1, x2, y2 = (round(float(v), 1) for v in r.face.box)
            rows.append(dict(file=rel, face=j, x1=x1, y1=y1, x2=x2, y2=y2, name=r.name,
                             similarity=round(r.similarity, 4), status="ok"))
    return rows


def write_rows(rows: list[dict], out: str | Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, FIELDS)
    w.writeheader()
    w.writerows(rows)
    write_bytes_atomic(buf.getvalue().encode(), out)


@command("python -m recognition.batch")
def main(argv: list[str] | None = None) -> int:
    import config  # the script layer: paths, detector settings, MODELS

    p = argparse.ArgumentParser(prog="python -m recognition.batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="photos to recognise (searched recursively)")
    p.add_argument("--model", default="sface", help="a name in config.MODELS")
    p.add_argument("--people-faces", type=Path, default=config.PEOPLE_FACES, help="the gallery folder")
    p.add_argument("--threshold", type=float, default=None, help="cosine similarity (default: the model's)")
    p.add_argument("--out", type=Path, default=Path("recognised.csv"), help="CSV written (atomically)")
    p.add_argument("--device", default=None)
    add_backend_option(p)
    p.add_argument("--gallery-cache", default=str(config.DATA_DIR / "cache" / "gallery"),
                   help="folder of the gallery embedding cache; 'none' disables it")
    add_max_megapixels_option(p)
    args = p.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    # Every argument and output before the model loads: a bad value or path costs nothing yet.
    check_threshold(args.threshold)
    max_pixels = max_pixels_of(args.max_megapixels)
    torch_device("--device", args.device)
    create_output_file(args.out, "--out")
    cache = None if args.gallery_cache.lower() == "none" else create_output_folder(args.gallery_cache,
                                                                                     "--gallery-cache")
    if not args.folder.is_dir():  # nor a missing input folder
        raise SourceError(f"{args.folder}: not a folder; pass a folder of photos")
    embedder = load_model(args.model, config.MODELS, device=args.device, backend=args.backend)
    threshold = require_threshold(embedder, args.threshold)
    from .index import IndexPolicy  # large galleries are searched through a FAISS index, as in the live script

    gallery = enrol(args.people_faces, embedder, FaceDetector(config.DATASET_DETECTOR), cache, say=say,
                    max_pixels=max_pixels, index_policy=IndexPolicy(**config.GALLERY_INDEX))
    say(gallery.summary())
    # Photos are unrelated: full-resolution detection of every face, no tracking from one to the next.
    recognizer = Recognizer(embedder, gallery, threshold, config.DATASET_DETECTOR,
                            SpeedOptions(detect_scale=1.0, track=False, threaded_reader=False))
    rows = recognise_folder(args.folder, recognizer, say, max_pixels)
    write_rows(rows, args.out)
    for r in rows:
        print(f"{r['file']},{r['name'] or r['status']}")
    say(f"{len(rows)} rows written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
