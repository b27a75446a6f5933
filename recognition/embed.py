"""Detected faces -> embeddings: the one path shared by gallery photos, live frames, batch mode and verify."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from facedata.align import align_face
from facedata.detect import Face
from models_definition.zoo import FaceEmbedder


def crop_size(embedder: FaceEmbedder) -> int:
    """Side of the aligned crop for a model: its input side, except that large inputs (dlib's 150, 224)
    are aligned at the 112 template and resized by the model's own preprocessing."""
    size = embedder.preprocess.size_px
    return size if size <= 160 else 112


def align_faces(rgb: np.ndarray, faces: Sequence[Face], embedder: FaceEmbedder) -> list[np.ndarray]:
    """Aligned RGB crops of ``faces`` in ``rgb``, made the way the model's preprocessing names."""
    size = crop_size(embedder)
    return [align_face(rgb, f, embedder.preprocess.alignment, size) for f in faces]


def embed_faces(rgb: np.ndarray, faces: Sequence[Face], embedder: FaceEmbedder) -> np.ndarray:
    """(len(faces), D) L2-normalised embeddings, all faces of the image in one batch."""
    return embedder(align_faces(rgb, faces, embedder))
