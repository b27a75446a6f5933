"""Embeddings of an aligned face folder by a named model, cached on disk.

The cache key covers everything that changes an embedding: the model's fingerprint
(``models_definition.fingerprint``: its weights or checkpoint content, preprocessing, flip TTA, ...), and
every image's resolved path, size and mtime. A change to any of them makes a new key, so stale embeddings are
never reused; the same folder named by a relative, an absolute or a linked path is the same key.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from facedata.io import load_image, write_bytes_atomic
from models_definition.fingerprint import model_fingerprint
from models_definition.zoo import FaceEmbedder


def resolved_paths(paths: Sequence[Path]) -> list[Path]:
    """Each path with its folder resolved (links, ``..``, relative spellings), each folder resolved once: a
    CASIA-size list has few folders and many files."""
    folders: dict[Path, Path] = {}
    out = []
    for p in paths:
        parent = folders.get(p.parent)
        if parent is None:
            parent = folders[p.parent] = p.parent.resolve()
        out.append(parent / p.name)
    return out


def cache_key(embedder: FaceEmbedder, paths: Sequence[Path], extra: Any = None) -> str:
    """The model's fingerprint and every image's resolved path, size and mtime; ``extra``: anything else the
    embeddings depend on (the views of distillation), JSON-serialisable."""
    h = hashlib.sha256()
    h.update(json.dumps([model_fingerprint(embedder)] + ([extra] if extra is not None else []),
                        sort_keys=True, default=str).encode())
    for p in resolved_paths([Path(p) for p in paths]):
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def embed_paths(embedder: FaceEmbedder, paths: Sequence[Path], cache_dir: Path | None = None,
                progress: bool = True, batch: int = 256, views: int = 1,
                view_fn: Callable[[np.ndarray, int, int], np.ndarray] | None = None, view_key: Any = None,
                part_crops: int = 4096) -> np.ndarray:
    """(N, D) L2-normalised embeddings of aligned crops, from the cache when nothing changed.

    ``views`` > 1: (N * views, D), row ``i * views + v`` the embedding of ``view_fn(crop_i, i, v)``;
    ``view_key`` (what the views depend on: augmentation, seed) joins the cache key. With a cache folder,
    the embeddings are saved in parts of about ``part_crops`` crops as they are done (a few minutes of a CPU),
    so an interrupted run picks up where it was."""
    paths = [Path(p) for p in paths]
    if views > 1 and (view_fn is None or view_key is None):
        raise ValueError("views > 1 needs a view_fn(crop, image, view) and a view_key (what the views depend on, "
                         "for the cache key)")
    target = parts = None
    if cache_dir is not None:
        extra = None if views == 1 else {"views": views, "view": view_key}
        target = Path(cache_dir) / f"{embedder.name}-{cache_key(embedder, paths, extra)}.npy"
        if target.exists():
            return np.load(target)
        parts = target.with_suffix(".parts")

    def crops(lo: int, hi: int) -> list[np.ndarray]:
        out = []
        for i in range(lo, hi):
            crop = load_image(paths[i])
            out += [crop] if views == 1 else [view_fn(crop, i, v) for v in range(views)]
        return out

    chunks = []
    part_images = max(1, part_crops // views)
    step = max(1, batch // views)  # images per embedder call: about ``batch`` crops
    starts = range(0, len(paths), part_images)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"embedding with {embedder.name}", unit=f"x{part_images} images")
    for lo in starts:
        hi = min(lo + part_images, len(paths))
        part = None if parts is None else parts / f"{lo:09d}-{hi:09d}.npy"
        if part is not None and part.exists():
            chunks.append(np.load(part))
            continue
        chunk = np.concatenate([embedder(crops(b, min(b + step, hi))) for b in range(lo, hi, step)])
        if part is not None and hi < len(paths):  # the last part goes straight into the whole file below
            parts.mkdir(parents=True, exist_ok=True)
            _save_npy(chunk, part)
        chunks.append(chunk)
    emb = np.concatenate(chunks) if chunks else np.zeros((0, embedder.embedding_size), np.float32)
    if target is not None:
        _save_npy(emb, target)
        if parts.exists():
            shutil.rmtree(parts, ignore_errors=True)
    return emb


def _save_npy(arr: np.ndarray, path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, arr)
    write_bytes_atomic(buf.getvalue(), path)
