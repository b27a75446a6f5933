"""Face verification of two photos with a named model: ``verify(img1, img2, model_name)``.

Each photo goes through the same path as every other part of the project: MTCNN on the RGB image, the
largest most central face, the alignment the model's preprocessing names, the model's embedding. The
verdict compares the cosine similarity with the model's threshold (``config.MODELS``) or the one given.

    python -m recognition.verify a.jpg b.jpg --model sface [--threshold 0.4]

Exit status, as diff and cmp: 0 same person, 1 different people, 2 trouble (a photo without a face, a bad
value: the message says which).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from facedata.cli import command
from facedata.detect import FaceDetector, pick_main_face
from facedata.errors import FaceDataError, UsageError
from facedata.io import DEFAULT_MAX_PIXELS, add_max_megapixels_option, load_image, max_pixels_of
from id_rate.scoring import paired_scores
from models_definition.zoo import FaceEmbedder, check_threshold, load_model, require_threshold
from models_definition.onnx_backend import add_backend_option

from .embed import embed_faces


class NoFaceError(FaceDataError):
    """A photo in which the detector found no face."""


@dataclass(frozen=True)
class Verdict:
    similarity: float  # cosine similarity of the two embeddings
    threshold: float
    threshold_fpr: float | None  # the FPR the threshold was measured at, when known
    same_person: bool


def embed_photo(image: str | Path | np.ndarray, embedder: FaceEmbedder, detector: FaceDetector,
                max_pixels: int | None = DEFAULT_MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """The embedding of the main face of a photo (a path, or an RGB array called ``name`` in errors)."""
    rgb = load_image(image, max_pixels=max_pixels) if not isinstance(image, np.ndarray) else image
    face = pick_main_face(detector.detect_rgb(rgb), rgb.shape)
    if face is None:
        where = name or (image if not isinstance(image, np.ndarray) else "the image")
        raise NoFaceError(f"{where}: no face found; use a photo where the face is visible and at least 20 px wide")
    return embed_faces(rgb, [face], embedder)[0]


def verify(img1: str | Path | np.ndarray, img2: str | Path | np.ndarray, model_name: str = "sface",
           threshold: float | None = None, embedder: FaceEmbedder | None = None,
           detector: FaceDetector | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
           registry: Mapping[str, Mapping] | None = None, backend: str | None = None) -> Verdict:
    """Similarity, threshold and same-person verdict for the main faces of two photos (photos above
    ``max_pixels`` are refused, see ``--max-megapixels``)."""
    # Both photos are read before the model loads: a bad file costs nothing yet.
    names = [None if isinstance(i, np.ndarray) else str(i) for i in (img1, img2)]
    rgbs = [i if isinstance(i, np.ndarray) else load_image(i, max_pixels=max_pixels) for i in (img1, img2)]
    if embedder is None:
        if registry is None:
            raise UsageError("verify needs an embedder, or a registry (e.g. config.MODELS) to load model_name from")
        embedder = load_model(model_name, registry, backend=backend)
    thr = require_threshold(embedder, threshold)  # checked there: a NaN from a thresholds file is refused too
    detector = detector or FaceDetector()
    a, b = (embed_photo(rgb, embedder, detector, name=n) for rgb, n in zip(rgbs, names))
    sim = float(paired_scores([a], [b])[0])
    return Verdict(sim, float(thr), embedder.threshold_fpr if threshold is None else None, sim >= thr)


@command("python -m recognition.verify")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recognition.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image1", type=Path)
    p.add_argument("image2", type=Path)
    p.add_argument("--model", default="sface", help="a name in config.MODELS")
    p.add_argument("--threshold", type=float, default=None, help="cosine similarity in [-1, 1] (default: the "
                   "model's)")
    add_backend_option(p)
    add_max_megapixels_option(p)
    args = p.parse_args(argv)
    check_threshold(args.threshold)  # before the photos are read and the model loads
    max_pixels = max_pixels_of(args.max_megapixels)
    import config  # the script layer: the project's model registry
    v = verify(args.image1, args.image2, args.model, args.threshold, max_pixels=max_pixels, registry=config.MODELS,
               backend=args.backend)
    verdict = "same person" if v.same_person else "different people"
    at = f" (measured at FPR {v.threshold_fpr:g})" if v.threshold_fpr else ""
    print(f"{verdict}: cosine similarity {v.similarity:.3f}, threshold {v.threshold:.3f}{at}")
    return 0 if v.same_person else 1


if __name__ == "__main__":
    sys.exit(main())
