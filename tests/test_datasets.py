"""Face folders, filters and splits: hand-countable synthetic trees and the real aligned sample set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedata.datasets import FaceDataset, identity_disjoint_split, scan_face_folder, stratified_split
from facedata.errors import DatasetError
from facedata.preprocess import get_preset
from facedata.prepare import prepare_folder


def _tree(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{name}_{i + 1:04d}.jpg").write_bytes(b"x")
    return root


COUNTS = {"a": 1, "b": 2, "c": 6, "d": 60, "e": 75, "f": 80, "g": 75}


def test_filters(tmp_path):
    root = _tree(tmp_path / "ds", COUNTS)
    (root / "notes.txt").write_text("ignored: not in an identity folder")
    full = scan_face_folder(root)
    assert full.classes == list("abcdefg") and len(full) == sum(COUNTS.values())
    assert full.counts() == COUNTS
    assert scan_face_folder(root, min_images_per_class=75).classes == ["e", "f", "g"]
    assert scan_face_folder(root, min_images_per_class=2, max_classes=2).classes == ["e", "f"]  # ties by name
    with pytest.raises(DatasetError, match="no identity has >= 100 images \\(the most is 80\\)"):
        scan_face_folder(root, min_images_per_class=100)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="missing: dataset folder not found"):
        scan_face_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no <identity>/<image> files"):
        scan_face_folder(tmp_path / "empty")


def test_stratified_split_is_per_identity_and_deterministic(tmp_path):
    folder = scan_face_folder(_tree(tmp_path / "ds", COUNTS))
    train, val, test = stratified_split(folder, (0.8, 0.1, 0.1), seed=42)
    parts = [set(map(str, p.paths)) for p in (train, val, test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(map(len, parts)) == len(folder)
    # Hand-counted: floor(n * 0.1) images per identity go to val and to test, the rest to train.
    assert val.counts() == {"a": 0, "b": 0, "c": 0, "d": 6, "e": 7, "f": 8, "g": 7}
    assert train.counts()["a"] == 1 and train.counts()["f"] == 64
    again = stratified_split(folder, (0.8, 0.1, 0.1), seed=42)
    assert [list(p.paths) for p in again] == [list(p.paths) for p in (train, val, test)]
    other = stratified_split(folder, (0.8, 0.1, 0.1), seed=7)
    assert list(other[1].paths) != list(val.paths)
    with pytest.raises(DatasetError, match="sum to 1"):
        stratified_split(folder, (0.8, 0.1))


def test_identity_disjoint_split(tmp_path):
    folder = scan_face_folder(_tree(tmp_path / "ds", COUNTS))
    split = identity_disjoint_split(folder, n_query=2, n_distractor=2, seed=1, query_images=6, distractor_images=60)
    ids = [set(folder.classes[i] for i in np.unique(p.labels)) for p in (split.train, split.query, split.distractor)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(ids[1]) == 2 and len(ids[2]) == 2
    assert all(n == 6 for n in np.bincount(split.query.labels)[np.unique(split.query.labels)])
    assert all(n == 60 for n in np.bincount(split.distractor.labels)[np.unique(split.distractor.labels)])
    assert ids[1] <= {"c", "d", "e", "f", "g"}  # query identities need >= 6 images
    again = identity_disjoint_split(folder, 2, 2, seed=1, query_images=6, distractor_images=60)
    assert list(again.query.paths) == list(split.query.paths)
    with pytest.raises(DatasetError, match="need >= 6 images each; only 5"):
        identity_disjoint_split(folder, n_query=6, n_distractor=0, query_images=6)
    with pytest.raises(DatasetError, match="distractor identities requested"):
        identity_disjoint_split(folder, n_query=1, n_distractor=7)


def test_face_dataset_on_real_aligned_crops(sample_data, tmp_path):
    ids = sample_data / "sample_identities"
    src = tmp_path / "src"
    for name in ("Barack_Obama", "Joe_Biden"):
        (src / name).mkdir(parents=True)
        for p in sorted((ids / name).glob("*.jpg"))[:2]:
            (src / name / p.name).write_bytes(p.read_bytes())
    prepare_folder(src, tmp_path / "aligned", workers=0, progress=False)
    folder = scan_face_folder(tmp_path / "aligned")
    assert folder.classes == ["Barack_Obama", "Joe_Biden"] and len(folder) == 3
    ds = FaceDataset(folder, get_preset("arcface112"))
    x, y = ds[2]
    assert tuple(x.shape) == (3, 112, 112) and y == 1
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    flipped = FaceDataset(folder, get_preset("arcface112"), augment=lambda im, rng: im[:, ::-1].copy())
    assert np.allclose(flipped[0][0].numpy(), ds[0][0].numpy()[:, :, ::-1])


def test_sample_identity_set(sample_data):
    folder = scan_face_folder(sample_data / "sample_identities")
    assert len(folder.classes) == 614  # 609 portraits + Obama, Biden, the astronaut, the man, the woman
    multi = scan_face_folder(sample_data / "sample_identities", min_images_per_class=2)
    assert multi.counts() == {"Barack_Obama": 5, "pyfeat_man": 28, "pyfeat_woman": 16}


def test_choose_open_set_identities_on_any_labels():
    from facedata.datasets import choose_open_set_identities

    labels = np.array(["ann"] * 3 + ["bob"] * 2 + ["cy"] + ["dee"] + ["eve"] * 4)
    q, d, _ = choose_open_set_identities(labels, 2, None, seed=1)
    assert len(q) == 2 and set(q) <= {"ann", "bob", "eve"}  # only identities with >= 2 images
    assert set(d) == {"ann", "bob", "cy", "dee", "eve"} - set(q)  # None: every remaining identity
    again, _, _ = choose_open_set_identities(labels, 2, None, seed=1)
    assert list(again) == list(q)  # seeded
    with pytest.raises(DatasetError, match="4 query identities need >= 2 images each; only 3"):
        choose_open_set_identities(labels, 4, 1)
    with pytest.raises(DatasetError, match="9 distractor identities requested; only 2"):
        choose_open_set_identities(labels, 3, 9)


def test_benchmark_hold_out_comes_first_and_is_disjoint(tmp_path):
    """The benchmark's identities are set aside before the run's own hold-out, from another seed stream: the
    same people whatever the run's other counts, and in no other part."""
    from facedata.datasets import held_out_split
    from facedata.splits import SplitSpec

    root = _tree(tmp_path / "ds", {f"p{i:02d}": 6 + i % 3 for i in range(30)})
    spec = SplitSpec(data=str(root), benchmark_query=4, benchmark_distractor=5, open_set_query=3,
                     open_set_distractor=2, open_set_query_images=6)
    s = held_out_split(spec)

    def names(f):
        return {f.classes[i] for i in np.unique(f.labels)}

    parts = [names(f) for f in (s.train, s.query, s.distractor, s.benchmark_query, s.benchmark_distractor)]
    assert [len(p) for p in parts] == [30 - 4 - 5 - 3 - 2, 3, 2, 4, 5]
    assert all(not (a & b) for i, a in enumerate(parts) for b in parts[i + 1:])
    assert len(s.benchmark_query) == 4 * 6  # 6 images a query identity
    counts = scan_face_folder(root).counts()
    assert len(s.benchmark_distractor) == sum(counts[n] for n in parts[4])  # distractors: every image
    other = held_out_split(SplitSpec(data=str(root), benchmark_query=4, benchmark_distractor=5, open_set_query=1))
    assert names(other.benchmark_query) == parts[3] and names(other.benchmark_distractor) == parts[4]
    plain = held_out_split(SplitSpec(data=str(root), open_set_query=3, open_set_distractor=2, open_set_query_images=6))
    assert len(plain.benchmark_query) == len(plain.benchmark_distractor) == 0 and len(names(plain.train)) == 25
