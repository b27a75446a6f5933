"""ONNX Runtime as an embedding backend: an exported model file -> a :class:`~models_definition.zoo.FaceEmbedder`.

A face model of ours in ONNX (written by :mod:`models_definition.export`) carries what the checkpoint carried, as
ONNX metadata properties under :data:`META_PREFIX`: the format version, the model's name and spec, its
preprocessing (the crop the network wants), its unknown-face threshold records, the digest of the checkpoint it
came from, its precision and the parity it passed when it was exported. Any other ONNX file (no such metadata) is
refused with :class:`NotAFaceModelError`: without the preprocessing its embeddings would mean nothing.

The network's input is the preprocessed float32 batch (N, 3, S, S), exactly what the PyTorch path feeds its
model, so preprocessing, flip TTA, normalisation and caching stay one mechanism (``FaceEmbedder``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from facedata.errors import FaceKitError
from facedata.preprocess import Preprocess

META_PREFIX = "facekit."
FORMAT = "facekit-embedder/1"  # raise when the metadata's meaning changes; older files are then refused by name
INPUT_NAME, OUTPUT_NAME = "input", "embedding"


# Backends that run a model's network: its PyTorch weights, or its ONNX export under onnxruntime (the entry's
# "onnx" file, written by `python -m models_definition.export`). Reference embedders run their own runtime.
BACKENDS = ("torch", "onnx")


def add_backend_option(parser) -> None:
    """The one ``--backend`` option of every command that loads a model."""
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="run the network on torch or onnx (onnxruntime: the model's ONNX export, written by "
                             "python -m models_definition.export NAME); default: the model entry's own")


class OnnxModelError(FaceKitError):
    """An ONNX file that cannot be used as an embedder: unreadable, cut short, or not runnable here."""


class NotAFaceModelError(OnnxModelError):
    """An ONNX file without this project's metadata (another model, or one exported elsewhere)."""


def _runtime():
    try:
        import onnxruntime
    except ImportError:
        raise OnnxModelError("the ONNX backend needs onnxruntime: pip install onnxruntime (listed in "
                             "requirements.txt)") from None
    return onnxruntime


def session(model: bytes | str | Path, threads: int | None = None, what: str | None = None):
    """An ONNX Runtime CPU session on ``model`` (a file or its bytes), every graph optimisation on, ``threads``
    intra-op threads (default: torch's thread count, at most 2 being fastest on 2 cores). A file that is not ONNX
    or is cut short is an :class:`OnnxModelError` naming it."""
    ort = _runtime()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads if threads is not None else _default_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # warnings about unused initialisers are noise to the user
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/RuntimeException types
        name = what or ("the model bytes" if isinstance(model, bytes) else str(model))
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise OnnxModelError(f"{name}: onnxruntime cannot load it ({first}); export it again with `python -m "
                             "models_definition.export NAME OUT.onnx`") from None


def _default_threads() -> int:
    import torch

    return max(1, torch.get_num_threads())


def metadata(sess, what: str) -> dict[str, Any]:
    """The project's metadata of a loaded session, decoded; :class:`NotAFaceModelError` when it has none."""
    raw = sess.get_modelmeta().custom_metadata_map
    ours = {k[len(META_PREFIX):]: v for k, v in raw.items() if k.startswith(META_PREFIX)}
    if not ours:
        raise NotAFaceModelError(f"{what}: an ONNX model without this project's metadata (no '{META_PREFIX}*' "
                                 "properties), so its preprocessing and thresholds are unknown; export a model of "
                                 "ours with `python -m models_definition.export NAME OUT.onnx`")
    if ours.get("format") != FORMAT:
        raise NotAFaceModelError(f"{what}: metadata format {ours.get('format')!r}, this version reads {FORMAT!r}; "
                                 "export it again with `python -m models_definition.export`")
    try:
        return {k: json.loads(v) for k, v in ours.items() if k != "format"}
    except ValueError as exc:
        raise NotAFaceModelError(f"{what}: its '{META_PREFIX}*' metadata is not JSON ({exc}); export it again") \
            from None


def encode_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """``values`` as ONNX metadata properties (JSON strings under :data:`META_PREFIX`), with the format."""
    out = {META_PREFIX + "format": FORMAT}
    out.update({META_PREFIX + k: json.dumps(v, sort_keys=True, default=str) for k, v in values.items()})
    return out


def forward_of(sess) -> Callable[[np.ndarray], np.ndarray]:
    """Preprocessed (N, 3, S, S) float32 -> (N, D) raw embeddings through ``sess``."""
    name = sess.get_inputs()[0].name

    def forward(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]

    return forward


def describe(meta: Mapping[str, Any], what: str) -> tuple[Preprocess, int]:
    """The preprocessing and embedding size the metadata names; a malformed value is a NotAFaceModelError."""
    try:
        return Preprocess.from_dict(meta["preprocess"]), int(meta["embedding_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise NotAFaceModelError(f"{what}: its metadata lacks a usable preprocess or embedding_size ({exc}); "
                                 "export it again with `python -m models_definition.export`") from None
