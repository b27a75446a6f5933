"""The benchmark's "composed" set in-process on real faces: a tiny split of the small aligned set stands in for
data/composed (2 query identities x 4 images, 6 distractor identities set aside first, as config.COMPOSED_SPLIT
does with 200 x 6 and 400). The set aside people are disjoint from what a run trains and selects on; the rows,
counts and AUC are checked against the split and a hand computation; a checkpoint that trained on one of those
people is marked while one trained with the split is scored; two models get a paired comparison."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import config
from facedata.datasets import held_out_split
from facedata.splits import SplitSpec
from id_rate import evaluate as ev
from id_rate.benchmark import TRAINED_ON, main
from id_rate.metrics import SEED_FPRS
from test_benchmark import _trained_checkpoint

N_QUERY, N_DISTRACTOR, QUERY_IMAGES = 2, 6, 4  # the small set has 3 people with >= 4 faces
SEED = config.COMPOSED_SPLIT["split_seed"]  # the benchmark's default: the composed recipes' split seed


def _names(folder) -> set[str]:
    return {folder.classes[i] for i in np.unique(folder.labels)}


@pytest.fixture(scope="module")
def run_split(small_aligned):
    """A training run's split of the small set with a benchmark hold-out: the split and its training classes
    (training.data.make_splits: the classes a checkpoint of that run stores)."""
    from training.config import TrainConfig
    from training.data import make_splits

    cfg = TrainConfig(data=str(small_aligned), benchmark_query=N_QUERY, benchmark_distractor=N_DISTRACTOR,
                      benchmark_query_images=QUERY_IMAGES, open_set_distractor=3, val_fraction=0.0, split_seed=SEED)
    return cfg.split, make_splits(cfg)


def _argv(folder: Path, out: Path, *extra: str) -> list[str]:
    return ["--sets", "composed", "--composed-dir", str(folder), "--composed-query-ids", str(N_QUERY),
            "--composed-distractor-ids", str(N_DISTRACTOR), "--composed-query-images", str(QUERY_IMAGES),
            "--out", str(out), "--no-cache", "--no-progress", "--device", "cpu", *extra]


def test_benchmark_people_are_disjoint_from_training_and_the_open_set_hold_out(run_split):
    split, parts = run_split
    held = held_out_split(split)
    query, distractor = _names(held.benchmark_query), _names(held.benchmark_distractor)
    assert (len(query), len(distractor)) == (N_QUERY, N_DISTRACTOR) and not query & distractor
    assert np.all(np.bincount(held.benchmark_query.labels)[sorted(held.benchmark_query.classes.index(q)
                                                                  for q in query)] == QUERY_IMAGES)
    trained = set(parts.train.classes)  # what a checkpoint of this run says it trained on
    open_set = _names(parts.query) | _names(parts.distractor)  # what chooses its epoch
    assert len(open_set) == 3 and trained and not (query | distractor) & (trained | open_set)
    # every person is in exactly one part
    assert len(trained) + len(open_set) + N_QUERY + N_DISTRACTOR == len(held.train.classes)
    # drawn first: the same people whatever the open-set hold-out (the benchmark scores the split without it)
    plain = held_out_split(SplitSpec(data=split.data, benchmark_query=N_QUERY, benchmark_distractor=N_DISTRACTOR,
                                     benchmark_query_images=QUERY_IMAGES, split_seed=SEED))
    assert plain.benchmark_query.paths == held.benchmark_query.paths
    assert plain.benchmark_distractor.paths == held.benchmark_distractor.paths


def test_composed_rows_trained_on_marked_and_a_paired_comparison(small_aligned, run_split, tmp_path, monkeypatch,
                                                                 capsys):
    split, parts = run_split
    held = held_out_split(split)
    distractor_names = sorted(_names(held.benchmark_distractor))
    monkeypatch.setitem(config.MODELS, "tiny-random", dict(random_init="mobilefacenet", seed=1, embedding_size=32))
    # trained with this split: its classes are the training part, none of the benchmark's people
    monkeypatch.setitem(config.MODELS, "tiny-split",
                        dict(checkpoint=_trained_checkpoint(tmp_path / "split.pt", list(parts.train.classes))))
    # trained with another split: one of the benchmark's distractors among its classes
    monkeypatch.setitem(config.MODELS, "tiny-trained", dict(checkpoint=_trained_checkpoint(
        tmp_path / "trained.pt", list(parts.train.classes) + distractor_names[:1])))
    tables: dict = {}
    embed_all = ev._embed_all
    monkeypatch.setattr(ev, "_embed_all", lambda e, p, *a: tables.setdefault(e.name, embed_all(e, p, *a)))
    out = tmp_path / "out"
    rc = main(["--models", "tiny-random", "tiny-split", "tiny-trained", "--bootstrap", "20",
               "--compare", "tiny-split", "tiny-random", *_argv(small_aligned, out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert set(tables) == {"tiny-random", "tiny-split"}  # the marked model embeds nothing
    res = json.loads((out / "results.json").read_text())
    assert list(res["meta"]["sets"]) == ["composed"]
    n_distractor_images = len(held.benchmark_distractor)
    for name in ("tiny-random", "tiny-split"):
        cell = res["models"][name]["composed"]
        # 2 x 4 queries; positives 2 x C(4, 2) = 12; negatives C(8, 2) - 12 = 16 query pairs + 8 x each distractor
        assert (cell["n_query"], cell["n_query_identities"], cell["n_pos"]) == (8, 2, 12)
        assert (cell["n_distractor"], cell["n_neg"]) == (n_distractor_images, 16 + 8 * n_distractor_images)
        assert set(cell["bootstrap95_over_identities"]) >= {"auc"}
        # the AUC by hand: the share of (positive, negative) score pairs the positive wins, ties counting half
        table = tables[name]
        e = lambda folder: np.stack([table[p] for p in folder.paths])  # noqa: E731
        q, d = e(held.benchmark_query), e(held.benchmark_distractor)
        q, d = q / np.linalg.norm(q, axis=1, keepdims=True), d / np.linalg.norm(d, axis=1, keepdims=True)
        ql = held.benchmark_query.labels
        i, j = np.triu_indices(len(q), 1)
        s = np.sum(q[i] * q[j], axis=1)
        pos, neg = s[ql[i] == ql[j]], np.r_[s[ql[i] != ql[j]], (q @ d.T).ravel()]
        wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        assert cell["auc"] == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-6)
    marked = res["models"]["tiny-trained"]["composed"]
    assert marked["skipped"] == TRAINED_ON and distractor_names[0] in marked["detail"]
    rows = {r["model"]: r for r in csv.DictReader((out / "table.csv").open())}
    for f in SEED_FPRS:
        assert rows["tiny-random"][f"Composed TPR@FPR={f:g}"] not in ("", "-")
    assert rows["tiny-random"]["Composed AUC"] == f"{res['models']['tiny-random']['composed']['auc']:.4f}"
    assert rows["tiny-random"]["Composed AUC 95% CI"] and rows["tiny-trained"]["Composed TPR@FPR=0.5"] == TRAINED_ON
    comp = res["comparisons"][0]
    assert (comp["a"], comp["b"]) == ("tiny-split", "tiny-random")
    auc = comp["composed"]["auc"]
    assert auc["resampled"] == "identities" and auc["n_resamples"] == 20 and "verdict" in auc
    a, b = (res["models"][m]["composed"]["auc"] for m in ("tiny-split", "tiny-random"))
    assert auc["diff"] == pytest.approx(a - b)
    crows = list(csv.DictReader((out / "comparisons.csv").open()))
    assert [r["set"] for r in crows] == ["Composed"] and "paired bootstrap over identities" in crows[0]["test"]
    md = (out / "table.md").read_text()
    assert "**Composed**: 2 query identities (4 images each) and 6 distractor identities" in md


def test_composed_counts_default_to_the_recipes_split(small_aligned, tmp_path, monkeypatch, capsys):
    """Without the --composed-* counts the benchmark asks for config.COMPOSED_SPLIT's people: more than the small
    set has, so the error names the 200 query identities."""
    monkeypatch.setitem(config.MODELS, "tiny-random", dict(random_init="mobilefacenet", seed=1, embedding_size=32))
    out = tmp_path / "out"
    argv = ["--models", "tiny-random", "--sets", "composed", "--composed-dir", str(small_aligned), "--out", str(out),
            "--no-cache", "--no-progress", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{config.COMPOSED_SPLIT['benchmark_query']} query identities need >= " \
           f"{config.COMPOSED_SPLIT['benchmark_query_images']} images" in err and "Traceback" not in err
    # a query identity needs two images for a same-identity pair
    assert main(argv + ["--composed-query-images", "1"]) == 2
    assert "--composed-query-images 1: must be at least 2" in capsys.readouterr().err
