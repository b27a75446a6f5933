"""What runs around each epoch: validation, verification, early stopping and the log, as callbacks (in the
spirit of insightface arcface_torch's ``CallBackVerification`` / ``CallBackLogging``).

The protocol: a callback is any object with some of these methods (subclass :class:`Callback` for no-op
defaults); the :class:`~training.engine.Trainer` calls them in list order::

    on_fit_start(trainer)            once per fit() call, before its first epoch
    on_epoch_end(trainer, metrics)   after each epoch's training (and for epoch 0, the untrained model):
                                     add figures to ``metrics``; the monitored one is read after all have run
    on_row(trainer, row)             after the epoch's row (metrics, wall_seconds) is in ``trainer.history``
                                     and last.pt / best.pt are written: report or record it

A callback runs on rank 0 only (it measures or writes) unless its ``every_rank`` is True (it decides
something every process must agree on). Set ``trainer.stop_training = True`` to end the run after the
epoch. Add one with ``Trainer(cfg, out, callbacks=[*default_callbacks(), Mine()])``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facedata.datasets import FaceFolder
from facedata.errors import DatasetError
from id_rate.metrics import MetricError, nearest_mean_accuracy
from id_rate.protocols import idrate
from id_rate.scoring import l2_normalize
from models_definition.heads import CLASSIFIER_HEADS
from models_definition.thresholds import record

from .data import make_sampler
from .embedding import embed_crops, embed_folder
from .errors import TrainingError
from .log import write_log

if TYPE_CHECKING:
    from .engine import Trainer


class Callback:
    """No-op hooks to override (see the module docstring)."""

    every_rank = False

    def on_fit_start(self, trainer: "Trainer") -> None:
        pass

    def on_epoch_end(self, trainer: "Trainer", metrics: dict[str, Any]) -> None:
        pass

    def on_row(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        pass


class Validation(Callback):
    """Closed-set accuracy and loss on ``val``; open-set ROC-AUC, TPR@FPR and the cosine threshold at FPR
    1e-3 on the held-out query / distractor identities (each embedded once, plain and flipped). Missing
    parts give None."""

    def on_epoch_end(self, trainer: "Trainer", metrics: dict[str, Any]) -> None:
        m: dict[str, Any] = {"val_loss": None, "val_acc": None, "val_auc": None, "val_tpr@1e-3": None,
                             "val_tpr@1e-2": None, "threshold_cos@fpr=1e-3": None}
        s = trainer.splits
        if len(s.val):
            m.update(self.closed_set(trainer))
        if len(s.query):
            m.update(self.open_set(trainer))
        metrics.update(m)

    @staticmethod
    @torch.no_grad()
    def closed_set(trainer: "Trainer") -> dict[str, Any]:
        s, head = trainer.splits, trainer.head
        val = embed_folder(trainer, s.val)
        raw, labels = torch.from_numpy(val.raw), torch.from_numpy(s.val.labels)
        out: dict[str, Any] = {"val_loss": val_loss(trainer, raw, labels)}
        if trainer.cfg.head in CLASSIFIER_HEADS and hasattr(head, "logits"):
            logits = head.logits(raw.to(trainer.device)).cpu()
            out["val_acc"] = float((logits.argmax(1) == labels).float().mean())
        else:  # a metric head: the nearest training-class mean
            ref = s.train.subset(per_class_subset(s.train, 20))
            out["val_acc"] = nearest_mean_accuracy(val.plain, s.val.labels, embed_folder(trainer, ref).plain,
                                                   ref.labels)
        return out

    @staticmethod
    def open_set(trainer: "Trainer") -> dict[str, Any]:
        s = trainer.splits
        q, d = embed_folder(trainer, s.query, flip=True), embed_folder(trainer, s.distractor, flip=True)
        try:  # the evaluation package's ID-rate protocol, on the held-out identities
            r = idrate(q.plain, s.query.labels, d.plain, fprs=(1e-3, 1e-2), device="cpu")
            # thresholds per FPR and flip setting, for load_model: a flip-TTA embedder never uses a
            # threshold measured without flip (models_definition.thresholds)
            rf = idrate(q.flip, s.query.labels, d.flip, fprs=(1e-3, 1e-2), device="cpu")
        except MetricError as exc:
            raise TrainingError(f"open-set validation failed: {exc}") from None
        where = f"held-out identities of the training run ({r.n_neg} negative pairs)"
        return {"val_auc": r.auc, "val_tpr@1e-3": r.tpr(1e-3), "val_tpr@1e-2": r.tpr(1e-2),
                "threshold_cos@fpr=1e-3": r.points[0].threshold, "n_pos": r.n_pos, "n_neg": r.n_neg,
                "thresholds": [record(p.threshold, p.target_fpr, flip, data=where)
                               for flip, res in ((False, r), (True, rf)) for p in res.points
                               if p.threshold is not None]}


class PairVerification(Callback):
    """Every verification set (``verify_sets``): 10-fold accuracy and TAR@FAR=1e-3 of the current model,
    through the same scoring as ``python -m id_rate`` (``id_rate.evaluate.score_pairs``)."""

    def on_epoch_end(self, trainer: "Trainer", metrics: dict[str, Any]) -> None:
        from id_rate.evaluate import score_pairs

        flip, size = trainer.cfg.verify_flip, trainer.model.embedding_size
        for ps in trainer.verify_sets:
            if ps.images is not None:
                e = embed_crops(trainer, ps.images, flip=flip).unit(flip)
            else:  # a pair with a missing image is counted wrong: embed each image that exists once
                unique = sorted({p for p in ps.paths if p is not None and p.is_file()})
                folder = FaceFolder(Path("."), ["pairs"], unique, np.zeros(len(unique), np.int64))
                table = dict(zip(unique, embed_folder(trainer, folder, flip=flip).unit(flip)))
                missing = l2_normalize(np.ones((1, size), np.float32))[0]
                e = np.stack([table.get(p, missing) for p in ps.paths]) if ps.paths else np.zeros(
                    (0, size), np.float32)
            r = score_pairs(ps, e[0::2], e[1::2])
            metrics[f"verify_{ps.name}_acc"], metrics[f"verify_{ps.name}_tar@1e-3"] = r.accuracy_mean, r.tar_at_far_1e3


class Selection(Callback):
    """With ``monitor="select"``: ``select``, the mean of every verification set's accuracy and the held-out
    identities' ``val_auc`` (both in [0, 1]), so one figure weighs the pairs of another set (LFW View 1
    DevTest) and unseen people of the training set's own kind. A missing part is an error, not a silent mean
    of fewer figures."""

    def on_epoch_end(self, trainer: "Trainer", metrics: dict[str, Any]) -> None:
        if trainer.monitor != "select":
            return
        keys = [f"verify_{ps.name}_acc" for ps in trainer.verify_sets] + ["val_auc"]
        missing = [k for k in keys if metrics.get(k) is None]
        if missing or not trainer.verify_sets:
            raise TrainingError(f"monitor 'select' needs verify_sets and an open-set hold-out (open_set_query); "
                                f"missing: {missing or ['verify_sets']}")
        metrics["select"] = float(np.mean([metrics[k] for k in keys]))


class EarlyStopping(Callback):
    """Ends the run once the monitored value has not improved for ``early_stop_patience`` epochs (also a
    resumed run that had already run out of patience)."""

    every_rank = True  # every process must stop at the same epoch

    def on_fit_start(self, trainer: "Trainer") -> None:
        self._check(trainer)

    def on_row(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        self._check(trainer)

    @staticmethod
    def _check(trainer: "Trainer") -> None:
        patience = trainer.cfg.early_stop_patience
        if patience is not None and trainer.stale >= patience:
            trainer.stop_training = True


class CsvLog(Callback):
    """``log.csv`` and the ``loss.png`` curves, rewritten from the history after every row."""

    def on_row(self, trainer: "Trainer", row: dict[str, Any]) -> None:
        write_log(trainer.out, trainer.history)


def default_callbacks() -> list[Callback]:
    """The built-ins, in the order they run: figures first, then the decisions and the log that read them."""
    return [Validation(), PairVerification(), Selection(), EarlyStopping(), CsvLog()]


def load_verify_sets(specs: list[str], monitor: str) -> list:
    """The pair sets scored every epoch; the monitored one must not be LFW View 2 (reported, never used to
    choose best.pt)."""
    from id_rate.evaluate import is_lfw_view2, pair_set

    try:
        sets = [pair_set(spec) for spec in specs]
    except (MetricError, DatasetError) as exc:
        raise TrainingError(f"verify_sets: {exc}") from None
    names = [ps.name for ps in sets]
    if len(set(names)) != len(names):
        raise TrainingError(f"verify_sets: two sets are named alike ({names}); rename one of the files")
    for ps in sets:
        if monitor in (f"verify_{ps.name}_acc", f"verify_{ps.name}_tar@1e-3", "select") and (
                is_lfw_view2(ps) or ps.name.lower().startswith("cfp")):
            raise TrainingError(f"monitor {monitor!r} would choose best.pt on {ps.name} (LFW View 2 or CFP), a "
                                "set its figures are reported on; monitor View 1 (pairsDevTest) or held-out "
                                "identities instead")
    if monitor.startswith("verify_") and not any(monitor.startswith(f"verify_{n}_") for n in names):
        raise TrainingError(f"monitor {monitor!r} names no set of verify_sets ({names or 'none'})")
    return sets


def per_class_subset(folder: FaceFolder, per_class: int) -> list[int]:
    """Up to ``per_class`` items of each class (a fixed draw: every epoch compares with the same references)."""
    rng = np.random.default_rng(0)
    out: list[int] = []
    for c in np.unique(folder.labels):
        idx = np.flatnonzero(folder.labels == c)
        out += sorted(rng.choice(idx, size=min(per_class, len(idx)), replace=False).tolist())
    return out


@torch.no_grad()
def val_loss(trainer: "Trainer", raw: torch.Tensor, labels: torch.Tensor) -> float | None:
    """The training loss on validation embeddings, batched the way the sampler batches training."""
    if getattr(trainer.head, "takes_index", False):  # the teacher table covers training images only
        return None
    try:
        sampler = make_sampler(trainer.cfg, labels.numpy(), seed=0)
    except (DatasetError, TrainingError):
        return None
    losses = []
    for batch in list(sampler)[:16]:
        idx = torch.as_tensor(batch)
        try:
            losses.append(float(trainer.head(raw[idx].to(trainer.device), labels[idx].to(trainer.device))))
        except ValueError:  # a triplet batch without positives
            continue
    return float(np.mean(losses)) if losses else None
