"""The embedding cache: views, and parts that let an interrupted embedding pick up where it stopped."""
from __future__ import annotations


import numpy as np
import pytest

from facedata.io import image_files
from facedata.preprocess import get_preset
from id_rate.embeddings import embed_paths
from models_definition.zoo import FaceEmbedder


def _embedder(calls: list, fail_after: int | None = None) -> FaceEmbedder:
    def forward(x: np.ndarray) -> np.ndarray:  # the mean colour per channel plus a constant: cheap, input-dependent
        if fail_after is not None and len(calls) >= fail_after:
            raise KeyboardInterrupt
        calls.append(len(x))
        return np.concatenate([x.mean(axis=(2, 3)), np.ones((len(x), 1), np.float32)], axis=1)

    return FaceEmbedder("stub", forward, get_preset("arcface112"), 4, batch_size=64)


def test_interrupted_embedding_resumes_from_its_parts(small_aligned, tmp_path):
    paths = image_files(small_aligned, recursive=True)[:7]
    calls: list = []
    whole = embed_paths(_embedder(calls), paths, progress=False)
    with pytest.raises(KeyboardInterrupt):
        embed_paths(_embedder([], fail_after=2), paths, cache_dir=tmp_path, progress=False, part_crops=3, batch=3)
    assert len(list(tmp_path.glob("*.parts/*.npy"))) == 2  # images 0-2 and 3-5 were saved before the stop
    again: list = []
    out = embed_paths(_embedder(again), paths, cache_dir=tmp_path, progress=False, part_crops=3, batch=3)
    assert again == [1] and np.allclose(out, whole)  # only the last image was left to embed
    assert not list(tmp_path.glob("*.parts")) and len(list(tmp_path.glob("stub-*.npy"))) == 1


def test_views_are_rows_image_times_views_plus_view(small_aligned, tmp_path):
    paths = image_files(small_aligned, recursive=True)[:3]

    def dark(crop, i, v):  # view v: the crop darkened v + 1 times
        return (crop // (v + 1)).astype(np.uint8)

    out = embed_paths(_embedder([]), paths, cache_dir=tmp_path, progress=False, views=2, view_fn=dark, view_key="d")
    plain = embed_paths(_embedder([]), paths, progress=False)
    assert out.shape == (6, 4) and np.allclose(out[0::2], plain)
    assert not np.allclose(out[1::2], plain)
    # the views are part of the cache key: another view function is not served the first one's rows
    other = embed_paths(_embedder([]), paths, cache_dir=tmp_path, progress=False, views=2, view_fn=dark, view_key="e")
    assert np.allclose(other, out) and len(list(tmp_path.glob("stub-*.npy"))) == 2
    with pytest.raises(ValueError, match="views > 1 needs a view_fn"):
        embed_paths(_embedder([]), paths, views=2)
