"""Embeddings of an aligned face folder by a named model, cached on disk.

The cache key covers everything that changes an embedding: the model name, its spec (a random-init
model's backbone, seed and size; a checkpoint's spec), its checkpoint file (size, mtime, sha256 of the
first MiB), its preprocessing (size, colour order, normalisation, alignment), flip TTA, and every image's
path, size and mtime. A change to any of them makes a new key, so stale embeddings are never reused.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from facedata.io import file_fingerprint, load_image, write_bytes_atomic
from models_definition.zoo import FaceEmbedder


def cache_key(embedder: FaceEmbedder, paths: Sequence[Path], checkpoint: Path | None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([embedder.name, embedder.spec, embedder.preprocess.to_dict(), embedder.flip_tta,
                         file_fingerprint(checkpoint) if checkpoint and checkpoint.exists() else None],
                        sort_keys=True, default=str).encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def embed_paths(embedder: FaceEmbedder, paths: Sequence[Path], cache_dir: Path | None = None,
                checkpoint: Path | None = None, progress: bool = True, batch: int = 256) -> np.ndarray:
    """(N, D) L2-normalised embeddings of aligned crops, from the cache when nothing changed."""
    paths = [Path(p) for p in paths]
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"{embedder.name}-{cache_key(embedder, paths, checkpoint)}.npy"
        if target.exists():
            return np.load(target)
    out = []
    it = range(0, len(paths), batch)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"embedding with {embedder.name}", unit="batch")
    for i in it:
        out.append(embedder([load_image(p) for p in paths[i:i + batch]]))
    emb = np.concatenate(out) if out else np.zeros((0, embedder.embedding_size), np.float32)
    if target is not None:
        buf = io.BytesIO()
        np.save(buf, emb)
        write_bytes_atomic(buf.getvalue(), target)
    return emb
