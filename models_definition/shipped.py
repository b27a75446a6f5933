"""Models shipped inside the repository: small float16 checkpoints, each checked by its SHA-256 before it is read.

A shipped model is ``models_definition/shipped/<name>.pt`` (written by ``python -m models_definition.ship``):
a checkpoint of this project (``{"spec", "model"}``, read by :func:`.checkpoint.model_from_checkpoint`) whose
floating-point weights are stored as float16, half the size of the run's float32 ``best.pt``; loading them
into the float32 model casts them back (``load_state_dict`` copies into the model's own tensors). Its registry
entry carries the file's digest (``{"checkpoint": path, "sha256": hex, ...}``, ``config.shipped_model``), and
``load_model`` calls :func:`check_shipped` before torch opens the file, so an altered, truncated, emptied or
replaced file is refused by name rather than loaded as other weights.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from facedata.errors import FaceKitError, UsageError
from facedata.sample_data import sha256_file

SHIP_COMMAND = "python -m models_definition.ship"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# a file name on every system git checks out on: no separators, no leading dot (hidden) or dash (an option)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_MAX_CHARS = 100  # far below any file system's limit, with room for ".pt" / ".md"


class ShippedModelError(FaceKitError):
    """A shipped model file that is missing, or whose content is not the one its registry entry's SHA-256 names."""


def check_name(name: str) -> str:
    """A shipped model's name, refused unless it is a plain file name (it becomes ``<name>.pt`` and ``<name>.md``)."""
    if not _NAME.fullmatch(name) or len(name) > NAME_MAX_CHARS or name.endswith((".pt", ".md")):
        raise UsageError(f"--name {name!r}: a shipped model's name is a plain file name of at most {NAME_MAX_CHARS} "
                         "letters, digits, '.', '_' and '-', starting with a letter or digit, without a path or an "
                         "extension (e.g. composed-arcface-r18half)")
    return name


def check_shipped(path: str | Path, sha256: str, model: str) -> None:
    """Refuse ``path`` unless it is there and its SHA-256 is ``sha256`` (the registry entry's, of model ``model``).
    Called before the file is unpickled: a file that is not the shipped one is never read as weights."""
    path = Path(path)
    expected = str(sha256).lower()
    if not _SHA256.fullmatch(expected):
        raise ShippedModelError(f"model {model!r}: its registry entry's sha256 {sha256!r} is not a SHA-256 digest (64 "
                                f"hex digits); copy the digest `{SHIP_COMMAND}` printed when it wrote {path.name}")
    restore = (f"restore the shipped file with `git checkout -- {path}`, or, if you re-shipped it on purpose, put the "
               f"digest `{SHIP_COMMAND}` printed into model {model!r}'s registry entry (config.MODELS)")
    if not path.is_file():
        raise ShippedModelError(f"model {model!r}: {path} is missing; it is shipped in the repository (git tracks it), "
                                f"so {restore}")
    found = sha256_file(path)
    if found != expected:
        size = path.stat().st_size
        what = "empty (0 bytes)" if size == 0 else f"{size:,} bytes"
        raise ShippedModelError(f"model {model!r}: {path} is not the shipped file (SHA-256 expected {expected}, found "
                                f"{found}; the file is {what}: altered, truncated or replaced); {restore}")


def half_weights(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state`` with its float32 tensors as float16, and the names of those kept in float32 because a value
    would overflow float16 (|x| > 65504: it would load as inf, which loading refuses). Integer tensors (BatchNorm's
    step count) stay as they are."""
    out, kept = {}, []
    for key, value in state.items():
        if value.dtype != torch.float32:
            out[key] = value
            continue
        half = value.to(torch.float16)
        if bool(torch.isfinite(value).all()) and not bool(torch.isfinite(half).all()):
            out[key] = value
            kept.append(key)
        else:
            out[key] = half
    return out, kept


def shipped_checkpoint(ckpt: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The shipped form of a checkpoint: its whole spec (preprocess, split, train_config, thresholds, ...) and its
    embedder's weights in float16; nothing else of it (a last.pt's head, optimiser and RNG state). Also the names
    of the weight tensors kept in float32 (:func:`half_weights`)."""
    weights, kept = half_weights(ckpt["model"])
    return {"spec": ckpt["spec"], "model": weights}, kept
