"""P x K and pair samplers: batch composition, determinism per (seed, epoch), clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from facedata.errors import DatasetError
from facedata.samplers import PairSampler, PKSampler

LABELS = [0] * 5 + [1] * 3 + [2] * 1 + [3] * 1  # two portraits with one image each


def test_pk_batches():
    s = PKSampler(LABELS, p=3, k=4, batches_per_epoch=20, seed=1)
    labels = np.asarray(LABELS)
    for batch in s:
        assert len(batch) == 12
        ids = labels[batch].reshape(3, 4)
        assert all(len(set(row)) == 1 for row in ids)  # K images of one identity per block
        assert len(set(ids[:, 0])) == 3  # P different identities
    one = [b for b in s if 2 in labels[b]]
    assert one and all(sorted(set(np.asarray(b)[labels[b] == 2])) == [8] for b in one)  # repeated, augmented later


def test_pk_deterministic_per_epoch():
    a, b = PKSampler(LABELS, 2, 2, 5, seed=3), PKSampler(LABELS, 2, 2, 5, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)


def test_pk_errors():
    with pytest.raises(DatasetError, match="needs >= 3 identities with >= 2 images; the dataset has 2"):
        PKSampler(LABELS, p=3, k=2, min_images=2)
    with pytest.raises(DatasetError, match="P >= 2"):
        PKSampler(LABELS, p=1, k=2)


def test_pairs():
    s = PairSampler(LABELS, pairs=8, batches_per_epoch=10, seed=0)
    labels = np.asarray(LABELS)
    for batch in s:
        a, b = labels[batch[0::2]], labels[batch[1::2]]
        same = a == b
        assert same.sum() == 4 and (~same).sum() == 4
        assert all(x != y for x, y in zip(batch[0::2][:4], batch[1::2][:4]))  # two different images
    with pytest.raises(DatasetError, match="needs >= 2 identities"):
        PairSampler([0, 0, 0], pairs=2)
    with pytest.raises(DatasetError, match="identity with >= 2 images"):
        PairSampler([0, 1, 2], pairs=2)


def test_shuffle_sampler():
    from facedata.samplers import ShuffleSampler

    s = ShuffleSampler(list(range(10)), batch_size=3, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 3 and all(len(b) == 3 for b in batches)
    assert len(set(sum(batches, []))) == 9  # no repeats; the incomplete tenth image waits for another epoch
    with pytest.raises(DatasetError, match="a batch of 64 needs >= 64 images; the dataset has 10"):
        ShuffleSampler(list(range(10)), batch_size=64)


def test_pair_sampler_single_images_pair_with_themselves_only_when_asked():
    labels = [0, 1, 2, 3]  # one image each
    with pytest.raises(DatasetError, match="same-person pairs need an identity with >= 2 images"):
        PairSampler(labels, pairs=4)
    s = PairSampler(labels, pairs=4, batches_per_epoch=3, repeat_single=True, seed=0)
    for batch in s:
        a, b = batch[0::2], batch[1::2]
        assert [x == y for x, y in zip(a, b)] == [True, True, False, False]  # 2 same (augmented twice), 2 different
