"""The training loop's callbacks on real aligned faces: the protocol a user's callback follows, validation
through the FaceEmbedder evaluation uses (the open set embedded once an epoch), early stopping."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from facedata.io import load_image
from models_definition.checkpoint import save_checkpoint
from models_definition.zoo import load_model
from training import Callback, Trainer, default_callbacks
from training.callbacks import EarlyStopping
from training.embedding import LiveForward, embed_folder

from test_training import tiny


class Recorder(Callback):
    """Records every hook call; adds a figure of its own; stops the run after ``stop_after`` epochs."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[tuple] = []
        self.stop_after = stop_after

    def on_fit_start(self, trainer):
        self.calls.append(("fit_start", trainer.epoch))

    def on_epoch_end(self, trainer, metrics):
        # the built-in validation ran first: its figures are already there
        self.calls.append(("epoch_end", metrics["epoch"], "val_auc" in metrics))
        metrics["my_figure"] = 10.0 * metrics["epoch"]

    def on_row(self, trainer, row):
        self.calls.append(("row", row["epoch"], "wall_seconds" in row, trainer.history[-1] is row))
        if self.stop_after is not None and row["epoch"] >= self.stop_after:
            trainer.stop_training = True


def test_a_users_callback_sees_every_epoch_adds_figures_and_can_stop(small_aligned, tmp_path):
    rec = Recorder(stop_after=1)
    t = Trainer(tiny(small_aligned, epochs=3), tmp_path / "run", callbacks=[*default_callbacks(), rec])
    history = t.fit()
    assert rec.calls == [("fit_start", 0), ("epoch_end", 0, True), ("row", 0, True, True),
                         ("epoch_end", 1, True), ("row", 1, True, True)]
    assert [r["epoch"] for r in history] == [0, 1] and [r["my_figure"] for r in history] == [0.0, 10.0]
    assert (tmp_path / "run" / "last.pt").exists()  # the stop came after epoch 1 was saved
    # without the built-ins nothing is validated or logged, and the loop still trains and checkpoints
    bare = Trainer(tiny(small_aligned, epochs=1), tmp_path / "bare", callbacks=[])
    row = bare.fit()[-1]
    assert row["epoch"] == 1 and "val_auc" not in row and not (tmp_path / "bare" / "log.csv").exists()
    assert (tmp_path / "bare" / "last.pt").exists()


def test_validation_embeds_the_open_set_once_through_a_face_embedder(small_aligned, tmp_path, monkeypatch):
    images = []
    forward = LiveForward.__call__

    def counting(self, x):
        images.append(len(x))
        return forward(self, x)

    monkeypatch.setattr(LiveForward, "__call__", counting)
    t = Trainer(tiny(small_aligned), tmp_path / "run")
    t.fit(max_epochs=0)  # epoch 0 only: the untrained model, validated
    s = t.splits
    # the closed-set part plain (arcface has logits: no reference embeddings); each open-set crop once
    # plain and once mirrored (it was plain, then plain again plus mirrored: 3 forwards)
    assert sum(images) == len(s.val) + 2 * (len(s.query) + len(s.distractor))
    # the figures are those of the embedder evaluation loads from the checkpoint (Conv+BN folded there)
    save_checkpoint(tmp_path / "m.pt", t.model, t.spec({}))
    crops = [load_image(p) for p in s.query.paths]
    for flip in (False, True):
        loaded = load_model("m", {"m": dict(checkpoint=tmp_path / "m.pt")}, device="cpu", flip_tta=flip)
        live = embed_folder(t, s.query, flip=True).unit(flip)
        assert np.allclose(live, loaded(crops), atol=1e-4)


def test_early_stopping_counts_epochs_without_improvement():
    def trainer(stale: int, patience: int | None):
        return SimpleNamespace(cfg=SimpleNamespace(early_stop_patience=patience), stale=stale, stop_training=False)

    stop = EarlyStopping()
    for stale, patience, stops in ((1, 2, False), (2, 2, True), (3, 2, True), (5, None, False)):
        t = trainer(stale, patience)
        stop.on_row(t, {})
        assert t.stop_training is stops, (stale, patience)
    resumed = trainer(2, 2)  # a resumed run that had already run out of patience trains no further
    stop.on_fit_start(resumed)
    assert resumed.stop_training and EarlyStopping.every_rank


def test_a_callback_without_the_base_class_is_enough(small_aligned, tmp_path):
    seen = []

    class OnlyEpochs:  # duck-typed: only the hook it needs
        def on_epoch_end(self, trainer, metrics):
            seen.append(metrics["epoch"])

    Trainer(tiny(small_aligned, epochs=1), tmp_path / "run", callbacks=[OnlyEpochs()]).fit()
    assert seen == [0, 1]


class FlatAccuracy(Callback):
    """A monitored figure that never improves after epoch 1: a plateau schedule with patience 0 then halves
    the rate at every later epoch."""

    def on_epoch_end(self, trainer, metrics):
        metrics["val_acc"] = 0.5


def test_a_plateau_epochs_logged_lr_is_the_rate_after_its_step(small_aligned, tmp_path):
    # the rule of the loop before the callbacks (/work/before's fit()): the row is made after the plateau step,
    # so epoch e logs the rate epoch e + 1 trains at. lr 0.1, factor 0.5: epoch 1 improves (no step down),
    # epochs 2 and 3 do not (patience 0): 0.1 -> 0.05 -> 0.025
    cfg = tiny(small_aligned, epochs=3, lr=0.1, schedule="plateau", plateau_factor=0.5, plateau_patience=0,
               monitor="val_acc")
    history = Trainer(cfg, tmp_path / "run", callbacks=[FlatAccuracy()]).fit()
    assert [r["lr"] for r in history] == [0.1, 0.1, 0.05, 0.025]


def test_selection_is_the_mean_of_the_verification_accuracies_and_the_held_out_auc():
    from training.callbacks import Selection
    from training.errors import TrainingError

    sets = [SimpleNamespace(name="pairsDevTest")]
    t = SimpleNamespace(monitor="select", verify_sets=sets)
    m = {"verify_pairsDevTest_acc": 0.8, "val_auc": 0.9}
    Selection().on_epoch_end(t, m)
    assert m["select"] == pytest.approx(0.85)
    off = {"val_auc": 0.9}
    Selection().on_epoch_end(SimpleNamespace(monitor="val_auc", verify_sets=[]), off)
    assert "select" not in off  # only when it is the monitor
    with pytest.raises(TrainingError, match="missing: \\['val_auc'\\]"):
        Selection().on_epoch_end(t, {"verify_pairsDevTest_acc": 0.8, "val_auc": None})
