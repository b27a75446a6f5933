"""LFW pairs files: View 1 and View 2 parsing on small files written here, and path mapping."""
from __future__ import annotations

import pytest

from facedata.errors import DatasetError
from facedata.lfw import Pair, format_pairs, pair_paths, parse_pairs

VIEW2 = """2\t2
Alice\t1\t2
Bob\t1\t3
Alice\t1\tBob\t2
Carol\t4\tAlice\t2
Bob\t2\t3
Carol\t1\t2
Bob\t1\tCarol\t3
Alice\t2\tCarol\t1
"""


def test_view2(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text(VIEW2)
    pairs = parse_pairs(path)
    assert len(pairs) == 8
    assert pairs[0] == Pair(0, "Alice", 1, "Alice", 2, True)
    assert pairs[3] == Pair(0, "Carol", 4, "Alice", 2, False)
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert format_pairs(pairs, folds=2, n=2) == VIEW2


def test_view1(tmp_path):
    path = tmp_path / "pairsDevTest.txt"
    path.write_text("1\nAlice 1 2\nAlice 1 Bob 1\n")
    assert parse_pairs(path) == [Pair(0, "Alice", 1, "Alice", 2, True), Pair(0, "Alice", 1, "Bob", 1, False)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty pairs file"),
        ("ten\n", "header must be"),
        ("1\nAlice 1 2\n", "header promises 1 fold"),
        ("1\nAlice 1 Bob 2\nAlice 1 Bob 2\n", "pairs.txt:2: expected a same-person"),
        ("1\nAlice 1 2\nAlice x Bob 2\n", "pairs.txt:3: image numbers must be integers"),
    ],
)
def test_bad_pairs_files(tmp_path, text, message):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        parse_pairs(path)


def test_pair_paths_and_missing_image(tmp_path):
    for name, n in [("Alice", 1), ("Alice", 2), ("Bob", 1)]:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}_{n:04d}.jpg").write_bytes(b"x")
    pairs = [Pair(0, "Alice", 1, "Alice", 2, True), Pair(0, "Alice", 1, "Bob", 1, False)]
    paths = pair_paths(pairs, tmp_path)
    assert paths[1] == (tmp_path / "Alice" / "Alice_0001.jpg", tmp_path / "Bob" / "Bob_0001.jpg")
    with pytest.raises(DatasetError, match=r"1 image\(s\) named by the pairs are missing[\s\S]*Bob_0002.jpg"):
        pair_paths(pairs + [Pair(0, "Bob", 1, "Bob", 2, True)], tmp_path)
    with pytest.raises(DatasetError, match="pairs file not found"):
        parse_pairs(tmp_path / "nope.txt")
