"""The training engine on real aligned faces: exact resume, NaN stop, DDP, bad settings, the CLI."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from facedata.errors import DatasetError
from models_definition.checkpoint import load_checkpoint, model_from_checkpoint
from training import TrainConfig, Trainer, TrainingError, make_splits

ROOT = Path(__file__).resolve().parents[1]


def tiny(data: Path, **kw) -> TrainConfig:
    base = dict(data=str(data), backbone="mobilefacenet", embedding_size=64, head="arcface",
                head_kwargs={"scale": 16.0, "margin_rad": 0.3}, sampler="pk", pk_k=2, batch_size=8,
                batches_per_epoch=2, epochs=2, open_set_query=1, open_set_distractor=6, val_fraction=0.25,
                workers=0, progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_splits_are_disjoint_and_relabelled(small_aligned):
    s = make_splits(tiny(small_aligned))
    q_names = {s.query.classes[i] for i in s.query.labels}
    d_names = {s.distractor.classes[i] for i in s.distractor.labels}
    train_names = set(s.train.classes)
    assert len(q_names) == 1 and len(d_names) == 6 and not (q_names | d_names) & train_names
    assert s.train.labels.max() == len(s.train.classes) - 1  # classifier labels 0..C-1
    assert set(s.val.labels) <= set(s.train.labels)  # closed-set: validation identities are trained on


def test_resume_is_exact(small_aligned, tmp_path):
    torch.manual_seed(0)
    started = time.perf_counter()
    straight = Trainer(tiny(small_aligned), tmp_path / "a")
    straight.fit()
    elapsed = time.perf_counter() - started
    # wall_seconds: the rows add up to the run's wall time, less only the last row's checkpoint writing
    walls = [r["wall_seconds"] for r in straight.history]
    assert 0.75 * elapsed <= sum(walls) <= elapsed and all(w >= r["seconds"] for w, r in zip(walls[1:], straight.history[1:]))
    first = Trainer(tiny(small_aligned), tmp_path / "b")
    first.fit(max_epochs=1)  # "interrupted" after epoch 1
    assert load_checkpoint(tmp_path / "b" / "last.pt")["spec"]["epoch"] == 1
    torch.manual_seed(123)  # resume must not depend on the global RNG of the new process
    resumed = Trainer(tiny(small_aligned), tmp_path / "b", resume=True)
    assert resumed.epoch == 1
    resumed.fit()
    a, b = straight.history, resumed.history
    assert [r["epoch"] for r in b] == [0, 1, 2]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss", "val_auc", "val_acc"):
            if ra[key] is None:
                assert rb[key] is None
            else:
                assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), key
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-5) for k in sa)
    # a run saved before a training option existed resumes: the missing option reads as its default
    last = tmp_path / "b" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    for key in ("teacher_views", "extra_data"):
        del ckpt["spec"]["train_config"][key]
    ckpt["spec"]["epoch"] = 1
    torch.save(ckpt, last)
    assert Trainer(tiny(small_aligned), tmp_path / "b", resume=True).epoch == 1
    with pytest.raises(TrainingError, match="cannot resume with other settings .*lr: run 0.001 vs now 0.002"):
        Trainer(tiny(small_aligned, lr=2e-3), tmp_path / "b", resume=True)
    # outputs: config, log with the untrained row and two epochs, curves, checkpoints with the full spec
    rows = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and rows[0]["train_loss"] == ""
    assert all(float(r["wall_seconds"]) > 0 for r in rows)  # logged, the resumed epoch included
    assert (tmp_path / "b" / "loss.png").stat().st_size > 1000
    assert json.loads((tmp_path / "b" / "config.json").read_text())["head"] == "arcface"
    model, pre, spec = model_from_checkpoint(tmp_path / "b" / "best.pt")
    assert spec["backbone"] == "mobilefacenet" and spec["embedding_size"] == 64 and spec["head"] == "arcface"
    assert pre.size_px == 112 and spec["preprocess"]["alignment"] == "arcface" and len(spec["classes"]) > 10
    assert {"val_auc", "val_tpr@1e-3", "threshold_cos@fpr=1e-3"} <= set(spec["metrics"])


def test_existing_run_and_changed_settings_are_refused(small_aligned, tmp_path):
    Trainer(tiny(small_aligned, epochs=1), tmp_path).fit()
    with pytest.raises(TrainingError, match="already holds a run"):
        Trainer(tiny(small_aligned, epochs=1), tmp_path)
    with pytest.raises(TrainingError, match=r"cannot resume with other settings \(lr: run 0.001 vs now 0.01\)"):
        Trainer(tiny(small_aligned, epochs=2, lr=0.01), tmp_path, resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(small_aligned, tmp_path):
    trainer = Trainer(tiny(small_aligned, epochs=3), tmp_path)
    trainer.fit(max_epochs=1)
    before = (tmp_path / "last.pt").read_bytes()
    trainer.head.forward = lambda emb, labels: emb.sum() * float("nan")
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 2, step 0.*last.pt still holds the last good epoch \(1\)"):
        trainer.fit()
    assert (tmp_path / "last.pt").read_bytes() == before


@pytest.mark.parametrize("head, sampler", [("softmax", "shuffle"), ("triplet", "pk"), ("contrastive", "pairs"),
                                           ("cosface", "pk")])
def test_every_objective_trains_a_step(small_aligned, tmp_path, head, sampler):
    kwargs = {"cosface": {"scale": 16.0}}.get(head, {})
    t = Trainer(tiny(small_aligned, head=head, head_kwargs=kwargs, sampler=sampler, epochs=1), tmp_path)
    hist = t.fit()
    assert np.isfinite(hist[-1]["train_loss"]) and hist[-1]["val_auc"] is not None
    if head != "contrastive":
        assert hist[-1]["val_acc"] is not None  # logits for classifiers, nearest class mean for metric heads


def test_bad_settings(small_aligned, tmp_path):
    with pytest.raises(TrainingError, match="triplet head mines inside P x K batches"):
        Trainer(tiny(small_aligned, head="triplet", head_kwargs={}, sampler="shuffle"), tmp_path / "a")
    # Without augmentation a triplet batch needs identities with >= 2 real images.
    with pytest.raises(DatasetError, match="too small for the 'pk' sampler.*P=4 needs >= 4 identities with >= 2 images"):
        Trainer(tiny(small_aligned, head="triplet", head_kwargs={}, augment=None, open_set_query=0,
                     open_set_distractor=0), tmp_path / "b")
    with pytest.raises(KeyError, match="unknown head 'arcfcae'; valid: arcface, contrastive"):
        Trainer(tiny(small_aligned, head="arcfcae"), tmp_path / "c")
    with pytest.raises(ValueError, match="unknown sampler 'px'; valid: shuffle, pk, pairs"):
        tiny(small_aligned, sampler="px")
    with pytest.raises(ValueError, match=r"unknown training options \['lrate'\]"):
        TrainConfig.from_dict({"lrate": 1})


def _cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_cli_recipe_errors(capsys, tmp_path):
    import train

    assert train.main(["--recipe", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'nope'; valid: " in err and "ce-efficientnet" in err and "composed-arcface" in err
    assert train.main(["--recipe", "sample-ce", "--threads", "-1", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == "train.py: error: --threads -1: must be at least 1\n"
    assert not (tmp_path / "run").exists()


def test_ddp_two_processes_gloo(small_aligned, tmp_path):
    """torchrun with 2 CPU processes (gloo): both train their share of the batches; rank 0 saves."""
    cfg = tiny(small_aligned, epochs=1, device="cpu")
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    r = _cli("-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", "train.py",
             "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "run"), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    spec = load_checkpoint(tmp_path / "run" / "last.pt")["spec"]
    assert spec["epoch"] == 1 and (tmp_path / "run" / "best.pt").exists()
    assert "done:" in r.stdout and r.stdout.count("done:") == 1  # only rank 0 reports and writes


def test_distillation_trains_resumes_exactly_and_checks_the_teacher(small_aligned, tmp_path):
    # The teacher is any registry entry; a seeded random-init network keeps the test offline and fast.
    teacher = {"random_init": "mobilefacenet", "seed": 1, "embedding_size": 64}
    cfg = tiny(small_aligned, head="distill", head_kwargs={}, teacher=teacher, sampler="shuffle")
    straight = Trainer(cfg, tmp_path / "a")
    # the head's table is the teacher's unit embedding of each training image, in training order
    assert straight.head.teacher.shape == (len(straight.splits.train), 64)
    assert torch.allclose(straight.head.teacher.norm(dim=1), torch.ones(len(straight.splits.train)), atol=1e-5)
    assert list((tmp_path / "a").glob("teacher-*.npy"))  # embedded once, cached in the run folder
    straight.fit()
    first = Trainer(cfg, tmp_path / "b")
    first.fit(max_epochs=1)
    resumed = Trainer(cfg, tmp_path / "b", resume=True)
    resumed.fit()
    assert [r["train_loss"] for r in resumed.history[1:]] == pytest.approx(
        [r["train_loss"] for r in straight.history[1:]], rel=1e-5)
    assert 0 < straight.history[-1]["train_loss"] < 2  # 1 - cos lies in [0, 2]
    with pytest.raises(TrainingError, match=r"teacher .* gives 64-D embeddings but the student's embedding_size is 32: "
                                            r"set embedding_size=64"):
        Trainer(tiny(small_aligned, head="distill", head_kwargs={}, teacher=teacher, sampler="shuffle",
                     embedding_size=32), tmp_path / "c")
    with pytest.raises(ValueError, match="the distill head needs a teacher"):
        tiny(small_aligned, head="distill", head_kwargs={})
    with pytest.raises(ValueError, match="the distill head needs a teacher"):
        tiny(small_aligned, teacher=teacher)  # an arcface run given a teacher: a mistake, said so


def test_every_recipe_builds_and_trains_a_step(small_aligned, tmp_path):
    # Smoke test over config.TRAIN_RECIPES: each recipe's own backbone, head, sampler and options, on the small
    # real set (a download-only ImageNet start replaced by random init; LFW selection sets left out: CI has no LFW).
    import config

    for name, recipe in config.TRAIN_RECIPES.items():
        cfg = TrainConfig.from_dict(recipe).replace(
            data=str(small_aligned), open_set_query=1, open_set_distractor=6, open_set_query_images=None,
            open_set_distractor_images=None, max_train_classes=None, min_images_per_class=1, val_fraction=0.0,
            verify_sets=[], monitor=None, batch_size=8, batches_per_epoch=1, epochs=1, workers=0, progress=False,
            extra_data=[], teacher_views=min(2, recipe.get("teacher_views", 0)),  # the teacher's table stays small
            benchmark_query=0, benchmark_distractor=0, teacher_cache=None,  # a set this small; the run's own folder
            pretrained=None if recipe.get("pretrained") == "imagenet" else recipe.get("pretrained"))
        t = Trainer(cfg, tmp_path / name)
        t.epoch = 1  # as fit() numbers epochs (a frozen-backbone recipe freezes epoch 1)
        assert np.isfinite(t.train_epoch()["train_loss"]), name


def test_distillation_views_are_the_pixels_the_teacher_embedded(small_aligned, tmp_path, monkeypatch):
    # teacher_views: row image * V + view of the teacher's table is its embedding of the very crop the loader
    # shows the student for that (image, view); unlabelled extra faces join the training images.
    from facedata.augment import teacher_view
    from models_definition.zoo import load_model

    teacher = {"random_init": "mobilefacenet", "seed": 1, "embedding_size": 64}
    s = make_splits(tiny(small_aligned))
    extra = tmp_path / "extra" / "someone"
    extra.mkdir(parents=True)
    for p in s.train.paths[:3]:  # copies: other files, so they count as other faces
        (extra / f"x_{p.name}").write_bytes(p.read_bytes())
    cfg = tiny(small_aligned, head="distill", head_kwargs={}, teacher=teacher, sampler="shuffle", teacher_views=3,
               extra_data=[str(extra.parent)])
    t = Trainer(cfg, tmp_path / "run")
    n = len(t.splits.train) + 3
    assert len(t.train_folder) == n and t.head.teacher.shape == (n * 3, 64)
    ds = t._loader(t.train_folder, [[0]], augment=True).dataset  # what the training loader reads
    embedder = load_model("teacher", {"teacher": teacher})
    rows = set()
    for i in (0, n - 1):  # a training image and an extra face
        for seed in range(6):
            x, row = ds[(i, seed)]
            image, view = divmod(row, 3)
            assert image == i
            crop = teacher_view(t.augment, t.train_folder.read(i), i, view, cfg.seed)
            assert torch.equal(t.preprocess.normalize(x[None])[0], t.preprocess(crop))  # uint8 item, same input
            expected = torch.from_numpy(embedder([crop])[0])
            assert torch.allclose(t.head.teacher[row], expected, atol=1e-4)
            rows.add(row)
    assert len(rows) > 2  # the seeds draw several views
    t.epoch = 1
    assert np.isfinite(t.train_epoch()["train_loss"])
    # the table is cached: a second run over the same images and views embeds nothing (the teacher would fail)
    from models_definition.zoo import FaceEmbedder

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher was asked to embed again")

    monkeypatch.setattr(FaceEmbedder, "__call__", no_teacher)
    again = Trainer(cfg, tmp_path / "run")
    assert torch.equal(again.head.teacher, t.head.teacher)
    # a shared teacher_cache: another run folder reads the table a first run left there
    shared = tmp_path / "teacher-cache"
    monkeypatch.undo()
    Trainer(cfg.replace(teacher_cache=str(shared)), tmp_path / "first")
    assert list(shared.glob("teacher-*.npy")) and not list((tmp_path / "first").glob("teacher-*.npy"))
    monkeypatch.setattr(FaceEmbedder, "__call__", no_teacher)
    second = Trainer(cfg.replace(teacher_cache=str(shared)), tmp_path / "second")
    assert torch.equal(second.head.teacher, t.head.teacher)
    # other views (another seed) are another table, not the cached one
    with pytest.raises(AssertionError, match="asked to embed again"):
        Trainer(cfg.replace(seed=4), tmp_path / "run")
    # with a label term the extra faces are class -1 (they train only the teacher term); same table, from the cache
    labelled = Trainer(cfg.replace(head_kwargs={"label_weight": 1.0}), tmp_path / "run")
    classes = labelled.head.classes.view(n, 3)[:, 0]
    assert torch.all(classes[-3:] == -1) and torch.all(classes[:-3] >= 0)
    assert torch.equal(classes[:-3], torch.from_numpy(t.splits.train.labels))
    labelled.epoch = 1
    assert np.isfinite(labelled.train_epoch()["train_loss"])


def test_distillation_extra_faces_are_refused_where_they_would_lie(small_aligned, tmp_path):
    teacher = {"random_init": "mobilefacenet", "seed": 1, "embedding_size": 64}
    kw = dict(head="distill", teacher=teacher, sampler="shuffle")
    with pytest.raises(TrainingError, match="validation, held-out or verification images"):  # data itself: held-out people
        Trainer(tiny(small_aligned, head_kwargs={}, extra_data=[str(small_aligned)], **kw), tmp_path / "a")
    with pytest.raises(TrainingError, match="extra_data: .*not found"):
        Trainer(tiny(small_aligned, head_kwargs={}, extra_data=[str(tmp_path / "nowhere")], **kw), tmp_path / "c")
    with pytest.raises(ValueError, match="teacher_views=3: more than one view needs augmentation"):
        tiny(small_aligned, head_kwargs={}, teacher_views=3, augment=None, **kw)
    with pytest.raises(ValueError, match="extra_data=.*only the distill head takes it"):
        tiny(small_aligned, extra_data=[str(tmp_path)])
    with pytest.raises(ValueError, match="extra_data='.*': expected a list of strings"):
        tiny(small_aligned, head_kwargs={}, extra_data=str(tmp_path), **kw)
    with pytest.raises(ValueError, match="sampler='pk': the distill head learns per image"):
        tiny(small_aligned, head_kwargs={}, **dict(kw, sampler="pk"))
    pack = tmp_path / "pack"
    pack.mkdir()
    from facedata.pack import write_pack

    write_pack(small_aligned, pack / "train.rec")
    with pytest.raises(TrainingError, match="extra_data .*train.rec: distillation embeds image files .*unpack"):
        Trainer(tiny(small_aligned, head_kwargs={}, extra_data=[str(pack / "train.rec")], **kw), tmp_path / "d")
    with pytest.raises(TrainingError, match=r"^\S*train.rec: distillation embeds image files .*unpack"):
        Trainer(tiny(pack / "train.rec", head_kwargs={}, **kw), tmp_path / "e")  # the training data itself


# --- the run folder's lock, split settings, bad inputs ------------------------------------------------------


def test_a_second_run_into_a_folder_at_work_is_refused_naming_the_holder(small_aligned, tmp_path, capsys):
    import train
    from training import Callback

    out = tmp_path / "run"
    (tmp_path / "cfg.json").write_text(json.dumps(tiny(small_aligned, epochs=1).to_dict()))
    seen = {}

    class SecondRun(Callback):  # runs while the first run validates epoch 0, holding its folder
        def on_epoch_end(self, trainer, metrics):
            if metrics["epoch"] == 0:
                with pytest.raises(DatasetError, match=re.escape(f"{out} is being trained in by another run (pid {os.getpid()} ")):
                    Trainer(tiny(small_aligned, epochs=1), out)
                seen["rc"] = train.main(["--config", str(tmp_path / "cfg.json"), "--out", str(out), "--no-progress"])
                seen["err"] = capsys.readouterr().err

    Trainer(tiny(small_aligned, epochs=1), out, callbacks=[SecondRun()]).fit()
    assert seen["rc"] == 2 and seen["err"].startswith(f"train.py: error: {out} is being trained in by another run "
                                                      f"(pid {os.getpid()} on ") and "Traceback" not in seen["err"]
    # the first run was not disturbed, and once it is done its folder is free to be resumed
    assert load_checkpoint(out / "last.pt")["spec"]["epoch"] == 1
    assert Trainer(tiny(small_aligned, epochs=1), out, resume=True).epoch == 1


def test_the_split_is_one_typed_spec_stored_in_the_checkpoint(small_aligned, tmp_path):
    from facedata.datasets import held_out_split
    from facedata.splits import DEFAULT_SPLIT_SEED, SplitSpec

    import config

    cfg = tiny(small_aligned)
    assert TrainConfig().split_seed == DEFAULT_SPLIT_SEED == config.SPLIT_SEED == 42
    t = Trainer(cfg, tmp_path / "run")
    spec = t.spec({})
    assert spec["split"] == cfg.split.to_dict() and SplitSpec.from_checkpoint(spec) == cfg.split
    assert spec["split"]["open_set_query"] == 1 and spec["split"]["split_seed"] == 42
    # a checkpoint from before spec["split"]: its train_config's split fields, an absent one at its default
    old = {k: v for k, v in cfg.to_dict().items() if k != "split_seed"}
    assert SplitSpec.from_checkpoint({"train_config": old}) == cfg.split
    held = held_out_split(SplitSpec.from_dict(old))
    assert held.query.paths == held_out_split(cfg.to_dict()).query.paths == t.splits.query.paths
    with pytest.raises(dataclasses.FrozenInstanceError):  # frozen: a split cannot drift after it was made
        cfg.split.split_seed = 7  # type: ignore[misc]


def test_pk_batch_size_that_is_not_p_times_k_is_refused():
    from training import SettingError

    with pytest.raises(SettingError, match=r"batch_size=3: the pk sampler fills a batch with P >= 2 identities of "
                                           r"pk_k=4 images: .* \(e.g. batch_size=8\)"):
        TrainConfig(sampler="pk", pk_k=4, batch_size=3)
    with pytest.raises(SettingError, match=r"batch_size=10: .*e.g. batch_size=12"):
        TrainConfig(sampler="pk", pk_k=4, batch_size=10)
    assert TrainConfig(sampler="pk", pk_k=4, batch_size=8).batch_size == 8
    assert TrainConfig(sampler="shuffle", pk_k=4, batch_size=3).batch_size == 3  # pk_k is the pk sampler's only


def _one_batch_config(data: Path, tmp_path: Path, n_images: int) -> Path:
    """Every image in one training batch, read by a loader worker process: the bad one is certainly read. (Crops
    not kept in memory: a bad crop then stops the loading before training, tests/test_precision.py.)"""
    cfg = tiny(data, head="softmax", head_kwargs={}, sampler="shuffle", batch_size=n_images, open_set_query=0,
               open_set_distractor=0, val_fraction=0.0, workers=1, epochs=1, in_memory_gb=0.0)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    return tmp_path / "cfg.json"


def test_a_corrupt_jpeg_stops_training_with_an_error_naming_it(small_aligned, tmp_path, capsys):
    import shutil

    import train

    from facedata.datasets import scan_face_folder

    data = tmp_path / "faces"
    shutil.copytree(small_aligned, data)
    files = scan_face_folder(data).paths
    bad = files[len(files) // 2]
    bad.write_bytes(b"\xff\xd8\xff\xe0 this JPEG was cut short")
    rc = train.main(["--config", str(_one_batch_config(data, tmp_path, len(files))), "--out", str(tmp_path / "run"),
                     "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"train.py: error: {bad}: cannot be read (") and "Traceback" not in err, err
    assert "training (epoch 1) stopped" in err and err.count("\n") == 1


def test_a_pack_record_that_is_not_an_image_stops_training_with_an_error_naming_it(small_aligned, tmp_path, capsys):
    import shutil

    import train
    from facedata.pack import write_pack

    from facedata.datasets import scan_face_folder

    data = tmp_path / "faces"
    shutil.copytree(small_aligned, data)
    files = scan_face_folder(data).paths
    files[3].write_bytes(b"not an image at all")  # record key 4: record 0 is the pack's header
    write_pack(data, tmp_path / "train.rec")
    rc = train.main(["--config", str(_one_batch_config(tmp_path / "train.rec", tmp_path, len(files))),
                     "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"train.py: error: {tmp_path / 'train.rec'}#4: cannot be read (") and \
        "image bytes cannot be decoded" in err and "Traceback" not in err, err


def test_command_line_errors_are_toolkit_errors_at_their_source(tmp_path, capsys):
    import train
    from facedata.errors import FaceKitError

    for argv, message in ((["--recipe", "sample-arcface", "--set", "lr"], "--set 'lr': expected key=value"),
                          (["--recipe", "nope"], "unknown recipe 'nope'; valid: "),
                          (["--recipe", "sample-arcface", "--set", "sampler='px'"], "unknown sampler 'px'"),
                          (["--config", str(tmp_path / "none.json")], f"--config {tmp_path / 'none.json'}: cannot be read"),
                          (["--recipe", "sample-arcface", "--data", str(tmp_path / "nowhere"), "--out",
                            str(tmp_path / "run")], f"{tmp_path / 'nowhere'}: dataset folder not found")):
        with pytest.raises(FaceKitError, match=re.escape(message)):
            train.main.__wrapped__(argv)  # the undecorated main: what it raises, before the runner prints it
        assert train.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"train.py: error: {message}") and err.count("\n") == 1, err


def _interrupted_trainer(in_build: bool):
    class Interrupted:
        is_main, history = True, []

        def __init__(self, cfg, out, resume):
            if in_build:  # Ctrl+C while the data is scanned or the teacher table built
                raise KeyboardInterrupt

        def fit(self):
            raise KeyboardInterrupt

    return Interrupted


@pytest.mark.parametrize("in_build", [True, False])
def test_ctrl_c_says_once_that_nothing_was_saved(tmp_path, capsys, monkeypatch, in_build):
    import train

    monkeypatch.setattr(train, "Trainer", _interrupted_trainer(in_build))
    assert train.main(["--recipe", "sample-arcface", "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "before an epoch was completed: no checkpoint was saved" in err
    assert err.count("interrupted (Ctrl+C)") == 1 and "--resume" not in err and "Traceback" not in err, err


def test_ctrl_c_with_a_last_pt_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import train

    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"not a checkpoint")  # its epoch cannot be read: "?"
    monkeypatch.setattr(train, "Trainer", _interrupted_trainer(False))
    assert train.main(["--recipe", "sample-arcface", "--out", str(out), "--resume"]) == 130
    err = capsys.readouterr().err
    assert f"{out / 'last.pt'} holds epoch ?" in err and f"--config {out / 'config.json'} --resume" in err
    assert err.count("interrupted (Ctrl+C)") == 1 and "no checkpoint was saved" not in err, err


def test_a_teacher_that_cannot_load_is_a_training_error_but_a_bug_keeps_its_type(small_aligned, tmp_path, monkeypatch):
    from types import SimpleNamespace

    import models_definition.zoo
    from training import teacher as teacher_module

    cfg = tiny(small_aligned, head="distill", head_kwargs={}, sampler="shuffle",
               teacher={"checkpoint": str(tmp_path / "none.pt")})
    procs = SimpleNamespace(device=torch.device("cpu"), is_main=True)
    folder = make_splits(cfg).train
    with pytest.raises(TrainingError, match=re.escape(f"checkpoint {tmp_path / 'none.pt'} not found")):
        teacher_module.teacher_table(cfg, folder, 64, None, tmp_path, procs)

    def buggy(*args, **kwargs):
        raise RuntimeError("a bug in the loader")

    monkeypatch.setattr(models_definition.zoo, "load_model", buggy)
    with pytest.raises(RuntimeError, match="a bug in the loader") as caught:
        teacher_module.teacher_table(cfg, folder, 64, None, tmp_path, procs)
    assert not isinstance(caught.value, TrainingError)


class _CachingThenRefused(Trainer):
    """A build that caches something in the run folder (as a teacher table), then is refused."""

    def _build(self, resume):
        (self.out / "teacher-cache.npy").write_bytes(b"")
        raise TrainingError("refused after caching")


def test_a_refused_build_leaves_no_run_folder_behind(small_aligned, tmp_path):
    cfg = tiny(tmp_path / "nowhere")  # a setting only the build checks: the data folder is scanned there
    out = tmp_path / "checkpoints" / "run"
    with pytest.raises(DatasetError, match="dataset folder not found"):
        Trainer(cfg, out)
    assert list(tmp_path.iterdir()) == []  # neither run/ with its .lock nor the checkpoints/ made for it
    out.mkdir(parents=True)  # a folder that was there before is kept
    with pytest.raises(DatasetError):
        Trainer(cfg, out)
    assert out.is_dir()
    with pytest.raises(TrainingError, match="refused after caching"):  # one that holds more than the lock: kept
        _CachingThenRefused(tiny(small_aligned), tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == [".lock", "teacher-cache.npy"]
