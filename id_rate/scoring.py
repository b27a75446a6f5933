"""Cosine scoring of face embeddings: the project's one normalisation and its one way to score pairs.

Every score in the project is the cosine similarity of two L2-normalised embeddings (higher = more alike):
the models' output (``models_definition.zoo.FaceEmbedder``), the gallery's matches, verification, the ID-rate
protocols and their bootstraps all normalise with :func:`l2_normalize` and score with :func:`similarity_matrix`
(query x gallery), :func:`upper_pair_scores` (every pair i < j of one set) or :func:`paired_scores` (row i of
A with row i of B). numpy only (``similarity_matrix`` also takes torch tensors): no model code is imported.
"""
from __future__ import annotations

from typing import TypeVar

import numpy as np

from facedata.errors import FaceKitError

Matrix = TypeVar("Matrix")  # a numpy array or a torch tensor: ``@`` and ``.T`` work the same on both

# Rows whose norm is within this of 1 count as normalised already and are not copied (a distractor set can
# be gigabytes); float32 normalisation leaves norms within about 1e-6 of 1, so this skips no real work.
UNIT_NORM_TOLERANCE = 1e-5


class MetricError(FaceKitError, ValueError):
    """Scores, embeddings or labels that no metric can be computed from; the message says which and why."""


class EmbeddingValueError(MetricError, FloatingPointError):
    """An embedding with NaN or inf, or all zeros (no direction to compare). Also a FloatingPointError: the
    model's own check raised that before it was this one."""


def l2_normalize(emb: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """(N, D) rows of unit length, in the input's dtype when it is a floating one (float64 pair distances stay
    float64), else float32. A row with NaN or inf, or all zeros, is an :class:`EmbeddingValueError` naming
    ``what``, the first such row and how many there are. Rows already of unit length come back as they are
    (no copy)."""
    emb = np.asarray(emb)
    if not np.issubdtype(emb.dtype, np.floating):  # integers, booleans: no precision of their own to keep
        emb = emb.astype(np.float32)
    if emb.ndim != 2:
        raise MetricError(f"{what}: expected an (N, D) array, got shape {emb.shape}")
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():
        raise EmbeddingValueError(f"{what}: row {int(np.flatnonzero(bad)[0])} has NaN or inf "
                                  f"({int(bad.sum())} such rows)")
    # einsum, not np.linalg.norm: no temporary the size of the input (2 GB for 1M x 512 distractors)
    norms = np.sqrt(np.einsum("ij,ij->i", emb, emb))
    if (norms == 0).any():
        raise EmbeddingValueError(f"{what}: row {int(np.flatnonzero(norms == 0)[0])} is all zeros (no direction "
                                  f"to compare; {int((norms == 0).sum())} such rows)")
    # float64 rows are normalised again unless within float64 rounding: their distances keep float64 precision
    tolerance = UNIT_NORM_TOLERANCE if emb.dtype.itemsize <= 4 else 1e-12
    if len(emb) == 0 or np.abs(norms - 1).max() < tolerance:
        return emb
    return emb / norms[:, None]


def similarity_matrix(a: Matrix, b: Matrix) -> Matrix:
    """(len(a), len(b)) cosine similarities of unit rows (query x gallery); numpy arrays or torch tensors."""
    return a @ b.T


def paired_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of ``a`` with row i of ``b`` (unit rows), for every i; summed in float64
    (the k-fold protocols choose thresholds between neighbouring scores)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise MetricError(f"paired embeddings differ in shape: {a.shape} vs {b.shape}")
    return np.einsum("ij,ij->i", a, b)


def upper_pair_scores(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Every pair i < j of one set of unit rows: (scores, same identity?, (i, j)), in ``np.triu_indices`` order."""
    labels = np.asarray(labels)
    if len(emb) != len(labels):
        raise MetricError(f"{len(emb)} embeddings but {len(labels)} labels")
    iu = np.triu_indices(len(emb), k=1)
    return similarity_matrix(emb, emb)[iu], labels[iu[0]] == labels[iu[1]], iu
