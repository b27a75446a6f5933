"""One experiment definition: held-out splits from checkpoints, overlap refusal, thresholds per flip
setting, cache keys, pairs with missing images, and the centred-dataset fallback of prepare."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facedata.datasets import scan_face_folder
from facedata.errors import DatasetError
from facedata.fetch import lfw_style_crop
from facedata.io import load_image, save_image_atomic
from facedata.lfw import Pair, format_pairs, pair_paths
from facedata.prepare import CENTRED_LANDMARKS_FRAC, PrepareConfig, prepare_folder, read_manifest
from id_rate.embeddings import cache_key
from id_rate.evaluate import check_not_trained_on, evaluate, held_out_protocol, lfw_protocol, split_protocol
from id_rate.metrics import MetricError
from id_rate.protocols import pair_verification
from models_definition.backbones import build_embedder
from models_definition.checkpoint import save_checkpoint
from models_definition.fingerprint import StaleModelError
from models_definition.thresholds import pick_threshold, record
from models_definition.zoo import load_model
from training import TrainConfig, make_splits

ROOT = Path(__file__).resolve().parents[1]
SHARED_LFW = ROOT.parent / "shared" / "data" / "lfw" / "lfw-deepfunneled"


def _train_config(data: Path) -> TrainConfig:
    return TrainConfig(data=str(data), open_set_query=2, open_set_distractor=6, val_fraction=0.0, split_seed=7,
                       backbone="mobilefacenet", embedding_size=32, workers=0)


def test_held_out_split_of_a_checkpoint_equals_training(small_aligned):
    cfg = _train_config(small_aligned)
    splits = make_splits(cfg)  # what the engine trains and validates on
    spec = {"train_config": cfg.to_dict(), "classes": splits.train.classes}
    proto = held_out_protocol(spec)
    assert [str(p) for p in proto.query.paths] == [str(p) for p in splits.query.paths]
    assert [str(p) for p in proto.distractor.paths] == [str(p) for p in splits.distractor.paths]
    assert proto.identities().isdisjoint(splits.train.classes)
    check_not_trained_on(proto, "m", spec)  # nothing trained on: accepted
    # a split of the same folder with another seed scores people the checkpoint trained on: refused, named
    other = split_protocol(small_aligned, 2, 6, seed=1)
    overlap = sorted(other.identities() & set(splits.train.classes))
    assert overlap
    with pytest.raises(MetricError, match=rf"model 'm' was trained on {len(overlap)} of the identities[\s\S]*{overlap[0]}"):
        check_not_trained_on(other, "m", spec)


def test_evaluate_refuses_a_checkpoint_scored_on_its_training_people(small_aligned, tmp_path):
    cfg = _train_config(small_aligned)
    splits = make_splits(cfg)
    torch.manual_seed(0)
    model = build_embedder("mobilefacenet", 32).eval()
    from facedata.preprocess import get_preset

    save_checkpoint(tmp_path / "best.pt", model, {"backbone": "mobilefacenet", "embedding_size": 32,
                                                  "preprocess": get_preset("arcface112").to_dict(),
                                                  "train_config": cfg.to_dict(), "classes": splits.train.classes})
    emb = load_model("m", {"m": dict(checkpoint=tmp_path / "best.pt")}, device="cpu")
    with pytest.raises(MetricError, match="was trained on"):
        evaluate([emb], split_protocol(small_aligned, 2, 6, seed=1), progress=False)
    report = evaluate([emb], held_out_protocol(emb.spec), progress=False)  # its own held-out people: fine
    assert report.models["m"].idrate.n_query_identities == 2


def test_thresholds_never_mix_flip_settings(tmp_path):
    recs = [record(0.5, 1e-3, False), record(0.6, 1e-3, True), record(0.4, 1e-2, False)]
    assert pick_threshold(recs, flip=False, fpr=1e-3)["cos"] == 0.5
    assert pick_threshold(recs, flip=True, fpr=1e-3)["cos"] == 0.6
    assert pick_threshold(recs, flip=True, fpr=1e-2) is None  # measured without flip only: none
    assert pick_threshold(recs, flip=False, fpr=1e-2)["cos"] == 0.4
    # a checkpoint carrying both: each embedder takes its own
    torch.manual_seed(0)
    from facedata.preprocess import get_preset

    spec = {"backbone": "mobilefacenet", "embedding_size": 16, "preprocess": get_preset("arcface112").to_dict(),
            "metrics": {"thresholds": recs}}
    save_checkpoint(tmp_path / "best.pt", build_embedder("mobilefacenet", 16).eval(), spec)
    reg = {"m": dict(checkpoint=tmp_path / "best.pt", threshold_fpr=1e-3)}
    assert load_model("m", reg, device="cpu").threshold == 0.5
    assert load_model("m", reg, device="cpu", flip_tta=True).threshold == 0.6
    # a published threshold (measured without flip) is not used with flip
    sface_like = {"m": dict(checkpoint=tmp_path / "best.pt", threshold_cos=0.363, threshold_fpr=None)}
    assert load_model("m", sface_like, device="cpu").threshold == 0.363
    assert load_model("m", sface_like, device="cpu", flip_tta=True).threshold == 0.6


def test_random_init_seed_and_flip_change_the_cache_key(tmp_path):
    paths = [tmp_path / "a.jpg"]
    save_image_atomic(np.zeros((112, 112, 3), np.uint8), paths[0])
    reg = {"r0": dict(random_init="mobilefacenet", seed=0, embedding_size=16),
           "r1": dict(random_init="mobilefacenet", seed=1, embedding_size=16)}
    a, b = load_model("r0", reg, device="cpu"), load_model("r1", reg, device="cpu")
    b.name = a.name  # same name, other seed: must still miss
    assert cache_key(a, paths) != cache_key(b, paths)
    assert cache_key(a, paths) == cache_key(load_model("r0", reg, device="cpu"), paths)
    assert cache_key(a, paths) != cache_key(load_model("r0", reg, device="cpu", flip_tta=True), paths)




def test_embedding_cache_hits_for_every_spelling_of_the_same_folder(small_aligned, tmp_path, monkeypatch, counting):
    """Relative, absolute, through a link or with ``..``: one folder, one cache entry (image paths are resolved)."""
    from id_rate.embeddings import embed_paths

    folder = tmp_path / "aligned" / "Barack_Obama"
    folder.mkdir(parents=True)
    for f in sorted((small_aligned / "Barack_Obama").glob("*.jpg"))[:3]:
        shutil.copy(f, folder / f.name)
    (tmp_path / "link").symlink_to(tmp_path / "aligned")
    monkeypatch.chdir(tmp_path)
    names = sorted(p.name for p in folder.iterdir())
    model = counting(load_model("r", {"r": dict(random_init="mobilefacenet", seed=0, embedding_size=16)},
                                        device="cpu"))
    first = embed_paths(model, [Path("aligned/Barack_Obama") / n for n in names], tmp_path / "cache", progress=False)
    assert model.crops == 3
    for spelling in (folder, tmp_path / "link" / "Barack_Obama", Path("link/../aligned/Barack_Obama")):
        again = embed_paths(model, [spelling / n for n in names], tmp_path / "cache", progress=False)
        assert model.crops == 3 and np.array_equal(again, first), spelling  # from the cache: nothing embedded


def test_checkpoint_path_spelling_keeps_the_cache_key_and_new_weights_change_it(tmp_path, monkeypatch):
    from facedata.preprocess import get_preset

    torch.manual_seed(0)
    spec = {"backbone": "mobilefacenet", "embedding_size": 16, "preprocess": get_preset("arcface112").to_dict()}
    save_checkpoint(tmp_path / "best.pt", build_embedder("mobilefacenet", 16).eval(), spec)
    paths = [tmp_path / "a.jpg"]
    save_image_atomic(np.zeros((112, 112, 3), np.uint8), paths[0])
    monkeypatch.chdir(tmp_path)
    relative = load_model("m", {"m": dict(checkpoint=Path("best.pt"))}, device="cpu")
    absolute = load_model("m", {"m": dict(checkpoint=tmp_path / "best.pt")}, device="cpu")
    key = cache_key(absolute, paths)
    assert cache_key(relative, paths) == key
    save_checkpoint(tmp_path / "best.pt", build_embedder("mobilefacenet", 16).eval(), spec)  # retrained: same path
    assert cache_key(load_model("m", {"m": dict(checkpoint=tmp_path / "best.pt")}, device="cpu"), paths) != key
    with pytest.raises(StaleModelError, match="best.pt: rewritten since model 'm' was loaded from it"):
        cache_key(absolute, paths)  # holds the old weights: the new file's hash is not theirs


def test_pairs_with_a_missing_image_counted_wrong_by_hand():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 8))
    y = np.array(([True] * 5 + [False] * 5) * 2)
    b = np.where(y[:, None], a + 0.01 * rng.normal(size=(20, 8)), rng.normal(size=(20, 8)))
    folds = np.repeat([0, 1], 10)
    assert pair_verification(a, b, y, folds).accuracy_mean == 1.0
    wrong = np.zeros(20, bool)
    wrong[0] = True  # a same pair of fold 0 with a missing image
    r = pair_verification(a, b, y, folds, counted_wrong=wrong)
    assert r.fold_accuracy == [0.9, 1.0] and r.accuracy_mean == pytest.approx(0.95) and r.n_pairs == 20


def _mini_lfw(small_aligned: Path, root: Path) -> tuple[Path, list[Pair]]:
    """An LFW-layout aligned folder from real faces: <name>/<name>_NNNN.jpg, and a 2-fold pairs file."""
    for person in ("pyfeat_man", "pyfeat_woman", "Barack_Obama"):
        (root / person).mkdir(parents=True)
        for i, f in enumerate(sorted((small_aligned / person).glob("*.jpg"))[:6], 1):
            shutil.copy(f, root / person / f"{person}_{i:04d}.jpg")
    singles = sorted(p for p in small_aligned.iterdir() if p.is_dir() and not p.name.startswith(("pyfeat", "Barack")))[:4]
    for p in singles:
        (root / p.name).mkdir()
        shutil.copy(next(p.glob("*.jpg")), root / p.name / f"{p.name}_0001.jpg")
    pairs = [Pair(0, "pyfeat_man", 1, "pyfeat_man", 2, True), Pair(0, "Barack_Obama", 1, "Barack_Obama", 3, True),
             Pair(0, "pyfeat_man", 1, "pyfeat_woman", 1, False), Pair(0, "Barack_Obama", 2, singles[0].name, 1, False),
             Pair(1, "pyfeat_woman", 2, "pyfeat_woman", 4, True), Pair(1, "pyfeat_man", 3, "pyfeat_man", 4, True),
             Pair(1, "pyfeat_woman", 3, singles[1].name, 1, False), Pair(1, "Barack_Obama", 4, "pyfeat_man", 4, False)]
    return root, pairs


def test_lfw_protocol_and_missing_pairs_on_real_faces(small_aligned, tmp_path, capsys):
    root, pairs = _mini_lfw(small_aligned, tmp_path / "lfw")
    (tmp_path / "pairs.txt").write_text(format_pairs(pairs, folds=2, n=2))
    n = {p: len(list((root / p).iterdir())) for p in ("pyfeat_man", "pyfeat_woman", "Barack_Obama")}
    assert min(n.values()) >= 4 and max(n.values()) >= 5
    proto = lfw_protocol(root, tmp_path / "pairs.txt", query_min_images=5, query_images=5)
    assert set(proto.query.labels) == {p for p, k in n.items() if k >= 5}  # the others are distractors
    assert set(proto.distractor.labels) == proto.identities() - set(proto.query.labels)
    assert len(proto.query) == 5 * len(set(proto.query.labels))
    assert len(proto.gallery) == 3 and len(proto.nonmated) == 4  # multi-image people enrolled; singles non-mated
    assert len(proto.mated) == sum(n.values()) - 3
    # a pair naming a missing image: an error by default, or counted wrong with the count reported
    (root / "pyfeat_man" / "pyfeat_man_0004.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 image\(s\) named by the pairs are missing[\s\S]*pyfeat_man_0004"):
        lfw_protocol(root, tmp_path / "pairs.txt")
    from id_rate.__main__ import main

    out = tmp_path / "out"
    args = ["--models", "sface", "--benchmark", "lfw", "--lfw-dir", str(root), "--lfw-pairs",
            str(tmp_path / "pairs.txt"), "--query-images", "3", "--out", str(out), "--no-progress", "--no-cache"]
    capsys.readouterr()
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2 and "pyfeat_man_0004.jpg" in err and "Traceback" not in err
    rc = main(args + ["--missing-pairs", "wrong"])
    r = capsys.readouterr()
    assert rc == 0, r.err[-2000:]
    lfw = json.loads((out / "results.json").read_text())["models"]["sface"]["lfw"]
    assert lfw["missing_pairs_counted_wrong"] == 2 and lfw["n_pairs"] == 8  # two pairs name the image
    assert lfw["fold_accuracy"][1] <= 0.5  # both are wrong whatever SFace scores
    assert "pairs missing (counted wrong)" in r.out


def test_pair_paths_policy_is_checked(tmp_path):
    with pytest.raises(DatasetError, match="must be one of"):
        pair_paths([], tmp_path, missing="skip")


def _centred_copy(photo: Path, box, target: Path) -> None:
    save_image_atomic(lfw_style_crop(load_image(photo), box), target, quality=95)


def test_centred_fallback_template_on_real_face(sample_data, detector, tmp_path):
    """An LFW-style cut of a real photo; with detection made impossible the fallback still aligns it at the
    template, close to where MTCNN's landmarks put it."""
    photo = sample_data / "raw" / "face_recognition" / "obama.jpg"
    face = detector.detect(str(photo))[0]
    src = tmp_path / "src" / "Barack_Obama"
    src.mkdir(parents=True)
    _centred_copy(photo, tuple(float(v) for v in face.box), src / "Barack_Obama_0001.jpg")
    normal = prepare_folder(tmp_path / "src", tmp_path / "a", PrepareConfig(fallback="centred"), workers=0, progress=False)
    from facedata.detect import DetectorConfig

    blind = PrepareConfig(detector=DetectorConfig(thresholds=(1.0, 1.0, 1.0)), fallback="centred",
                          relaxed_thresholds=(1.0, 1.0, 1.0))
    none = prepare_folder(tmp_path / "src", tmp_path / "b", PrepareConfig(detector=blind.detector), workers=0, progress=False)
    assert none.counts == {"no_face": 1}  # without the fallback the face is dropped
    templ = prepare_folder(tmp_path / "src", tmp_path / "c", blind, workers=0, progress=False)
    assert normal.methods == {"mtcnn": 1} and templ.methods == {"centred_template": 1}
    row = next(iter(read_manifest(tmp_path / "c" / "manifest.csv").values()))
    assert row["status"] == "ok" and row["method"] == "centred_template" and "template" in row["reason"]
    # the template's landmarks lie where MTCNN finds them on this real face: eyes and nose within 3% of the
    # 250-px image, the mouth (whose height varies most between faces) within 6%
    found = next(iter(read_manifest(tmp_path / "a" / "manifest.csv").values()))["landmarks"]
    err = np.linalg.norm(np.array(found.split(), float).reshape(5, 2) - CENTRED_LANDMARKS_FRAC * 250, axis=1)
    assert err[:3].max() < 0.03 * 250 and err[3:].max() < 0.06 * 250, err
    assert load_image(tmp_path / "c" / "Barack_Obama" / "Barack_Obama_0001.jpg").shape == (112, 112, 3)


@pytest.mark.skipif(not SHARED_LFW.is_dir(), reason="needs LFW at ../shared/data/lfw")
def test_fallback_finds_the_lfw_face_mtcnn_misses(tmp_path):
    src = tmp_path / "src" / "Marilyn_Monroe"
    src.mkdir(parents=True)
    shutil.copy(SHARED_LFW / "Marilyn_Monroe" / "Marilyn_Monroe_0001.jpg", src)
    plain = prepare_folder(tmp_path / "src", tmp_path / "plain", workers=0, progress=False)
    assert plain.counts == {"no_face": 1}  # facenet-pytorch's default thresholds miss her
    fb = prepare_folder(tmp_path / "src", tmp_path / "fb", PrepareConfig(fallback="centred"), workers=0, progress=False)
    assert fb.counts == {"ok": 1} and fb.methods == {"mtcnn_relaxed": 1}
    # switching the fallback on for the old folder retries just its misses
    again = prepare_folder(tmp_path / "src", tmp_path / "plain", PrepareConfig(fallback="centred"), workers=0, progress=False)
    assert again.methods == {"mtcnn_relaxed": 1}
    assert scan_face_folder(tmp_path / "plain").counts() == {"Marilyn_Monroe": 1}


def test_verification_callback_equals_the_pair_protocol(small_aligned, tmp_path):
    """The engine's per-epoch verification (insightface's CallBackVerification) gives the accuracy the
    evaluation protocol gives on the same model's flip-summed embeddings; View 2 is never a monitor."""
    from facedata.lfw import parse_pairs
    from id_rate.evaluate import pair_set, score_pairs
    from training import Trainer, TrainingError

    root, pairs = _mini_lfw(small_aligned, tmp_path / "lfw")
    (tmp_path / "devtest.txt").write_text(format_pairs(pairs, folds=2, n=2))
    spec = f"{tmp_path / 'devtest.txt'}@{root}"
    cfg = _train_config(small_aligned).replace(verify_sets=[spec], monitor="verify_devtest_acc", epochs=1, batch_size=8)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.fit(max_epochs=0)  # epoch 0: the untrained model, validated and logged
    row = trainer.history[0]
    assert 0.0 <= row["verify_devtest_acc"] <= 1.0 and "verify_devtest_acc" in (tmp_path / "run" / "log.csv").read_text()
    save_checkpoint(tmp_path / "m.pt", trainer.model, trainer.spec({}))
    emb = load_model("m", {"m": dict(checkpoint=tmp_path / "m.pt")}, device="cpu", flip_tta=True)
    ps = pair_set(spec)
    e = emb([load_image(p) for p in ps.paths])
    assert score_pairs(ps, e[0::2], e[1::2]).accuracy_mean == pytest.approx(row["verify_devtest_acc"])
    assert len(parse_pairs(tmp_path / "devtest.txt")) == 8
    # a View 2-sized pairs file may be scored but never chosen on
    view2 = tmp_path / "pairs.txt"
    view2.write_text(format_pairs(([pairs[0]] * 300 + [pairs[2]] * 300) * 10, folds=10, n=300))
    bad = cfg.replace(verify_sets=[f"{view2}@{root}"], monitor="verify_pairs_acc")
    with pytest.raises(TrainingError, match="would choose best.pt on .*LFW View 2 or CFP"):
        Trainer(bad, tmp_path / "run2")
    with pytest.raises(TrainingError, match="names no set of verify_sets"):
        Trainer(cfg.replace(monitor="verify_nope_acc"), tmp_path / "run3")


def test_fixed_threshold_normalises_and_scores_in_float64(monkeypatch):
    """The threshold is chosen between neighbouring distances: they are float64 (normalised from the raw
    embeddings), as a float64 computation by hand gives them, not float32 products cast afterwards."""
    from id_rate import evaluate as ev

    q = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    labels = np.repeat(np.arange(4), 4)
    seen = []
    real = ev.best_threshold
    monkeypatch.setattr(ev, "best_threshold", lambda d, y: seen.append(d) or real(d, y))
    ev.fixed_threshold(q, labels, seed=0)
    q64 = q.astype(np.float64) / np.linalg.norm(q.astype(np.float64), axis=1, keepdims=True)
    by_hand = 1 - (q64 @ q64.T)[np.triu_indices(len(q), 1)]
    (d,) = seen
    assert d.dtype == np.float64 and np.abs(d[:, None] - by_hand[None, :]).min(axis=1).max() < 1e-12


def test_a_run_is_loaded_like_a_registry_model_and_never_shares_a_baselines_name(tmp_path, monkeypatch):
    """utils.evaluate_run: the run's entry is config.recipe_models' (threshold at the recipes' FPR); a run named
    like a baseline, or two models of one name given to evaluate, are refused (one would replace the other)."""
    from types import SimpleNamespace

    import config
    import utils
    from id_rate import evaluate as ev
    from facedata.errors import UsageError

    with pytest.raises(UsageError, match="the run is named 'sface' like one of the baselines; pass another name="):
        utils.evaluate_run(tmp_path / "run", name="sface", baselines=["sface"])
    with pytest.raises(MetricError, match="two models are named 'm'; give each model its own name"):
        evaluate([SimpleNamespace(name="m", spec={}), SimpleNamespace(name="m", spec={})], None)
    loaded = {}
    monkeypatch.setattr(utils, "load_model", lambda name, registry, **kw:
                        SimpleNamespace(spec={}, entry=loaded.setdefault(name, registry[name])))
    monkeypatch.setattr(ev, "held_out_protocol", lambda spec: None)
    monkeypatch.setattr(ev, "evaluate", lambda models, protocol, **kw: SimpleNamespace(write=lambda out: []))
    utils.evaluate_run(tmp_path / "run", checkpoint="last.pt")
    assert loaded["run"] == {"checkpoint": tmp_path / "run" / "last.pt", "recipe": "run", "threshold_cos": None,
                             "threshold_fpr": config.RECIPE_THRESHOLD_FPR}
    run = config.MODELS["sample-arcface"]["checkpoint"].parent  # the registry's own run: its measured thresholds too
    utils.evaluate_run(run)
    assert loaded["sample-arcface"]["measured_thresholds"] == config.MEASURED_THRESHOLDS
    with pytest.raises(UsageError, match="checkpoint='epoch3.pt': a run folder holds best.pt and last.pt"):
        utils.evaluate_run(run, checkpoint="epoch3.pt")
