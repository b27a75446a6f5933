"""Models by name: ``load_model(name)`` -> a :class:`FaceEmbedder` (model + its preprocessing).

The caller passes the registry (the project's is ``config.MODELS``, plain data; this package never
imports it). An entry is a trained checkpoint (``{"checkpoint": path, "recipe": name, ...}``), a
reference embedder (``{"reference": "sface"}``) or a seeded untrained baseline (``{"random_init":
backbone, "seed": 0}``). The unknown-face threshold comes from :mod:`.thresholds`, read when the model
loads: the records measured for the embedder's flip setting and the entry's ``threshold_fpr`` (from the file
the entry names as ``measured_thresholds``), else the entry's own, else the checkpoint's, else none. A checkpoint
entry with ``"sha256"`` is a model shipped in the repository (:mod:`.shipped`): the file's digest is checked
before it is read.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from facedata.preprocess import Preprocess

from .backbones import fuse_conv_bn
from .checkpoint import model_from_checkpoint
from .precision import autocast, autocast_dtype
from .reference import DLIB_PREPROCESS, SFACE_PREPROCESS, DlibNet, SFaceNet
from .onnx_backend import BACKENDS
from .shipped import check_shipped
from .thresholds import entry_records, load_measured, pick_threshold
from facedata.errors import FaceKitError, UsageError
from id_rate.scoring import l2_normalize  # numpy only: the one normalisation of every embedding


class ModelNotFoundError(FaceKitError, KeyError):
    """An unknown model name, or a known one whose checkpoint is not there (the message says how to train it)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def check_model_names(names: Iterable[str], registry: Mapping[str, Any], what: str = "model",
                      sort: bool = True) -> None:
    """Refuse the first of ``names`` that ``registry`` lacks, with the valid names (sorted, or in the
    registry's own order with ``sort=False``): the one check of every command, run before any work."""
    unknown = [n for n in names if n not in registry]
    if unknown:
        valid = sorted(registry) if sort else list(registry)
        raise ModelNotFoundError(f"unknown {what} {unknown[0]!r}; valid: {', '.join(valid)}")


@dataclass
class FaceEmbedder:
    """Aligned RGB uint8 crops -> L2-normalised float32 embeddings, batched, with optional flip TTA
    (the embedding of the crop plus that of its mirror, normalised: the LFW convention)."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]  # preprocessed (N, 3, S, S) float32 -> (N, D)
    preprocess: Preprocess
    embedding_size: int
    threshold: float | None = None  # cosine similarity; below it a face is "Unknown"
    threshold_fpr: float | None = None  # the FPR the threshold was measured at
    spec: dict[str, Any] = field(default_factory=dict)
    flip_tta: bool = False
    batch_size: int = 64
    checkpoint: Path | None = None  # the file the weights came from (caches key on it); None otherwise
    # (size, mtime_ns) of ``checkpoint`` when the weights were read: the cache key hashes the file later, and
    # must not take a file rewritten since (other weights) for these
    checkpoint_stamp: tuple[int, int] | None = field(default=None, repr=False)
    # the PyTorch network behind ``forward`` (eval mode, float32), for export; None for other backends
    module: torch.nn.Module | None = field(default=None, repr=False)
    backend: str = "torch"  # what runs ``forward``: "torch", "onnx" (onnxruntime) or "reference" (OpenCV, dlib)
    # every threshold record it has, in precedence order (``threshold`` is the first that fits): open-set thresholds
    # per gallery size read the same records (recognition.open_set)
    records: tuple = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.checkpoint is not None and self.checkpoint_stamp is None and Path(self.checkpoint).is_file():
            st = Path(self.checkpoint).stat()
            self.checkpoint_stamp = (st.st_size, st.st_mtime_ns)

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = np.stack([self.preprocess.to_array(c) for c in crops[i:i + self.batch_size]])
            e = self.forward(x)
            if self.flip_tta:
                e = e + self.forward(np.ascontiguousarray(x[:, :, :, ::-1]))
            out.append(e)
        source = f" (weights {self.checkpoint})" if self.checkpoint is not None else ""
        return l2_normalize(np.concatenate(out), f"model {self.name!r}{source}: its embeddings")


class NoThresholdError(UsageError):
    """A model with no measured unknown-face threshold, used where a threshold is needed and none was given."""


def check_threshold(value: float | None, what: str = "--threshold") -> float | None:
    """A cosine threshold, refused unless it is a finite number in [-1, 1]: NaN would call every face
    Unknown (no similarity is >= NaN) and a value outside the cosine range decides every face the same way.
    The one check of a given threshold (verify, batch and the live script check theirs before any work) and of
    a model's own (``require_threshold``); None (the model's own, not read yet) passes."""
    if value is not None and not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise UsageError(f"{what} {value}: a cosine similarity threshold must be a number in [-1, 1] (e.g. the "
                         "model's measured one, printed by `python -m id_rate --write-thresholds 1e-3`)")
    return value


def require_threshold(embedder: FaceEmbedder, given: float | None = None) -> float:
    """The threshold to compare similarities with: ``given`` when set, else the model's measured one, either
    checked by ``check_threshold`` (a NaN or out-of-range value from a thresholds file or a checkpoint is refused
    as a given one is); neither is a :class:`NoThresholdError` that says how to measure one."""
    if given is not None:
        return float(check_threshold(float(given)))
    if embedder.threshold is None:
        raise NoThresholdError(f"model {embedder.name!r} has no measured threshold; pass --threshold (a cosine "
                               f"similarity), or measure one: python -m id_rate --models {embedder.name} "
                               f"--data <aligned folder> --write-thresholds 1e-3")
    return float(check_threshold(float(embedder.threshold), f"model {embedder.name!r}'s measured threshold"))


def _torch_forward(model: torch.nn.Module, device: torch.device, cpu_bf16: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """Inference on an eval-mode model, its Conv+BN folded and NHWC: measured 1.3x (MobileFaceNet) on a
    2-core CPU (benchmarks/README.md). Mixed precision: float16 on CUDA always; bfloat16 on a CPU with bf16 units
    only when the registry entry asks (``"cpu_bf16": True``): 1.7-3.0x batched, 1.0-1.2x one face at a time here
    (benchmarks/README.md), and its embeddings differ from float32 ones in the third decimal."""
    model = fuse_conv_bn(model).to(device).to(memory_format=torch.channels_last)
    amp = device.type == "cuda" or cpu_bf16

    @torch.inference_mode()
    def forward(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            return model(t).float().cpu().numpy()

    return forward


def _precision_spec(spec: dict, entry: Mapping[str, Any], device: torch.device) -> dict:
    """``spec`` plus the inference dtype when it is not float32, so embedding caches key on it (bfloat16
    embeddings differ from float32 ones in the third decimal)."""
    dtype = autocast_dtype(device, device.type == "cuda" or bool(entry.get("cpu_bf16")))
    return spec if dtype is None else {**spec, "inference_dtype": str(dtype).removeprefix("torch.")}




# The keys of a registry entry whose model is a PyTorch network of ours (what the exporter can export); config's
# merged_models (torch-free, so it cannot import this) gives such entries their "onnx" path by the same keys.
NETWORK_KEYS = frozenset({"checkpoint", "random_init", "pretrained_backbone"})


class StaleExportError(ModelNotFoundError):
    """An ONNX export whose source checkpoint has changed since it was exported (other weights)."""


def check_backend(backend: str | None) -> str | None:
    """Refuse an unknown backend name, listing the valid ones; None (the entry's own) passes."""
    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    return backend


def load_model(name: str, registry: Mapping[str, Mapping[str, Any]], device: str | None = None,
               flip_tta: bool = False, batch_size: int = 64, backend: str | None = None) -> FaceEmbedder:
    """The embedder called ``name`` in ``registry`` (the caller's, e.g. ``config.MODELS``), ready for
    inference, with the unknown-face threshold measured for its flip setting (see ``thresholds``).
    ``backend``: "torch" or "onnx" (the entry's ONNX export under onnxruntime); None: the entry's ``backend``,
    else "onnx" for an entry that is only an ONNX file, else "torch"."""
    check_model_names([name], registry)
    entry = registry[name]
    # read now, not when the registry was built: a bad file fails here, before any weights load, and a
    # threshold just written by `id_rate --write-thresholds` is the one used
    file = entry.get("measured_thresholds")
    measured = load_measured(file).get(name, []) if file is not None else []
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if backend is None:
        backend = entry.get("backend") or ("onnx" if "onnx" in entry and not (NETWORK_KEYS | {"reference"})
                                           & set(entry) else "torch")
    check_backend(backend)

    def made(forward, preprocess: Preprocess, size: int, spec: dict, path: Path | None = None,
             stamp: tuple[int, int] | None = None, module: torch.nn.Module | None = None,
             runtime: str = "torch", extra_records: Iterable[Mapping[str, Any]] = ()) -> FaceEmbedder:
        records = entry_records(entry, spec, measured) + list(extra_records)
        t = pick_threshold(records, flip_tta, entry.get("threshold_fpr"))
        return FaceEmbedder(name, forward, preprocess, size, None if t is None else t["cos"],
                            None if t is None else t.get("fpr"), spec, flip_tta, batch_size, path, stamp, module,
                            runtime, tuple(records))

    if backend == "onnx":
        if "reference" in entry:
            raise UsageError(f"model {name!r} is a reference embedder with its own runtime; the onnx backend runs "
                             "this project's exported models (python -m models_definition.export NAME)")
        return _onnx_embedder(name, entry, made)
    if entry.get("reference") == "sface":
        net = SFaceNet()
        return made(net, SFACE_PREPROCESS, net.embedding_size, {"reference": "sface"}, runtime="reference")
    if entry.get("reference") == "dlib":
        jitters = entry.get("num_jitters", 1)
        net = DlibNet(jitters)
        spec = {"reference": "dlib"} if jitters == 1 else {"reference": "dlib", "num_jitters": jitters}
        return made(net, DLIB_PREPROCESS, net.embedding_size, spec, runtime="reference")
    if "random_init" in entry:  # the untrained baseline of a comparison: seeded, so every run is the same model
        from facedata.preprocess import get_preset

        from .backbones import build_embedder

        seed, size = entry.get("seed", 0), entry.get("embedding_size", 512)
        preprocess = get_preset(entry.get("preprocess", "arcface112"))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = build_embedder(entry["random_init"], size, input_px=preprocess.size_px).eval()
        # the spec names everything that makes these weights (embedding caches key on it and on the preprocess)
        return made(_torch_forward(model, dev, bool(entry.get("cpu_bf16"))), preprocess, model.embedding_size,
                    _precision_spec({"random_init": entry["random_init"], "seed": seed, "embedding_size": size}, entry, dev),
                    module=model)
    if "pretrained_backbone" in entry:  # published weights as they come, e.g. SFace converted into PyTorch
        from facedata.preprocess import get_preset

        from .backbones import build_embedder

        preprocess = get_preset(entry.get("preprocess", "arcface112"))
        model = build_embedder(entry["pretrained_backbone"], entry.get("embedding_size", 512), entry["pretrained"],
                               preprocess.size_px).eval()
        spec = {k: entry.get(k) for k in ("pretrained_backbone", "pretrained", "embedding_size", "preprocess")}
        return made(_torch_forward(model, dev, bool(entry.get("cpu_bf16"))), preprocess, model.embedding_size,
                    _precision_spec(spec, entry, dev), module=model)
    if "reference" in entry:
        raise ModelNotFoundError(f"model {name!r}: unknown reference embedder {entry['reference']!r}; valid: sface, dlib")
    path = Path(entry["checkpoint"])
    if "sha256" in entry:  # shipped in the repository: its bytes are checked before torch reads the file
        check_shipped(path, entry["sha256"], name)
    if not path.is_file():
        recipe = entry.get("recipe", name)
        raise ModelNotFoundError(
            f"model {name!r}: checkpoint {path} not found. Train it with `python train.py --recipe {recipe}` "
            f"(writes {path.parent}/best.pt and last.pt), or point config.MODELS[{name!r}]['checkpoint'] at a file")
    st = path.stat()  # before the weights are read: a rewrite while they load makes the stamp stale
    model, preprocess, spec = model_from_checkpoint(path, map_location=dev)
    return made(_torch_forward(model, dev, bool(entry.get("cpu_bf16"))), preprocess, model.embedding_size,
                _precision_spec(spec, entry, dev), path, (st.st_size, st.st_mtime_ns), model)


def _onnx_embedder(name: str, entry: Mapping[str, Any], made: Callable[..., FaceEmbedder]) -> FaceEmbedder:
    """The entry's ONNX export under onnxruntime: its preprocessing and thresholds from the file's metadata
    (after the measured and the entry's own), refused when its source checkpoint has changed since the export."""
    from .fingerprint import file_sha256
    from .onnx_backend import describe, forward_of, metadata, session

    if entry.get("onnx") is None:
        raise ModelNotFoundError(f"model {name!r} has no ONNX export in its registry entry; export one with "
                                 f"`python -m models_definition.export {name} OUT.onnx` and name it as the entry's "
                                 "'onnx' file")
    path = Path(entry["onnx"])
    if "sha256" in entry and "checkpoint" not in entry:  # an ONNX file shipped in the repository
        check_shipped(path, entry["sha256"], name)
    if not path.is_file():
        how = entry.get("export_of") or f"{name} {path}"
        raise ModelNotFoundError(f"model {name!r}: ONNX export {path} not found. Export it with `python -m "
                                 f"models_definition.export {how}`")
    st = path.stat()
    sess = session(path)
    meta = metadata(sess, str(path))
    preprocess, size = describe(meta, str(path))
    source = entry.get("checkpoint")
    if meta.get("source_sha256") and source is not None and Path(source).is_file() \
            and file_sha256(source) != meta["source_sha256"]:
        raise StaleExportError(f"model {name!r}: {path} was exported from another version of {source} (its "
                               "weights changed since); export it again with `python -m models_definition.export "
                               f"{name} {path} --overwrite`")
    built = meta.get("spec") or {}
    changed = [k for k in ("random_init", "seed", "embedding_size", "pretrained_backbone", "pretrained", "preprocess")
               if k in entry and k in built and built[k] != entry[k]]
    if changed and "checkpoint" not in entry:  # a seeded or converted model: its entry names the weights
        raise StaleExportError(f"model {name!r}: {path} was exported with other settings ({', '.join(changed)} "
                               "differ from the registry entry); export it again with `python -m "
                               f"models_definition.export {name} {path} --overwrite`")
    spec = dict(built, backend="onnx", precision=meta.get("precision", "float32"))
    return made(forward_of(sess), preprocess, size, spec, path, (st.st_size, st.st_mtime_ns), runtime="onnx",
                extra_records=meta.get("thresholds") or ())
