"""Composing a training set from several aligned sources, and the identity-overlap audit, on real faces.

The sample faces play both roles: a toy evaluation set (Obama's photos and 14 one-portrait people, named),
and training sources that share people with it under their own name (a key overlap), under no name (a face
overlap: the same man as "mystery"), and a planted duplicate (an evaluation crop copied into training).
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facedata.audit import (AuditError, EvalSet, audit, calibrate, celeba_number, check_trainable, coverage_warning,
                            normalise_name)
from facedata.compose import ComposeError, Source, build, compose, drop_duplicates, parse_source
from facedata.prepare import prepare_folder


def test_names_and_celeba_numbers_are_keys():
    assert normalise_name("Arnold_Schwarzenegger") == normalise_name("Arnold Schwarzenegger") == "arnold schwarzenegger"
    assert normalise_name("José  Mourinho") == "jose mourinho"
    assert celeba_number("id02880") == celeba_number("2880") == celeba_number("celeba/id02880") == "2880"
    for bad in ("celeba/abc", "id02880_2", "person2880v2"):  # never a number read out of other digits
        with pytest.raises(AuditError, match="not a CelebA identity number"):
            celeba_number(bad)


def test_calibrate_threshold_by_hand():
    # three unit means, pairwise cosines 0.0, 0.6, 0.8: with a false-flag rate of 1/3 one pair may reach it,
    # so the threshold sits just above the second highest (0.6): the 0.8 pair reaches it, the 0.6 one does not
    m = np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32)
    t = calibrate({"s": m}, [(m[0], m[0])], max_rate=1 / 3, n_comparisons=30)
    assert 0.6 < t["cosine"] < 0.6001
    assert t["known_different_pairs"] == 3 and t["false_flag_rate"] == pytest.approx(1 / 3)
    assert t["expected_false_flags"] == pytest.approx(10.0) and t["recall_known_same"] == "1/1 (1.000)"
    strict = calibrate({"s": m}, [], max_rate=1e-6, n_comparisons=1)
    assert 0.8 < strict["cosine"] < 0.8001 and strict["false_flag_rate"] == 0.0


@pytest.fixture(scope="module")
def world(sample_data, tmp_path_factory):
    """Aligned sources and a toy evaluation set cut from the sample faces."""
    ids = sample_data / "sample_identities"
    raw = tmp_path_factory.mktemp("raw")
    portraits = sorted(p for p in ids.iterdir() if p.is_dir() and not p.name.startswith(("pyfeat", "Barack")))[:24]
    obama = sorted((ids / "Barack_Obama").glob("*.jpg"))

    def put(folder: str, files: list[Path]) -> None:
        (raw / folder).mkdir(parents=True)
        for f in files:
            shutil.copy(f, raw / folder / f.name)

    # evaluation: Obama's photos 1-2 and portraits 0-13, named as in LFW
    put("eval/Barack_Obama", obama[:2])
    for p in portraits[:14]:
        put(f"eval/{p.name}", sorted(p.glob("*.jpg")))
    # a named source: Obama under his name (the two partial-face photos: a key overlap), the man and the woman
    put("named/Barack_Obama", obama[3:5])
    man, woman = sorted((ids / "pyfeat_man").glob("*.jpg")), sorted((ids / "pyfeat_woman").glob("*.jpg"))
    put("named/pyfeat_man", man[:4])
    put("named/pyfeat_woman", woman[:4])
    # an unnamed source (as FIW): Obama as "F0001/MID1" (photo 3: a face overlap), other portraits, a planted
    # duplicate (every photo appears once: byte-identical copies under two names would be dropped as duplicates)
    put("nokey/F0001/MID1", obama[2:3])
    put("nokey/F0002/MID1", man[4:7])
    for k, p in enumerate(portraits[14:24]):
        put(f"nokey/F01{k:02d}/MID1", sorted(p.glob("*.jpg")))
    aligned = {}
    for part in ("eval", "named", "nokey"):
        aligned[part] = tmp_path_factory.mktemp(f"aligned_{part}")
        prepare_folder(raw / part, aligned[part], workers=0, progress=False)
    # the planted duplicate: an evaluation crop copied into an unnamed training identity, beside a second photo
    plant = aligned["nokey"] / "F0100" / "MID1"
    shutil.copy(next((aligned["eval"] / portraits[5].name).glob("*.jpg")), plant / "planted.jpg")
    with open(aligned["nokey"] / "manifest.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["F0100/MID1/planted.jpg", "F0100/MID1/planted.jpg", "ok", "mtcnn"] + [""] * 10)
    ev = EvalSet("toy", "name", {d.name: normalise_name(d.name) for d in aligned["eval"].iterdir() if d.is_dir()},
                 {d.name: sorted(d.glob("*.jpg")) for d in aligned["eval"].iterdir() if d.is_dir()})
    return aligned, ev, portraits


@pytest.fixture(scope="module")
def sface():
    import config
    from models_definition.zoo import load_model

    return load_model("sface", config.MODELS, device="cpu")


def test_audit_finds_key_face_and_planted_overlaps(world, sface, tmp_path):
    aligned, ev, portraits = world
    sources = [Source("named", aligned["named"], key="name", min_images=1),
               Source("fiwlike", aligned["nokey"], key="none", min_images=1)]
    comp = compose(sources)
    report = audit(comp.items, {"named": "name", "fiwlike": "none"}, [ev], sface, tmp_path / "cache", progress=False)
    by = {(f.identity, f.by) for f in report.flags}
    assert ("named/Barack_Obama", "key") in by  # the same name
    assert ("fiwlike/F0001/MID1", "face") in by  # Obama under no name: found by his face alone
    assert ("fiwlike/F0100/MID1", "face") in by  # the planted duplicate
    planted = next(f for f in report.flags if f.identity == "fiwlike/F0100/MID1")
    assert planted.eval_identity == portraits[5].name
    # nobody else: the man, the woman and the ten other portraits are not evaluation people
    assert report.flagged_identities() == {"named/Barack_Obama", "fiwlike/F0001/MID1", "fiwlike/F0100/MID1"}
    t = report.threshold
    assert t["known_different_pairs"] == 15 * 14 // 2 and "measured_on_pairs" not in t  # one named set: no cross pairs
    rows = {(r["source"], r["eval_set"]): r for r in report.table()}
    assert rows[("named", "toy")]["flagged_by_key"] == 1 and rows[("fiwlike", "toy")]["by_key"] == "no key"
    assert rows[("fiwlike", "toy")]["dropped"] == 2 and rows[("fiwlike", "toy")]["identities_checked"] == 12
    written = report.write(tmp_path)
    assert (tmp_path / "audit_flags.png").is_file() and tmp_path / "audit.md" in written


def test_composed_set_is_audited_trains_and_resumes_exactly(world, sface, tmp_path):
    from training import TrainConfig, Trainer, TrainingError

    aligned, ev, _ = world
    sources = [Source("named", aligned["named"], key="name", min_images=2),
               Source("fiwlike", aligned["nokey"], key="none", min_images=1)]
    out = tmp_path / "composed"
    result = build(out, sources, [ev], sface, cache_dir=tmp_path / "cache", progress=False)
    assert result["counts"]["fiwlike"]["read"] == {"identities": 12, "images": 15}
    assert result["counts"]["fiwlike"]["after_audit"]["identities"] == 10
    assert result["counts"]["named"]["after_audit"] == {"identities": 2, "images": 8}
    folders = sorted(d.name for d in out.iterdir() if d.is_dir())
    assert "named__pyfeat_man" in folders and "fiwlike__F0002__MID1" in folders
    assert not any("Obama" in f or f == "fiwlike__F0001__MID1" for f in folders)
    rows = list(csv.DictReader(open(out / "compose.csv")))
    assert {r["identity"] for r in rows} >= {"fiwlike/F0002/MID1"} and all(r["original_file"] for r in rows)
    # the same command again finds the set done; other settings are refused, nothing touched
    assert build(out, sources, [ev], sface, cache_dir=tmp_path / "cache", progress=False) == result
    with pytest.raises(ComposeError, match="other settings"):
        build(out, sources, [ev], sface, seed=1, cache_dir=tmp_path / "cache", progress=False)

    def cfg(**kw):
        base = dict(data=str(out), backbone="mobilefacenet", embedding_size=32, head="arcface",
                    head_kwargs={"scale": 16.0, "margin_rad": 0.3}, sampler="pk", pk_k=2, batch_size=8,
                    batches_per_epoch=2, epochs=2, val_fraction=0.0, workers=0, progress=False, seed=1,
                    audit_eval_sets=["toy"])
        return TrainConfig(**{**base, **kw})

    straight = Trainer(cfg(), tmp_path / "a")
    straight.fit()
    assert straight.spec({})["audit"] == {"eval_sets": ["toy"], "flagged_kept": 0, "missing": [],
                                          "allow_overlap": False}
    Trainer(cfg(), tmp_path / "b").fit(max_epochs=1)
    torch.manual_seed(7)
    resumed = Trainer(cfg(), tmp_path / "b", resume=True)
    resumed.fit()
    assert [r["train_loss"] for r in resumed.history] == pytest.approx([r["train_loss"] for r in straight.history],
                                                                       rel=1e-5)
    # a set the audit did not cover for an evaluation set is refused, naming it; the override is recorded
    with pytest.raises(TrainingError, match="not audited against lfw"):
        Trainer(cfg(audit_eval_sets=["toy", "lfw"]), tmp_path / "c")
    forced = Trainer(cfg(audit_eval_sets=["toy", "lfw"], allow_overlap=True), tmp_path / "d")
    assert forced.audit["allow_overlap"] is True and forced.audit["missing"] == ["lfw"]
    warn = coverage_warning({"train_config": {"data": str(out)}, "audit": forced.audit}, "lfw")
    assert "did not clear lfw" in warn
    assert coverage_warning({"train_config": {"data": str(out)}, "audit": straight.audit}, "toy") is None
    # scoring refuses the people a composed set trained on, by their names in the evaluation set
    from id_rate.evaluate import Part, Protocol, check_not_trained_on
    from id_rate.metrics import MetricError

    proto = Protocol("toy", "", Part([], np.array(["pyfeat_man"])), Part([], np.zeros(0, str)))
    with pytest.raises(MetricError, match="trained on 1 of the identities"):
        check_not_trained_on(proto, "m", straight.spec({}))


def test_keep_flagged_set_is_refused_for_training(world, sface, tmp_path):
    aligned, ev, _ = world
    out = tmp_path / "kept"
    build(out, [Source("named", aligned["named"], key="name", min_images=1)], [ev], sface,
          keep_flagged=True, cache_dir=tmp_path / "cache", progress=False)
    assert (out / "named__Barack_Obama").is_dir()
    with pytest.raises(AuditError, match=r"keeps 1 identities the audit flagged \(named/Barack_Obama\)"):
        check_trainable(out, ["toy"])
    assert check_trainable(out, ["toy"], allow_overlap=True)["flagged_kept"] == 1
    (out / "audit.json").unlink()
    with pytest.raises(AuditError, match="no audit.json"):
        check_trainable(out, [])  # never audited: refused whatever sets are asked for


def test_compose_bad_input(world, tmp_path):
    aligned, _, _ = world
    with pytest.raises(ComposeError, match="share the namespace 'a'"):
        compose([Source("a", aligned["named"]), Source("a", aligned["nokey"])])
    with pytest.raises(ComposeError, match="same folder"):
        compose([Source("a", aligned["named"]), Source("b", aligned["named"])])
    with pytest.raises(ComposeError, match="not found; align the set first"):
        compose([Source("a", tmp_path / "nowhere")])
    (tmp_path / "raw").mkdir()
    with pytest.raises(ComposeError, match="has no manifest.csv"):
        compose([Source("a", tmp_path / "raw")])
    with pytest.raises(ComposeError, match="key 'names' must be one of"):
        parse_source("a=x,key=names")
    with pytest.raises(ComposeError, match="min_images must be a whole number"):
        parse_source("a=x,min_images=two")
    with pytest.raises(ComposeError, match="unknown option 'min'"):
        parse_source("a=x,min=2")
    assert parse_source("fiw=data/f,min_images=5,max_identities=9") == Source("fiw", Path("data/f"), "none", 5, 9)


def test_duplicates_keep_one_copy_or_none_when_labels_disagree(world):
    aligned, _, _ = world
    items = compose([Source("n", aligned["named"], min_images=1)]).items
    a, b = items[0], items[-1]
    twin = a.__class__(a.identity, a.source, a.original_identity, "copy.jpg", a.path, a.sha256)
    clash = b.__class__(b.identity, b.source, b.original_identity, "clash.jpg", b.path, a.sha256)
    kept, counts = drop_duplicates([a, twin])
    assert kept == [a] and counts["removed_copies_same_identity"] == 1
    kept, counts = drop_duplicates([a, clash])
    assert kept == [] and counts["removed_conflicting_identity"] == 2


def test_max_identities_draw_is_seeded(world):
    aligned, _, _ = world
    src = Source("f", aligned["nokey"], min_images=1, max_identities=4)
    draw = lambda seed: sorted({it.identity for it in compose([src], seed).items})  # noqa: E731
    assert draw(0) == draw(0) and len(draw(0)) == 4 and draw(0) != draw(1)
