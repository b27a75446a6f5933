"""Gallery: folder layouts, hand-computed matching, enrolment of real photos, skips, the cache."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import config
from PIL import Image

from recognition.gallery import UNKNOWN, Gallery, GalleryError, enrol, scan_gallery


@pytest.fixture(scope="module")
def sface():
    from models_definition.zoo import load_model

    return load_model("sface", config.MODELS, device="cpu")




def test_scan_both_layouts(tmp_path):
    for rel in ("Ann.jpg", "Bob/1.jpg", "Bob/2.PNG", "README.md", ".hidden.jpg", "Bob/notes.txt", ".cache/x.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = [(n, p.relative_to(tmp_path).as_posix()) for n, p in scan_gallery(tmp_path)]
    assert got == [("Ann", "Ann.jpg"), ("Bob", "Bob/1.jpg"), ("Bob", "Bob/2.PNG")]


def test_match_takes_the_best_image_of_each_person():
    g = Gallery(["A", "A", "B"], np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32))
    (m,) = g.match(np.array([[0.8, 0.6]]), threshold=0.9)
    # A: max(0.8, 0.48 + 0.48 = 0.96) = 0.96; B: 0.6.
    assert (m.name, m.best) == ("A", "A") and m.similarity == pytest.approx(0.96)
    (m,) = g.match(np.array([[0.8, 0.6]]), threshold=0.97)
    assert (m.name, m.best) == (UNKNOWN, "A") and m.similarity == pytest.approx(0.96)
    a, b = g.match(np.array([[0.0, 1.0], [1.0, 0.0]]), threshold=0.5)
    assert (a.name, b.name) == ("B", "A")
    (m,) = Gallery([], np.zeros((0, 2), np.float32)).match(np.array([[1.0, 0.0]]), 0.3)
    assert m.name == UNKNOWN and m.similarity == float("-inf")


def _gallery(raw: Path, root: Path) -> Path:
    fr = raw / "face_recognition"
    (root / "Barack_Obama").mkdir(parents=True)
    shutil.copy(fr / "obama.jpg", root / "Barack_Obama" / "a.jpg")
    shutil.copy(fr / "obama2.jpg", root / "Barack_Obama" / "b.jpg")
    shutil.copy(fr / "biden.jpg", root / "Joe_Biden.jpg")
    shutil.copy(raw / "pyfeat" / "multi_face.jpg", root / "Group.jpg")
    Image.fromarray(np.full((240, 240, 3), 120, np.uint8)).save(root / "Wall.jpg")
    (root / "Broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def test_enrol_real_photos_skips_and_caches(raw, sface, detector, tmp_path, counting):
    folder = _gallery(raw, tmp_path / "people")
    cache = tmp_path / "cache"
    first = counting(sface)
    messages: list[str] = []
    g = enrol(folder, first, detector, cache, say=messages.append)
    assert g.names == ["Barack_Obama", "Barack_Obama", "Joe_Biden"] and g.people == ["Barack_Obama", "Joe_Biden"]
    assert first.crops == 3 and g.from_cache == 0
    reasons = {Path(s.path).name: s.reason for s in g.skipped}
    assert set(reasons) == {"Group.jpg", "Wall.jpg", "Broken.jpg"}
    assert reasons["Group.jpg"].startswith("5 faces found") and reasons["Wall.jpg"].startswith("no face found")
    assert reasons["Broken.jpg"].startswith("cannot read the image")
    assert any("Broken.jpg" in m for m in messages)
    assert np.allclose(np.linalg.norm(g.embeddings, axis=1), 1, atol=1e-5)
    # Obama's two photos match each other, Biden matches neither (SFace's threshold 0.363).
    assert float(g.embeddings[0] @ g.embeddings[1]) > 0.363 > float(g.embeddings[0] @ g.embeddings[2])

    again = counting(sface)
    g2 = enrol(folder, again, detector, cache)
    assert again.crops == 0 and g2.from_cache == 6 and np.array_equal(g2.embeddings, g.embeddings)

    shutil.copy(raw / "face_recognition" / "obama3.jpg", folder / "Barack_Obama" / "b.jpg")  # a changed file
    (folder / "Wall.jpg").unlink()
    third = counting(sface)
    g3 = enrol(folder, third, detector, cache)
    assert third.crops == 1 and g3.from_cache == 4 and len(g3.skipped) == 2
    assert not np.allclose(g3.embeddings[1], g.embeddings[1])


def test_empty_missing_and_unusable_galleries(raw, sface, detector, tmp_path):
    with pytest.raises(GalleryError, match="nowhere: gallery folder not found"):
        enrol(tmp_path / "nowhere", sface, detector)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("no photos yet")
    with pytest.raises(GalleryError, match="no images in the gallery.*--allow-empty-gallery"):
        enrol(tmp_path / "empty", sface, detector)
    g = enrol(tmp_path / "empty", sface, detector, allow_empty=True)
    assert len(g) == 0 and g.match(np.ones((1, 128), np.float32) / np.sqrt(128), 0.3)[0].name == UNKNOWN
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"junk")
    with pytest.raises(GalleryError, match=r"none of its 1 images could be enrolled: .*x.jpg: cannot read"):
        enrol(tmp_path / "bad", sface, detector)


def test_a_damaged_cache_is_rebuilt(raw, sface, detector, tmp_path, counting):
    folder = tmp_path / "people"
    folder.mkdir()
    shutil.copy(raw / "face_recognition" / "biden.jpg", folder / "Joe_Biden.jpg")
    cache = tmp_path / "cache"
    enrol(folder, sface, detector, cache)
    (cache_file,) = cache.glob("gallery-sface-*.json")
    other = tmp_path / "other"  # a second gallery with the same model keeps its own cache file
    other.mkdir()
    shutil.copy(raw / "face_recognition" / "obama.jpg", other / "Barack_Obama.jpg")
    enrol(other, sface, detector, cache)
    assert len(list(cache.glob("gallery-sface-*.json"))) == 2
    assert enrol(folder, sface, detector, cache).from_cache == 1
    cache_file.write_text("{ truncated")
    rebuilt = counting(sface)
    g = enrol(folder, rebuilt, detector, cache)
    assert rebuilt.crops == 1 and g.names == ["Joe_Biden"]


def test_match_equals_brute_force_on_unsorted_names():
    rng = np.random.default_rng(0)
    names = [str(n) for n in rng.choice(["cy", "ann", "bob", "dee"], 50)]
    e = rng.normal(size=(50, 8)).astype(np.float32)
    q = rng.normal(size=(20, 8)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    sims = q @ e.T
    for row, m in zip(sims, Gallery(names, e).match(q, 0.5)):
        best = {p: max(row[i] for i, n in enumerate(names) if n == p) for p in set(names)}
        who = max(best, key=best.get)
        assert m.best == who and m.similarity == pytest.approx(best[who], abs=1e-6)
        assert m.name == (who if best[who] >= 0.5 else UNKNOWN)


def test_a_changed_random_init_seed_is_not_served_from_the_gallery_cache(raw, detector, tmp_path, counting):
    """The gallery cache keys on the model's fingerprint: an entry whose seed changed, under the same name, is
    other weights, so its gallery is embedded again (it used to come back from the cache, stale)."""
    from models_definition.zoo import load_model

    folder = tmp_path / "people"
    folder.mkdir()
    shutil.copy(raw / "face_recognition" / "obama.jpg", folder / "Barack_Obama.jpg")
    shutil.copy(raw / "face_recognition" / "biden.jpg", folder / "Joe_Biden.jpg")
    cache = tmp_path / "cache"

    def baseline(seed: int):
        return load_model("baseline", {"baseline": dict(random_init="mobilefacenet", seed=seed, embedding_size=16)},
                          device="cpu")

    first = enrol(folder, baseline(0), detector, cache)
    same = counting(baseline(0))
    assert enrol(folder, same, detector, cache).from_cache == 2 and same.crops == 0
    reseeded = counting(baseline(1))
    g = enrol(folder, reseeded, detector, cache)
    assert reseeded.crops == 2 and g.from_cache == 0
    assert not np.allclose(g.embeddings, first.embeddings)
    np.testing.assert_allclose(g.embeddings, enrol(folder, baseline(1), detector, None).embeddings, atol=1e-6)
