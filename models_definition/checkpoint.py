"""Checkpoints that carry their own spec, so any script rebuilds the model (and its preprocessing).

A checkpoint is ``{"spec": {...}, "model": state_dict, ...extra}`` where the spec holds only plain
values (backbone, embedding size, dropout, the :class:`~facedata.preprocess.Preprocess` dict, head,
training config, metrics, classes). It is written atomically and read with
``torch.load(weights_only=True)``: loading never runs code.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from facedata.io import atomic_output
from facedata.preprocess import Preprocess

from .backbones import BackboneError, Embedder, build_embedder
from facedata.errors import FaceKitError

REQUIRED_SPEC = ("backbone", "embedding_size", "preprocess")


class CheckpointError(FaceKitError, RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the model its spec describes."""


def save_checkpoint(path: str | os.PathLike, model: Embedder, spec: dict[str, Any], **extra: Any) -> Path:
    """Write ``{"spec", "model", **extra}`` to ``path`` through :func:`facedata.io.atomic_output`."""
    missing = [k for k in REQUIRED_SPEC if k not in spec]
    if missing:
        raise CheckpointError(f"spec lacks {missing}; a checkpoint must say how to rebuild its model")
    path = Path(path)
    with atomic_output(path) as tmp:
        torch.save({"spec": spec, "model": model.state_dict(), **extra}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (``mmap``: tensors stay on disk until touched, for a
    quick look at the spec)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notes: noise for the user
            ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:
        # Never pass on torch's own text: it suggests weights_only=False, i.e. running the file's code.
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as fh:
                head = fh.read(8)
            why = f"not a torch checkpoint archive (it starts with {head!r})"
        else:
            why = (f"a damaged archive, or one holding objects other than tensors and plain values, which the safe "
                   f"loader refuses ({type(exc).__name__})")
        raise CheckpointError(f"{path}: not a readable checkpoint of this project: {why}. Use a best.pt / last.pt "
                              "written by train.py, or re-copy the file") from None
    if not isinstance(ckpt, dict) or "spec" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a checkpoint of this project (no 'spec' and 'model' entries)")
    return ckpt


def _check_spec(path: Path, spec: Any) -> dict[str, Any]:
    """The spec, refused unless it holds every key a model is rebuilt from (and a preprocess dict)."""
    if not isinstance(spec, dict):
        raise CheckpointError(f"{path}: its 'spec' is a {type(spec).__name__}, not a dict; re-save the checkpoint "
                              "with train.py")
    missing = [k for k in REQUIRED_SPEC if k not in spec]
    if missing:
        raise CheckpointError(f"{path}: its spec lacks {', '.join(repr(k) for k in missing)} (it has "
                              f"{sorted(spec)}); a checkpoint must say how to rebuild its model: re-save it with "
                              "train.py, or add the key to its spec")
    pre = spec["preprocess"]
    if not isinstance(pre, dict) or "size_px" not in pre:
        raise CheckpointError(f"{path}: its spec's 'preprocess' must be a Preprocess dict with 'size_px', got "
                              f"{pre!r}")
    # (key, value, well-typed, what it must be): checked here, so that a builder's own error is never blamed on
    # the file (and a bug in a builder keeps its traceback)
    checks = [("backbone", spec["backbone"], isinstance(spec["backbone"], str), "a backbone name"),
              ("embedding_size", spec["embedding_size"], _is_int(spec["embedding_size"]), "a whole number"),
              ("dropout", spec.get("dropout", 0.0), _is_number(spec.get("dropout", 0.0)), "a number"),
              ("preprocess.size_px", pre["size_px"], _is_int(pre["size_px"]), "a whole number")]
    checks += [(f"preprocess.{k}", pre[k], _is_triple(pre[k]), "3 numbers") for k in ("mean", "std") if k in pre]
    checks += [(f"preprocess.{k}", pre[k], isinstance(pre[k], str), "a string")
               for k in ("color_order", "alignment") if k in pre]
    wrong = [f"{key!r} is {value!r} (expected {what})" for key, value, ok, what in checks if not ok]
    unknown = sorted(set(pre) - set(Preprocess.__dataclass_fields__))
    if unknown:
        wrong.append(f"'preprocess' has unknown keys {unknown} (valid: {sorted(Preprocess.__dataclass_fields__)})")
    if wrong:
        raise CheckpointError(f"{path}: its spec does not describe a model this project builds: {'; '.join(wrong)}; "
                              "re-save it with train.py")
    return spec


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_triple(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 3 and all(_is_number(v) for v in value)


def model_from_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Embedder, Preprocess, dict]:
    """Rebuild the embedder its spec describes, load its weights, and return (model in eval mode,
    its preprocessing, the spec). A spec without a key, a state dict that does not fit the spec, or
    weights that are not finite say what is wrong, naming the file."""
    path = Path(path)
    ckpt = load_checkpoint(path, map_location)
    spec = _check_spec(path, ckpt["spec"])
    try:  # the spec's keys and types are checked: what is left is a value the builders refuse
        preprocess = Preprocess.from_dict(spec["preprocess"])  # refuses a bad colour order or std (ValueError)
    except ValueError as exc:
        raise CheckpointError(f"{path}: its spec's 'preprocess' is not usable: {exc}; re-save it with train.py") \
            from None
    try:
        model = build_embedder(spec["backbone"], spec["embedding_size"], pretrained=None,
                               input_px=preprocess.size_px, dropout=spec.get("dropout", 0.0))
    except BackboneError as exc:  # an unknown backbone, a size it cannot build
        raise CheckpointError(f"{path}: its spec does not describe a model this project builds: {exc}") from None
    own = model.state_dict()
    theirs = ckpt["model"]
    if not isinstance(theirs, dict) or not all(isinstance(v, torch.Tensor) for v in theirs.values()):
        raise CheckpointError(f"{path}: its 'model' entry is not a state dict of tensors")
    problems = []
    missing = sorted(set(own) - set(theirs))
    unexpected = sorted(set(theirs) - set(own))
    if missing:
        problems.append(f"missing {len(missing)} tensors (first: {missing[:3]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (first: {unexpected[:3]})")
    shapes = [f"{k}: checkpoint {tuple(theirs[k].shape)} vs spec {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(theirs)) if own[k].shape != theirs[k].shape]
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches ({'; '.join(shapes[:3])})")
    if problems:
        raise CheckpointError(f"{path}: weights do not match the spec (backbone {spec['backbone']!r}, embedding "
                              f"{spec['embedding_size']}): " + "; ".join(problems))
    # A diverged run saves NaN or inf weights; every embedding would be NaN, found only after the data is read.
    bad = [k for k, v in theirs.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} weight tensors hold NaN or inf (first: {bad[:3]}); the training "
                              "run diverged before it was saved: use an earlier checkpoint (best.pt) or retrain "
                              "with a lower learning rate")
    model.load_state_dict(theirs)
    return model.eval(), preprocess, spec
