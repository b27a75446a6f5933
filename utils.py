"""The notebooks' helpers: train a recipe, read and plot a run's log, score its checkpoint on the people it
held out, show faces. Each is a thin call into the packages (the logic lives there, tested); kept at the
top level because the seed project's notebooks import from ``utils``."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import config
from facedata.align import align_face, arcface_template
from facedata.detect import FaceDetector, pick_main_face
from facedata.draw import draw_faces, image_grid
from facedata.errors import UsageError
from facedata.io import load_image
from models_definition.zoo import check_model_names, load_model

__all__ = ["align_face", "arcface_template", "FaceDetector", "pick_main_face", "draw_faces", "image_grid", "load_image",
           "load_model", "train_recipe", "run_log", "plot_curves", "evaluate_run", "trained_models", "show_faces"]


def train_recipe(recipe: str, out: str | Path | None = None, *, data: str | Path | None = None,
                 epochs: int | None = None, settings: dict[str, Any] | None = None) -> Path:
    """Train ``config.TRAIN_RECIPES[recipe]`` as ``python train.py --recipe RECIPE --resume`` does, into ``out``
    (default ``checkpoints/<recipe>``, train.py's folder); ``data`` / ``epochs`` (None: the recipe's) and
    ``settings`` (train.py's ``--set``) override the recipe. A run already in ``out`` is resumed (a finished
    one returns at once). Returns the run folder."""
    from training import TrainConfig, train

    check_model_names([recipe], config.TRAIN_RECIPES, "recipe", sort=False)  # config's order, as train.py lists them
    given = {"data": None if data is None else str(data), "epochs": epochs}
    cfg = TrainConfig.from_dict({**config.TRAIN_RECIPES[recipe], "progress": False,  # no bars in a notebook
                                 **{k: v for k, v in given.items() if v is not None}, **(settings or {})})
    run = Path(out) if out is not None else config.CHECKPOINTS / recipe
    train(cfg, run, resume=(run / "last.pt").is_file())
    return run


def run_log(run: str | Path):
    """A run's ``log.csv`` (one row per epoch, epoch 0 the untrained model) as a pandas DataFrame."""
    import pandas as pd

    return pd.read_csv(Path(run) / "log.csv")


def plot_curves(run: str | Path):
    """A run's loss and validation curves, drawn from its ``log.csv`` (the engine's ``loss.png`` plot)."""
    from IPython.display import Image

    from training.log import plot_history

    log = run_log(run)
    return Image(data=plot_history(log.astype(object).where(log.notna(), None).to_dict("records")))


def evaluate_run(run: str | Path, *, name: str | None = None, checkpoint: str = "best.pt",
                 baselines: Sequence[str] = (), bootstrap: int = 0, out: str | Path | None = None):
    """Score a run's checkpoint (``best.pt`` or ``last.pt``), called ``name`` (default: the run folder's name),
    beside the ``config.MODELS`` named in ``baselines``, on the identities the run held out
    (``id_rate.evaluate.held_out_protocol``); write the table and figures to ``out`` (default ``<run>/id_rate``)
    and return the ``id_rate.evaluate.Report``. The run's model is the entry ``config.recipe_models`` makes (its
    threshold the one measured at ``config.RECIPE_THRESHOLD_FPR``), with the measured-thresholds file of the
    ``config.MODELS`` entry of that name when that entry is this very checkpoint."""
    from id_rate.evaluate import evaluate, held_out_protocol

    run = Path(run)
    name = name or run.name
    check_model_names(baselines, config.MODELS)
    if name in baselines:  # the report keys models by name: one would replace the other
        raise UsageError(f"the run is named {name!r} like one of the baselines; pass another name= for the run")
    entries = config.recipe_models([run.name], run.parent, config.RECIPE_THRESHOLD_FPR)
    entry = next((e for e in entries.values() if Path(e["checkpoint"]).name == checkpoint), None)
    if entry is None:
        raise UsageError(f"checkpoint={checkpoint!r}: a run folder holds best.pt and last.pt; pass one of them")
    registered = config.MODELS.get(name, {})
    if registered.get("checkpoint") is not None and Path(registered["checkpoint"]).resolve() == \
            Path(entry["checkpoint"]).resolve():  # thresholds measured for that name are this file's
        entry = dict(entry, measured_thresholds=registered.get("measured_thresholds"))
    model = load_model(name, {name: entry})
    others = [load_model(b, config.MODELS) for b in baselines]
    report = evaluate(others + [model], held_out_protocol(model.spec), bootstrap=bootstrap, progress=False)
    report.write(Path(out) if out is not None else run / "id_rate")
    return report


def trained_models(names: Sequence[str]) -> list[str]:
    """The ``config.MODELS`` in ``names`` that can be loaded now: references, and checkpoints already trained."""
    check_model_names(names, config.MODELS)
    return [n for n in names if "checkpoint" not in config.MODELS[n] or Path(config.MODELS[n]["checkpoint"]).is_file()]


def show_faces(paths: Sequence[str | Path], cols: int = 8, per_identity: int | None = None):
    """Equally-sized face crops (aligned faces) tiled row by row, as an image a notebook shows; with
    ``per_identity``, a row per identity (its folder) of its first that many."""
    import io

    from IPython.display import Image
    from PIL import Image as PILImage

    faces = [load_image(p) for p in paths]
    if per_identity is not None:
        by_identity: dict[str, list] = {}
        for p, face in zip(paths, faces):
            by_identity.setdefault(Path(p).parent.name, []).append(face)
        blank = [np.zeros_like(faces[0])] * per_identity if faces else []  # fills a short row
        faces = [f for group in by_identity.values() for f in (group + blank)[:per_identity]]
        cols = per_identity
    buf = io.BytesIO()
    PILImage.fromarray(image_grid(faces, cols=cols)).save(buf, format="PNG")
    return Image(data=buf.getvalue())
