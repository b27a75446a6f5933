"""The FAISS gallery index on real faces: exact top-1 where exact is used, approximate recall, incremental adds,
the file's model and corruption checks, and the gallery's matching through it."""
from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

import config
from facedata.io import image_files, load_image
from recognition.gallery import Gallery, gallery_index
from recognition.index import (
    FaissMissingError, GalleryIndex, GalleryIndexCorruptError, GalleryIndexError, GalleryIndexModelError, IndexPolicy,
    row_ids,
)

# Exact up to 100 vectors, IVF above (4x growth before a retrain), small lists so ~300 faces make several.
POLICY = IndexPolicy(exact_max_faces=100, approx="ivf", rebuild_growth=4.0, ivf_lists_per_sqrt=1.0, ivf_nprobe=2,
                     hnsw_m=16, hnsw_ef_construction=40, hnsw_ef_search=32)
# Measured on this gallery (38 real crops x 8 augmented views, 304 vectors, 7 IVF lists): recall@1 of IVF with
# 2 of 7 lists searched 1.0 here, HNSW 1.0; the bars leave room for another CPU's float rounding.
IVF_MIN_RECALL = 0.95
HNSW_MIN_RECALL = 0.98


@pytest.fixture(scope="module")
def faces(small_aligned):
    """(names, gallery embeddings, query embeddings) of the real sample crops and the shipped model: the gallery
    is each crop and 7 augmented views of it (flip, crop jitter, colour, rotation), the queries the crops mirrored."""
    import torch

    from facedata.augment import Augment
    from models_definition.zoo import load_model

    torch.set_num_threads(2)
    embedder = load_model(config.DEFAULT_MODEL, config.MODELS, device="cpu")
    crops = [(p.parent.name, load_image(p)) for p in image_files(small_aligned, recursive=True)]
    rng = np.random.default_rng(0)
    aug = Augment(flip_p=0.5, jitter=0.3, jitter_p=1.0, blur_p=0.0, grayscale_p=0.0)
    names, views = [], []
    for name, crop in crops:
        names += [name] * 8
        views += [crop] + [aug(crop, rng) for _ in range(7)]
    queries = embedder([np.ascontiguousarray(c[:, ::-1]) for _, c in crops])
    return names, embedder(views), queries


def test_exact_index_gives_the_brute_force_top1_on_real_faces(faces):
    names, emb, queries = faces
    emb = emb[:100]  # within exact_max_faces: IndexFlatIP
    idx = GalleryIndex.build(emb, POLICY, "key")
    assert idx.kind == "flat" and len(idx) == 100
    scores, rows = idx.search(queries, 3)
    sims = queries @ emb.T
    assert np.array_equal(rows[:, 0], sims.argmax(1))
    assert np.allclose(scores[:, 0], sims.max(1), atol=1e-5)
    # the gallery's match through the index is today's brute-force match, name and similarity
    brute = Gallery(names[:100], emb)
    fast = Gallery(names[:100], emb)
    fast.index, fast.index_rows = gallery_index(emb, [f"f{i}" for i in range(100)], POLICY, "key")
    for t in (0.3, 0.7):
        a, b = brute.match(queries, t), fast.match(queries, t)
        assert [(m.name, m.best) for m in a] == [(m.name, m.best) for m in b]
        assert np.allclose([m.similarity for m in a], [m.similarity for m in b], atol=1e-5)


@pytest.mark.parametrize("approx, bar", [("ivf", IVF_MIN_RECALL), ("hnsw", HNSW_MIN_RECALL)])
def test_approximate_index_recall_against_exact(faces, approx, bar):
    _, emb, queries = faces
    idx = GalleryIndex.build(emb, dataclasses.replace(POLICY, approx=approx), "key")
    assert idx.kind == approx and len(idx) == len(emb) > POLICY.exact_max_faces
    _, rows = idx.search(queries, 1)
    recall = float(np.mean(rows[:, 0] == (queries @ emb.T).argmax(1)))
    assert recall >= bar, recall


def test_incremental_adds_equal_a_rebuild(faces, tmp_path):
    _, emb, queries = faces
    flat = dataclasses.replace(POLICY, exact_max_faces=10_000)
    whole = GalleryIndex.build(emb, flat, "key")
    grown = GalleryIndex.build(emb[:50], flat, "key")
    for lo in range(50, len(emb), 60):
        grown.add(emb[lo:lo + 60])
    assert np.array_equal(grown.all_vectors(), whole.all_vectors())
    assert all(np.array_equal(a, b) for a, b in zip(grown.search(queries, 5), whole.search(queries, 5)))

    # crossing the exact boundary rebuilds as IVF; growing 4x past its training size retrains it
    idx = GalleryIndex.build(emb[:60], POLICY, "key")
    idx.add(emb[60:120])
    assert idx.kind == "ivf" and idx.built_at == 120
    idx.add(emb[120:200])
    assert idx.built_at == 120  # 200 < 4 x 120: added to the trained lists
    idx.save(tmp_path / "g.faiss")
    idx = GalleryIndex.load(tmp_path / "g.faiss", "key")  # a loaded IVF index can still be rebuilt (direct map)
    idx.add(emb[200:])
    assert len(idx) == len(emb) and idx.kind == "ivf" and (idx.built_at == len(emb) or len(emb) <= 480)
    assert np.array_equal(idx.all_vectors(), whole.all_vectors())
    # searching every list is exact search
    idx.index.nprobe = idx.index.nlist
    assert np.array_equal(idx.search(queries, 1)[1], whole.search(queries, 1)[1])


def test_saved_index_loads_with_the_same_answers_and_refuses_another_model(faces, tmp_path):
    _, emb, queries = faces
    idx = GalleryIndex.build(emb, POLICY, "abc123", "small-r18h-distill")
    path = idx.save(tmp_path / "g.faiss")
    back = GalleryIndex.load(path, "abc123")
    assert (back.kind, len(back), back.dim, back.model_name) == ("ivf", len(emb), emb.shape[1], "small-r18h-distill")
    assert np.array_equal(back.ids, idx.ids)
    assert all(np.array_equal(a, b) for a, b in zip(back.search(queries, 3), idx.search(queries, 3)))
    with pytest.raises(GalleryIndexModelError, match="built with model 'small-r18h-distill'.*delete it"):
        GalleryIndex.load(path, "other-key")
    with pytest.raises(GalleryIndexModelError, match="dimensions"):
        back.search(np.ones((1, 7), np.float32))


@pytest.mark.parametrize("damage, words", [
    (lambda b: b[: len(b) // 2], "checksum"),  # cut short
    (lambda b: b[:-10] + bytes(10), "checksum"),  # altered
    (lambda b: b"just some text\n", "does not start"),  # not an index
    (lambda b: b[:30], "header"),  # cut in the header
])
def test_corrupt_index_file_is_a_named_error(faces, tmp_path, damage, words):
    _, emb, _ = faces
    path = GalleryIndex.build(emb[:40], POLICY, "key").save(tmp_path / "g.faiss")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(GalleryIndexCorruptError, match=words) as err:
        GalleryIndex.load(path, "key")
    assert str(path) in str(err.value) and "delete it" in str(err.value)


def test_gallery_index_file_is_updated_incrementally_and_rebuilt_when_needed(faces, tmp_path):
    names, emb, queries = faces
    files = [f"img{i}.jpg" for i in range(len(emb))]
    path = tmp_path / "gallery.faiss"
    said: list[str] = []
    flat = dataclasses.replace(POLICY, exact_max_faces=10_000)
    idx, rows = gallery_index(emb[:150], files[:150], flat, "key", "m", path, said.append)
    assert path.is_file() and len(idx) == 150 and np.array_equal(rows, np.arange(150))
    # two new images, in the middle of the gallery's order: only they are added, the rows still line up
    keep = np.r_[0:70, 200, 201, 70:150]
    said.clear()
    idx, rows = gallery_index(emb[keep], [files[i] for i in keep], flat, "key", "m", path, said.append)
    assert len(idx) == 152 and said == [] and np.array_equal(idx.all_vectors(), emb[keep][rows])
    assert np.array_equal(GalleryIndex.load(path, "key").ids, idx.ids)
    # an image removed: the index is built again from the gallery's rows
    idx, rows = gallery_index(emb[keep[1:]], [files[i] for i in keep[1:]], flat, "key", "m", path, said.append)
    assert len(idx) == 151 and np.array_equal(idx.ids, row_ids([files[i] for i in keep[1:]], emb[keep[1:]]))
    # a damaged file is said and rebuilt; a file of another model is refused
    path.write_bytes(b"garbage")
    idx, _ = gallery_index(emb[:10], files[:10], flat, "key", "m", path, said.append)
    assert len(idx) == 10 and any("not a readable gallery index" in s and "rebuilt" in s for s in said)
    with pytest.raises(GalleryIndexModelError):
        gallery_index(emb[:10], files[:10], flat, "another-model", "m2", path, said.append)


def test_policy_and_missing_faiss_errors(monkeypatch):
    assert POLICY.kind_for(100) == "flat" and POLICY.kind_for(101) == "ivf"
    assert POLICY.ivf_lists(1_000_000) == 1000 and POLICY.ivf_lists(300) == 7 and POLICY.ivf_lists(5) == 1
    with pytest.raises(GalleryIndexError, match="valid: ivf, hnsw"):
        dataclasses.replace(POLICY, approx="annoy")
    IndexPolicy(**config.GALLERY_INDEX)  # the configured policy is a valid one
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed
    with pytest.raises(FaissMissingError, match="pip install faiss-cpu"):
        GalleryIndex.build(np.eye(3, dtype=np.float32), POLICY, "key")
