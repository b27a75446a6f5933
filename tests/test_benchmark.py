"""The benchmark command in-process on tiny sets of real faces: an LFW-layout folder with a 10-fold pairs
file, a stand-in CFP protocol over the same faces, and a CelebA-like aligned folder; the table's rows and
columns, a trained-on cell marked (not fatal), missing data folders, and a model compared with itself."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facedata.lfw import Pair, format_pairs
import config
from id_rate import benchmark
from id_rate import evaluate as ev
from id_rate.benchmark import TRAINED_ON, main
from id_rate.evaluate import Part, PairSet, Protocol

PEOPLE = ("pyfeat_man", "pyfeat_woman", "Barack_Obama")


def _lfw_layout(small_aligned: Path, root: Path) -> tuple[Path, list[str]]:
    """<name>/<name>_NNNN.jpg from the small aligned set: the three multi-image people and 4 singles."""
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for i, f in enumerate(sorted((small_aligned / person).glob("*.jpg")), 1):
            shutil.copy(f, root / person / f"{person}_{i:04d}.jpg")
    singles = sorted(p for p in small_aligned.iterdir() if p.is_dir() and p.name not in PEOPLE)[:4]
    for p in singles:
        (root / p.name).mkdir()
        shutil.copy(next(p.glob("*.jpg")), root / p.name / f"{p.name}_0001.jpg")
    return root, [p.name for p in singles]


def _pairs(root: Path, singles: list[str]) -> list[Pair]:
    """10 folds x (1 same + 1 different) pairs over the LFW-layout folder."""
    n = {p: len(list((root / p).iterdir())) for p in PEOPLE}
    out = []
    for k in range(10):
        a = PEOPLE[k % 3]
        i = 1 + k % (n[a] - 1)
        b = PEOPLE[(k + 1) % 3] if k % 2 else singles[k % len(singles)]
        out += [Pair(k, a, i, a, i + 1, True), Pair(k, a, 1 + (k + 2) % n[a], b, 1, False)]
    return out


@pytest.fixture(scope="module")
def sets(small_aligned, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bench_sets")
    lfw, singles = _lfw_layout(small_aligned, base / "lfw_aligned")
    (base / "pairs.txt").write_text(format_pairs(_pairs(lfw, singles), folds=10, n=1))
    for d in ("cfp", "cfp_aligned"):
        (base / d).mkdir()
    # no composed set: a default run skips it (tests/test_benchmark_composed.py scores one)
    return {"lfw": lfw, "pairs": base / "pairs.txt", "cfp": base / "cfp", "cfp_aligned": base / "cfp_aligned",
            "celeba": small_aligned, "composed": base / "composed-not-made"}


def _fake_cfp(sets: dict[str, Path], calls: list):
    """A stand-in for ``cfp_protocol``: 20 pairs in 10 folds over the LFW-layout faces, no ID-rate parts."""
    from facedata.lfw import pair_paths

    def cfp_protocol(cfp_root, aligned_dir, kind="FP", missing="error") -> Protocol:
        calls.append((Path(cfp_root), Path(aligned_dir), kind, missing))
        pairs = _pairs(sets["lfw"], sorted(p.name for p in sets["lfw"].iterdir() if p.name not in PEOPLE))
        if kind == "FP":
            pairs = pairs[::-1]  # another order of pairs: another set for the comparison
        pp, bad = pair_paths(pairs, sets["lfw"], missing=missing)
        ps = PairSet(f"cfp_{kind}", [x for ab in pp for x in ab], np.array([p.same for p in pairs]),
                     np.array([p.fold for p in pairs]) if kind == "FF" else np.repeat(np.arange(10), 2), bad)
        empty = Part([], np.zeros(0, str))
        return Protocol(f"CFP-{kind}", f"stand-in CFP-{kind}: {len(pairs)} pairs", empty, empty, pairs=ps)

    return cfp_protocol


def _argv(sets: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["--lfw-dir", str(sets["lfw"]), "--lfw-pairs", str(sets["pairs"]), "--cfp-root", str(sets["cfp"]),
            "--cfp-dir", str(sets["cfp_aligned"]), "--celeba-dir", str(sets["celeba"]), "--celeba-query-ids", "3",
            "--celeba-distractor-ids", "12", "--celeba-query-images", "4", "--composed-dir", str(sets["composed"]),
            "--out", str(out), "--no-cache",
            "--no-progress", "--device", "cpu", *extra]


def _trained_checkpoint(path: Path, classes: list[str]) -> Path:
    """A tiny checkpoint whose spec says it trained on ``classes``."""
    from facedata.preprocess import get_preset
    from models_definition.backbones import build_embedder
    from models_definition.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_embedder("mobilefacenet", 32).eval()
    save_checkpoint(path, model, {"backbone": "mobilefacenet", "embedding_size": 32,
                                  "preprocess": get_preset("arcface112").to_dict(), "classes": classes})
    return path


def test_table_rows_columns_and_a_trained_on_cell(sets, tmp_path, monkeypatch, capsys):
    calls: list = []
    monkeypatch.setattr(ev, "cfp_protocol", _fake_cfp(sets, calls))
    cfg = config
    ckpt = _trained_checkpoint(tmp_path / "m.pt", ["pyfeat_man"])
    monkeypatch.setitem(cfg.MODELS, "tiny-trained", dict(checkpoint=ckpt))
    monkeypatch.setitem(cfg.MODELS, "tiny-random", dict(random_init="mobilefacenet", seed=1, embedding_size=32))
    # the same weights under another name: two cells whose every embedding, decision and figure are equal
    monkeypatch.setitem(cfg.MODELS, "tiny-twin", dict(random_init="mobilefacenet", seed=1, embedding_size=32))
    embedded, embed_all = [], ev._embed_all
    monkeypatch.setattr(ev, "_embed_all", lambda e, p, *a: embedded.append((e.name, p.name)) or embed_all(e, p, *a))
    out = tmp_path / "out"
    rc = main(["--models", "random-init", "tiny-trained", "tiny-random", "tiny-twin", "--bootstrap", "20",
               "--compare", "tiny-random", "tiny-trained", "--compare", "tiny-random", "tiny-twin",
               *_argv(sets, out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert [c[2] for c in calls] == ["FF", "FP"] and calls[0][:2] == (sets["cfp"], sets["cfp_aligned"])
    # each model embeds each set's images once, CFP once for FF and FP; a trained-on cell embeds nothing
    celeba = f"split of {sets['celeba'].name}"
    assert embedded == [("random-init", "LFW"), ("random-init", "CFP-FP"), ("random-init", celeba),
                        ("tiny-trained", "CFP-FP"), ("tiny-random", "LFW"), ("tiny-random", "CFP-FP"),
                        ("tiny-random", celeba), ("tiny-twin", "LFW"), ("tiny-twin", "CFP-FP"), ("tiny-twin", celeba)]
    # the default sets without the composed one, whose folder is not made yet: one note, no columns
    assert captured.err.count(f"note: Composed skipped: {sets['composed']} not found") == 1
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["model"] for r in rows] == ["random-init", "tiny-trained", "tiny-random", "tiny-twin"]
    assert not [c for c in rows[0] if c.startswith("Composed")]
    for t in ("LFW", "CFP-FF", "CFP-FP"):
        for col in (f"{t} acc % (10-fold)", f"{t} acc 95% CI", f"{t} TAR@FAR=1e-3", f"{t} AUC", f"{t} AUC 95% CI"):
            assert col in rows[0], col
    for f in ("0.5", "0.25", "0.1", "0.05", "0.01", "0.005", "0.001"):
        assert f"CelebA TPR@FPR={f}" in rows[0]
    assert rows[0]["LFW TAR@FAR=1e-3"] == "n/r"  # 10 different pairs cannot resolve FAR 1e-3
    assert " ± " in rows[0]["LFW acc % (10-fold)"] and rows[0]["CelebA AUC 95% CI"]
    # the checkpoint trained on pyfeat_man: LFW and CelebA score him, so those cells are marked; CFP is scored
    trained = rows[1]
    assert trained["LFW acc % (10-fold)"] == TRAINED_ON and trained["LFW AUC"] == "-"
    assert trained["CelebA TPR@FPR=0.5"] == TRAINED_ON
    assert " ± " in trained["CFP-FF acc % (10-fold)"]
    res = json.loads((out / "results.json").read_text())
    assert res["models"]["tiny-trained"]["lfw"]["skipped"] == TRAINED_ON
    assert "pyfeat_man" in res["models"]["tiny-trained"]["lfw"]["detail"]
    lfw = res["models"]["random-init"]["lfw"]
    assert lfw["n_pairs"] == 20 and len(lfw["fold_accuracy"]) == 10 and "bootstrap95_over_folds" in lfw
    assert set(res["models"]["random-init"]["celeba"]["bootstrap95_over_identities"]) >= {"auc", "tpr@0.001"}
    # comparisons: the explicit one first, then each model against random-init
    comps = [(c["a"], c["b"]) for c in res["comparisons"]]
    assert comps == [("tiny-random", "tiny-trained"), ("tiny-random", "tiny-twin"), ("tiny-trained", "random-init"),
                     ("tiny-random", "random-init"), ("tiny-twin", "random-init")]
    first = res["comparisons"][0]
    assert first["lfw"] == {"skipped": f"tiny-trained {TRAINED_ON}"}
    ff = first["cfp-ff"]
    assert ff["discordant_pairs"]["n"] == 20 and "verdict" not in ff["discordant_pairs"]  # a description only
    # 20 resamples of the 10 folds: p >= 2 (1 + 0) / (20 + 1) = 0.095 whatever the data, so no side can be named
    for key in ("accuracy", "auc"):
        assert ff[key]["resampled"] == "folds" and ff[key]["n_resamples"] == 20 and ff[key]["p_value"] >= 2 / 21
        assert ff[key]["verdict"].startswith("no difference beyond chance")
    # the twin: equal decisions on every pair, so every resampled difference is 0: m = 20, p = 1, interval 0 to 0
    twin = res["comparisons"][1]
    for name in ("lfw", "cfp-ff", "cfp-fp"):
        assert twin[name]["discordant_pairs"]["n10"] == twin[name]["discordant_pairs"]["n01"] == 0
        for key in ("accuracy", "auc"):
            d = twin[name][key]
            assert (d["diff"], d["low"], d["high"], d["p_value"]) == (0.0, 0.0, 0.0, 1.0)
            assert d["verdict"] == "no difference beyond chance (p=1.000)"
    assert twin["celeba"]["auc"]["verdict"] == "no difference beyond chance (p=1.000)"
    last = res["comparisons"][3]["celeba"]
    assert "auc" in last and "tpr@0.001" not in last  # 3 x 4 queries x 12 distractors: FPR 1e-3 not resolvable
    md = (out / "table.md").read_text()
    assert "LFW 99.45, CFP-FP 95.21" in md and "## Paired comparisons" in md
    assert "paired bootstrap over whole folds (people-disjoint)" in md and "folds share no people" in md
    assert "Traceback" not in captured.err


def test_compare_a_model_with_itself_is_no_difference(sets, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["--models", "random-init", "--sets", "lfw", "celeba", "--bootstrap", "20",
               "--compare", "random-init", "random-init", *_argv(sets, out)])
    assert rc == 0, capsys.readouterr().err
    comps = json.loads((out / "results.json").read_text())["comparisons"]
    assert len(comps) == 1
    c = comps[0]
    assert c["lfw"]["discordant_pairs"]["n10"] == c["lfw"]["discordant_pairs"]["n01"] == 0
    for verdict in (c["lfw"]["accuracy"]["verdict"], c["lfw"]["auc"]["verdict"], c["celeba"]["auc"]["verdict"]):
        assert verdict == "no difference beyond chance (p=1.000)"
    assert (c["celeba"]["auc"]["low"], c["celeba"]["auc"]["high"]) == (0.0, 0.0)
    rows = list(csv.DictReader((out / "comparisons.csv").open()))
    assert {r["set"] for r in rows} == {"LFW", "CelebA"}
    described = [r for r in rows if r["test"].startswith("discordant pairs")]
    assert [r["verdict"] for r in described] == ["see the accuracy row"]  # counts only: no test, no verdict
    assert all(r["verdict"].startswith("no difference beyond chance") for r in rows if r not in described)


@pytest.mark.parametrize("which, flag, hint", [
    ("lfw", "--lfw-dir", "make lfw"),
    ("cfp-fp", "--cfp-dir", "python -m facedata.prepare"),
    ("cfp-ff", "--cfp-root", "python -m facedata.fetch cfp"),
    ("celeba", "--celeba-dir", "make celeba"),
    ("composed", "--composed-dir", "make compose"),  # asked for by name: an error, not the default run's note
])
def test_a_missing_set_folder_is_an_error(sets, tmp_path, capsys, which, flag, hint):
    gone = tmp_path / "not-here"
    out = tmp_path / "out"
    argv = _argv(sets, out)
    argv[argv.index(flag) + 1] = str(gone)
    assert main(["--models", "random-init", "--sets", which, *argv]) == 2
    err = capsys.readouterr().err
    assert "id_rate.benchmark: error:" in err and str(gone) in err and hint in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())  # refused before any work


def test_bad_input_exit_2_and_interrupt_130(sets, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main(["--models", "random-init", "--compare", "random-init", "sface", *_argv(sets, out)]) == 2
    assert "'sface' is not in --models" in capsys.readouterr().err
    assert main(["--models", "no-such-model", *_argv(sets, out)]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert main(["--models", "random-init", *_argv(sets, tmp_path / "a-file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark, "run", interrupted)
    assert main(["--models", "random-init", *_argv(sets, out)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_cfp_ff_reads_the_fp_table_only_when_it_holds_every_image(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from id_rate.benchmark import _needed, embeddings_for

    files = [tmp_path / f"{i}.jpg" for i in range(4)]
    for f in files:
        f.write_bytes(b"x")
    empty = Part([], np.zeros(0, str))

    def proto(name: str, paths: list[Path]) -> Protocol:
        return Protocol(name, name, empty, empty, pairs=PairSet(name, paths, np.array([True, False])))

    embedded = []
    monkeypatch.setattr(ev, "_embed_all", lambda e, p, *a: embedded.append(p.name) or {q: 1 for q in _needed(p)})
    args = SimpleNamespace(no_progress=True)
    protocols = {"cfp-ff": proto("FF", files[:2] * 2), "cfp-fp": proto("FP", files)}
    tables: dict = {}
    assert set(embeddings_for(None, "cfp-ff", protocols, args, None, tables)) == set(files)
    assert set(embeddings_for(None, "cfp-fp", protocols, args, None, tables)) == set(files)
    assert embedded == ["FP"]
    protocols = {"cfp-ff": proto("FF", files[:2] * 2), "cfp-fp": proto("FP", files[1:] + files[1:2])}  # lacks 0.jpg
    embedded.clear()
    assert set(embeddings_for(None, "cfp-ff", protocols, args, None, {})) == set(files[:2])
    assert embedded == ["FP", "FF"]


def _mini_cfp(small_aligned: Path, base: Path) -> tuple[Path, Path]:
    """CFP's official layout with every protocol file complete (500 names, both pair lists, 10 folds x 350 +
    350 pairs per protocol) whose pairs all name 3 people x (3 frontal + 2 profile) real faces; only those
    15 images are aligned, so the other images are absent (--missing-pairs wrong: no pair names them)."""
    root, aligned = base / "cfp", base / "cfp_aligned"
    (root / "Data").mkdir(parents=True)
    (root / "Data" / "list_name.txt").write_text("".join(f"Person {k}\n" for k in range(1, 501)))
    (root / "Protocol").mkdir()
    (root / "Protocol" / "Pair_list_F.txt").write_text("".join(
        f"{(p - 1) * 10 + n} ../Data/Images/{p:03d}/frontal/{n:02d}.jpg\n" for p in range(1, 501) for n in range(1, 11)))
    (root / "Protocol" / "Pair_list_P.txt").write_text("".join(
        f"{(p - 1) * 4 + n} ../Data/Images/{p:03d}/profile/{n:02d}.jpg\n" for p in range(1, 501) for n in range(1, 5)))
    for i, person in enumerate(PEOPLE, 1):
        faces = sorted((small_aligned / person).glob("*.jpg"))
        for view, n in (("frontal", 3), ("profile", 2)):
            (aligned / f"{i:03d}" / view).mkdir(parents=True, exist_ok=True)
            for k in range(1, n + 1):
                shutil.copy(faces[(k - 1 + (3 if view == "profile" else 0)) % len(faces)],
                            aligned / f"{i:03d}" / view / f"{k:02d}.jpg")
    f = lambda p, n: (p - 1) * 10 + n  # noqa: E731  (line numbers in Pair_list_F / _P)
    pr = lambda p, n: (p - 1) * 4 + n  # noqa: E731
    for kind in ("FF", "FP"):
        second = f if kind == "FF" else pr
        for fold in range(1, 11):
            d = root / "Protocol" / "Split" / kind / f"{fold:02d}"
            d.mkdir(parents=True)
            same = [(f(p, 1 + k % 3), second(p, 1 + (k + 1) % (3 if kind == "FF" else 2)))
                    for k in range(350) for p in [1 + (k + fold) % 3]]
            diff = [(f(p, 1 + k % 3), second(1 + (p % 3), 1 + k % 2)) for k in range(350) for p in [1 + (k + fold) % 3]]
            (d / "same.txt").write_text("".join(f"{i},{j}\n" for i, j in same))
            (d / "diff.txt").write_text("".join(f"{i},{j}\n" for i, j in diff))
    return root, aligned


def test_cfp_sets_through_the_real_cfp_protocol(small_aligned, tmp_path, capsys):
    root, aligned = _mini_cfp(small_aligned, tmp_path)
    out = tmp_path / "out"
    rc = main(["--models", "random-init", "--sets", "cfp-ff", "cfp-fp", "--cfp-root", str(root), "--cfp-dir",
               str(aligned), "--missing-pairs", "wrong", "--bootstrap", "10", "--out", str(out), "--no-cache",
               "--no-progress", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())["models"]["random-init"]
    for kind in ("cfp-ff", "cfp-fp"):
        assert res[kind]["n_pairs"] == 7000 and len(res[kind]["fold_accuracy"]) == 10
        assert res[kind]["missing_pairs_counted_wrong"] == 0 and res[kind]["tar_at_far_1e3"] is not None
    row = next(csv.DictReader((out / "table.csv").open()))
    assert " ± " in row["CFP-FF acc % (10-fold)"] and " ± " in row["CFP-FP acc % (10-fold)"]


def _cell(correct: np.ndarray, folds: np.ndarray) -> benchmark.PairCell:
    """A pair cell with given decisions; 10 same + 10 different pairs per fold, all ranked right (AUC 1)."""
    y = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], len(correct) // 20)
    return benchmark.PairCell(None, 0, np.where(y, 0.2, 0.8), y, correct, folds, None)


def test_pair_verdict_comes_from_resampled_folds():
    from types import SimpleNamespace

    from id_rate.paired import fold_resamples, mcnemar_exact

    args, folds, right = SimpleNamespace(bootstrap=40, seed=0), np.repeat(np.arange(10), 20), np.ones(200, bool)
    # B right on every pair; A wrong on one pair of every fold: every resample of 10 folds has A - B = -1/20 < 0,
    # so m = 0 and p = 2 (1 + 0) / 41 = 0.049 < 0.05: B better. Equal distances: AUC difference 0 everywhere, p = 1.
    spread = right.copy()
    spread[::20] = False
    c = benchmark.compare_pair_cells(_cell(spread, folds), _cell(right, folds), "A", "B", args)
    acc = c["accuracy"]
    assert (acc["diff"], acc["low"], acc["high"]) == pytest.approx((-0.05, -0.05, -0.05))
    assert acc["p_value"] == 2 / 41 and acc["verdict"] == "B better (p=0.049)" and acc["resampled"] == "folds"
    assert c["auc"]["verdict"] == "no difference beyond chance (p=1.000)"
    assert (c["discordant_pairs"]["n10"], c["discordant_pairs"]["n01"]) == (0, 10)
    # the same 10 discordant pairs all in fold 0 (say its people are hard for A): exact McNemar, which treats the
    # pairs as independent, says p = 2 / 2^10 = 0.002; but a resample without fold 0 (chance 0.9^10 = 0.35) has
    # A - B = 0, counted on both sides, so p = 2 (1 + m) / 41 with m such resamples: no side named
    clustered = right.copy()
    clustered[:10] = False
    assert mcnemar_exact(clustered, right).p_value == 2 / 2 ** 10
    c = benchmark.compare_pair_cells(_cell(clustered, folds), _cell(right, folds), "A", "B", args)
    m = sum(not (folds[idx] == 0).any() for idx in fold_resamples(folds, 40, 0))
    assert m >= 1 and c["accuracy"]["p_value"] == pytest.approx(min(1.0, 2 * (1 + m) / 41))
    assert c["accuracy"]["verdict"].startswith("no difference beyond chance")
    assert (c["discordant_pairs"]["n10"], c["discordant_pairs"]["n01"]) == (0, 10)
    # one fold: nothing to cluster on, so pairs are resampled and the table says so
    one = np.zeros(200, int)
    c = benchmark.compare_pair_cells(_cell(spread, one), _cell(right, one), "A", "B", args)
    assert c["accuracy"]["resampled"] == c["auc"]["resampled"] == "pairs"
    rows = benchmark.comparison_rows({("A", "B"): {"lfw": c}})
    assert [r["test"] for r in rows][1:] == [f"{w}, paired bootstrap over pairs (the set has no folds: pairs treated "
                                             "as independent)" for w in ("accuracy", "AUC")]
    assert benchmark.comparison_rows({("A", "B"): {"lfw": {"discordant_pairs": c["discordant_pairs"]}}})[0][
        "verdict"] == "no test (--bootstrap 0)"
