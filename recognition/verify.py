"""Face verification of two photos with a named model: ``verify(img1, img2, model_name)``.

Each photo goes through the same path as every other part of the project: MTCNN on the RGB image, the
largest most central face, the alignment the model's preprocessing names, the model's embedding. The
verdict compares the cosine similarity with the model's threshold (``config.MODELS``) or the one given.

    python -m recognition.verify a.jpg b.jpg --model sface [--threshold 0.4]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facedata.detect import FaceDetector, pick_main_face
from facedata.errors import FaceDataError
from facedata.io import load_image
from models_definition.zoo import FaceEmbedder, ModelNotFoundError, load_model

from .embed import embed_faces


class NoFaceError(FaceDataError):
    """A photo in which the detector found no face."""


@dataclass(frozen=True)
class Verdict:
    similarity: float  # cosine similarity of the two embeddings
    threshold: float
    threshold_fpr: float | None  # the FPR the threshold was measured at, when known
    same_person: bool


def embed_photo(image: str | Path | np.ndarray, embedder: FaceEmbedder, detector: FaceDetector) -> np.ndarray:
    """The embedding of the main face of a photo (a path, or an RGB array)."""
    rgb = load_image(image) if not isinstance(image, np.ndarray) else image
    face = pick_main_face(detector.detect_rgb(rgb), rgb.shape)
    if face is None:
        where = image if not isinstance(image, np.ndarray) else "the image"
        raise NoFaceError(f"{where}: no face found; use a photo where the face is visible and at least 20 px wide")
    return embed_faces(rgb, [face], embedder)[0]


def verify(img1: str | Path | np.ndarray, img2: str | Path | np.ndarray, model_name: str = "sface",
           threshold: float | None = None, embedder: FaceEmbedder | None = None,
           detector: FaceDetector | None = None) -> Verdict:
    """Similarity, threshold and same-person verdict for the main faces of two photos."""
    embedder = embedder or load_model(model_name)
    thr = threshold if threshold is not None else embedder.threshold
    if thr is None:
        raise ValueError(f"model {model_name!r} has no measured threshold; pass one (cosine), or measure it with "
                         f"`python -m id_rate --models {model_name} --data <aligned folder> --write-thresholds 1e-3`")
    detector = detector or FaceDetector()
    a, b = embed_photo(img1, embedder, detector), embed_photo(img2, embedder, detector)
    sim = float(a @ b)
    return Verdict(sim, float(thr), embedder.threshold_fpr if threshold is None else None, sim >= thr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recognition.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image1", type=Path)
    p.add_argument("image2", type=Path)
    p.add_argument("--model", default="sface", help="a name in config.MODELS")
    p.add_argument("--threshold", type=float, default=None, help="cosine similarity (default: the model's)")
    args = p.parse_args(argv)
    try:
        v = verify(args.image1, args.image2, args.model, args.threshold)
    except (FaceDataError, ModelNotFoundError, ValueError) as exc:
        print(f"verify: error: {exc}", file=sys.stderr)
        return 2
    verdict = "same person" if v.same_person else "different people"
    at = f" (measured at FPR {v.threshold_fpr:g})" if v.threshold_fpr else ""
    print(f"{verdict}: cosine similarity {v.similarity:.3f}, threshold {v.threshold:.3f}{at}")
    return 0 if v.same_person else 1


if __name__ == "__main__":
    sys.exit(main())
