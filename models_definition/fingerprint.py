"""The fingerprint of what a model's embeddings depend on: the one key of every embedding cache.

The evaluation's embedding cache (``id_rate.embeddings``) and the gallery's (``recognition.gallery``) both key on
:func:`model_fingerprint`. It covers everything that changes an embedding:

* the weights: a checkpoint's content (SHA-256 of the whole file, so the same file named by another path is the
  same model and a retrained one at the same path is not); otherwise the spec ``load_model`` builds, which names
  everything that makes the weights (a reference model and its options, e.g. dlib's ``num_jitters``; a
  random-init backbone with its seed and embedding size; a converted published model);
* the embedding size, the preprocessing (size, colour order, normalisation, alignment) and flip TTA;
* :data:`EMBEDDING_VERSION`, raised when the embedding arithmetic itself changes.

and nothing that does not: not the model's registry name, its threshold, its batch size, nor the spelling of
the checkpoint's path.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facedata.errors import FaceKitError
from facedata.sample_data import sha256_file

if TYPE_CHECKING:
    from .zoo import FaceEmbedder

# Raise when FaceEmbedder's arithmetic changes (normalisation, flip TTA, fused layers): every cached
# embedding made before is then recomputed rather than reused.
EMBEDDING_VERSION = 1

# (resolved path, size, mtime_ns) -> SHA-256: a checkpoint is hashed once per process, not once per cache lookup.
_file_hashes: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, remembered for as long as its size and modification time stay the same."""
    resolved = Path(path).resolve()
    st = resolved.stat()
    key = (str(resolved), st.st_size, st.st_mtime_ns)
    if key not in _file_hashes:
        _file_hashes[key] = sha256_file(resolved)
    return _file_hashes[key]


class StaleModelError(FaceKitError):
    """A model whose checkpoint file was rewritten after its weights were read: its embeddings cannot be keyed
    by that file any more."""


def fingerprint_parts(embedder: "FaceEmbedder") -> dict[str, Any]:
    """What :func:`model_fingerprint` hashes, as plain data."""
    ckpt = embedder.checkpoint
    if ckpt is not None and Path(ckpt).is_file():
        st = Path(ckpt).stat()
        if embedder.checkpoint_stamp is not None and (st.st_size, st.st_mtime_ns) != tuple(embedder.checkpoint_stamp):
            raise StaleModelError(f"{ckpt}: rewritten since model {embedder.name!r} was loaded from it (a new training "
                                  "run?); load the model again to use the new weights")
        weights: Any = {"checkpoint_sha256": file_sha256(ckpt)}
    else:  # no file: the spec names the weights (a checkpoint deleted since it loaded: its spec, the best left)
        weights = embedder.spec
    parts = {"version": EMBEDDING_VERSION, "weights": weights, "embedding_size": embedder.embedding_size,
             "preprocess": embedder.preprocess.to_dict(), "flip_tta": bool(embedder.flip_tta)}
    dtype = embedder.spec.get("inference_dtype")
    if dtype is not None:  # mixed-precision inference gives other embeddings (float32 keys stay as they were)
        parts["inference_dtype"] = dtype
    return parts


def model_fingerprint(embedder: "FaceEmbedder") -> str:
    """A short hex key that changes exactly when ``embedder``'s embeddings of the same crops can change."""
    text = json.dumps(fingerprint_parts(embedder), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
