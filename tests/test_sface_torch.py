"""SFace converted to PyTorch: exact dequantisation, same embeddings as OpenCV's ONNX on real aligned
faces, trainable with a head, rebuilt from a checkpoint, cached by the ONNX file's SHA-256."""
from __future__ import annotations

import copy
import shutil

import numpy as np
import onnx
import pytest
import torch

from facedata.io import load_image
from models_definition import sface_torch
from models_definition.backbones import build_embedder, fuse_conv_bn
from models_definition.checkpoint import model_from_checkpoint, save_checkpoint
from models_definition.heads import build_head
from models_definition.reference import SFACE_PREPROCESS, SFaceNet, sface_onnx
from models_definition.zoo import load_model


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def onnx_path():
    return sface_onnx()


@pytest.fixture(scope="module")
def sface():
    return build_embedder("sface_mobilefacenet", 128, pretrained="sface").eval()


@pytest.fixture(scope="module")
def faces(small_aligned):
    """Every crop of the small aligned set (about 35 real faces: video frames, photos, portraits)."""
    crops = [load_image(p) for p in sorted(small_aligned.glob("*/*.jpg"))]
    assert len(crops) >= 30
    return crops


@pytest.fixture(scope="module")
def batch(faces):
    return np.stack([SFACE_PREPROCESS.to_array(c) for c in faces])


def test_dequantize_linear_is_the_onnx_operator(onnx_path):
    """Every DequantizeLinear of the SFace file, and uneven blocks, per-axis and per-tensor cases:
    bit-identical to onnx's reference implementation of the operator."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    def reference(x, scale, zp, **attrs):
        names = ["x", "s", "z"][: 2 + (zp is not None)]
        inits = [numpy_helper.from_array(v, n) for n, v in zip(names, [x, scale, zp])]
        node = helper.make_node("DequantizeLinear", names, ["y"], **attrs)
        graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        return ReferenceEvaluator(model).run(None, {})[0]

    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "DequantizeLinear"]
    assert len(nodes) == 29  # 27 convolutions, the fully connected weight and its bias
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, scale, zp = (inits[i] for i in node.input)
        ours = sface_torch.dequantize_linear(x, scale, zp, **attrs)
        assert ours.dtype == np.float32 and np.array_equal(ours, reference(x, scale, zp, **attrs)), node.input[0]

    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (5, 70), dtype=np.int8)
    cases = [  # (scale, zero point, attributes)
        (rng.random((5, 3), np.float32), rng.integers(-9, 9, (5, 3), dtype=np.int8), {"axis": 1, "block_size": 32}),
        (rng.random((2, 70), np.float32), rng.integers(-9, 9, (2, 70), dtype=np.int8), {"axis": 0, "block_size": 3}),
        (rng.random(70, np.float32), rng.integers(-9, 9, 70, dtype=np.int8), {"axis": 1}),
        (np.float32(0.02), np.int8(3), {}),
        (np.float32(0.02), None, {}),
    ]
    for scale, zp, attrs in cases:
        np.testing.assert_array_equal(sface_torch.dequantize_linear(x, scale, zp, **attrs),
                                      reference(x, np.asarray(scale), None if zp is None else np.asarray(zp), **attrs))
    with pytest.raises(sface_torch.SFaceConversionError, match="blocked parameter"):
        sface_torch.dequantize_linear(x, np.ones((5, 2), np.float32), None, axis=1, block_size=32)


def test_same_embeddings_as_the_onnx_model(sface, batch):
    reference = SFaceNet()(batch)
    with torch.no_grad():
        ours = sface(torch.from_numpy(batch)).numpy()
        unit = sface.embed(torch.from_numpy(batch)).numpy()
        fused = fuse_conv_bn(copy.deepcopy(sface))(torch.from_numpy(batch)).numpy()  # the zoo's inference model
    cos = cosines(ours, reference)
    print(f"\nSFace torch vs OpenCV ONNX on {len(batch)} real aligned faces: cosine min {cos.min():.7f}, "
          f"mean {cos.mean():.7f}; max |diff| {np.abs(ours - reference).max():.2e} (|ref| up to {np.abs(reference).max():.2f})")
    assert ours.shape == (len(batch), 128) and sface.embedding_size == 128
    assert cos.min() >= 0.999
    np.testing.assert_allclose(ours, reference, atol=1e-3 * np.abs(reference).max())
    np.testing.assert_allclose(unit, reference / np.linalg.norm(reference, axis=1, keepdims=True), atol=1e-4)
    assert cosines(fused, reference).min() >= 0.999
    assert np.isfinite(ours).all() and np.linalg.matrix_rank(ours) > 20  # distinct faces, distinct embeddings


def test_one_training_step_with_an_arcface_head(sface, faces):
    torch.manual_seed(0)
    model = copy.deepcopy(sface).train()
    x = SFACE_PREPROCESS.batch(faces[:8])
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    head = build_head("arcface", model.embedding_size, 4, scale=32.0, margin_rad=0.3)
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.01)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    loss = head(model(x), labels)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert "trunk.features.conv_1.0.weight" in changed and "neck.2.weight" in changed
    assert len(changed) == len(before)  # every parameter got a gradient step
    with torch.no_grad():
        after = model.eval()(x)
    assert torch.isfinite(after).all()


def test_checkpoint_round_trip_and_load_by_name(sface, batch, faces, tmp_path):
    spec = {"backbone": "sface_mobilefacenet", "embedding_size": 128, "preprocess": SFACE_PREPROCESS.to_dict()}
    path = save_checkpoint(tmp_path / "sface.pt", sface, spec)
    rebuilt, pre, _ = model_from_checkpoint(path)  # built with pretrained=None, then the saved weights
    assert pre == SFACE_PREPROCESS
    x = torch.from_numpy(batch)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), sface(x), rtol=0, atol=0)
    emb = load_model("s", {"s": dict(checkpoint=path, recipe="x", threshold_cos=0.363)}, device="cpu")
    reference = SFaceNet()(batch)
    assert cosines(emb(faces), reference).min() >= 0.999


def test_sizes_and_random_init():
    with pytest.raises(ValueError, match="embedding_size=128 \\(asked: 512\\)"):
        build_embedder("sface_mobilefacenet", 512, pretrained="sface")
    with pytest.raises(ValueError, match="embedding_size=128 \\(asked: none"):
        build_embedder("sface_mobilefacenet", None, pretrained="sface")
    with pytest.raises(ValueError, match="valid: sface"):
        build_embedder("sface_mobilefacenet", 128, pretrained="imagenet")
    torch.manual_seed(0)
    random = build_embedder("sface_mobilefacenet", 64)
    assert random.embedding_size == 64 and random.trunk.feature_dim == 1024 * 7 * 7
    assert random(torch.rand(2, 3, 112, 112) * 255).shape == (2, 64)
    pretrained_keys = set(build_embedder("sface_mobilefacenet", 128, pretrained="sface").state_dict())
    assert pretrained_keys == set(build_embedder("sface_mobilefacenet", 128).state_dict())


def test_cache_keyed_by_the_onnx_file(onnx_path, tmp_path, monkeypatch):
    copy_path = tmp_path / onnx_path.name
    shutil.copyfile(onnx_path, copy_path)
    state = sface_torch.sface_state_dict(copy_path)
    (cache,) = tmp_path.glob("sface_torch-v*-*.pt")
    assert cache == sface_torch.cache_path(copy_path) and cache.name.endswith(f"-{sface_torch._sha256(copy_path)[:16]}.pt")

    def no_conversion(path):
        raise AssertionError("converted again although the cache holds this file")

    monkeypatch.setattr(sface_torch, "convert_sface_onnx", no_conversion)
    again = sface_torch.sface_state_dict(copy_path)
    assert all(torch.equal(again["trunk"][k], v) for k, v in state["trunk"].items())
    monkeypatch.undo()
    cache.write_bytes(b"damaged")
    assert torch.equal(sface_torch.sface_state_dict(copy_path)["neck"]["2.weight"], state["neck"]["2.weight"])
    assert torch.load(cache, weights_only=True)["onnx_sha256"] == sface_torch._sha256(copy_path)


def test_a_different_graph_is_refused(onnx_path, tmp_path):
    from onnx import helper

    model = onnx.load(str(onnx_path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and n.output[0].startswith("conv_3_dw"))
    for a in conv.attribute:
        if a.name == "strides":
            a.CopyFrom(helper.make_attribute("strides", [1, 1]))
    onnx.save(model, str(tmp_path / "other.onnx"))
    with pytest.raises(sface_torch.SFaceConversionError, match="conv_3_dw: Conv"):
        sface_torch.convert_sface_onnx(tmp_path / "other.onnx")


def test_converted_sface_by_name_equals_the_reference(faces):
    # config.MODELS["sface-torch"]: the converted weights as published, through load_model's inference path
    import config
    from models_definition.zoo import load_model

    ours = load_model("sface-torch", config.MODELS, device="cpu")
    ref = load_model("sface", config.MODELS, device="cpu")
    assert ours.spec["pretrained_backbone"] == "sface_mobilefacenet" and ours.embedding_size == 128
    assert cosines(ours(faces), ref(faces)).min() >= 0.999


def test_resampled_output_block_for_a_smaller_input(sface):
    """SFace's neck for a smaller final map: the 7 x 7 grid itself is unchanged, BatchNorm statistics stay
    per channel, and at 4 x 4 (the 64 px map, cells that split old cells) and 1 x 1 a map constant over
    positions gives exactly the 7 x 7 output."""
    neck = {k: v for k, v in sface.neck.state_dict().items()}
    assert all(torch.equal(neck[k], v) for k, v in sface_torch.resample_neck(neck, 7).items())
    small = sface_torch.resample_neck(neck, 4)
    assert small["2.weight"].shape == (128, 1024 * 16) and small["0.running_mean"].shape == (1024 * 16,)
    per_channel = neck["0.running_var"].view(1024, 49)
    assert torch.equal(per_channel, per_channel[:, :1].expand(-1, 49))  # the conversion made them per channel
    assert torch.equal(small["0.running_var"].view(1024, 16), per_channel[:, :1].expand(-1, 16))
    v = torch.randn(2, 1024, dtype=torch.float64)
    full = v.repeat_interleave(49, dim=1) @ neck["2.weight"].double().T  # flattened channel * 49 + position
    for grid in (4, 1):
        w = sface_torch.resample_neck(neck, grid)["2.weight"].double()
        torch.testing.assert_close(v.repeat_interleave(grid * grid, dim=1) @ w.T, full, rtol=1e-4, atol=1e-3)
    # by hand: new 4 x 4 cells have edges 0, 1.75, 3.5, ...; old cell 1 ([1, 2)) goes 0.75 to new cell 0 and
    # 0.25 to new cell 1, old cell 2 ([2, 3)) wholly to new cell 1. Weights 1 at old (1, 1) and (1, 2):
    # (1, 1) -> 0.5625, 0.1875 / 0.1875, 0.0625; (1, 2) -> 0.75 at (0, 1) and 0.25 at (1, 1).
    w7 = torch.zeros(1, 1024, 7, 7, dtype=torch.float64)
    w7[0, 0, 1, 1], w7[0, 0, 1, 2] = 1.0, 1.0
    small = sface_torch.resample_neck({"2.weight": w7.reshape(1, -1)}, 4)["2.weight"].view(1, 1024, 4, 4)[0, 0]
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[0, 0], expected[0, 1], expected[1, 0], expected[1, 1] = 0.5625, 0.9375, 0.1875, 0.3125
    torch.testing.assert_close(small, expected)


def test_sface_start_at_64_px_builds_and_embeds(faces):
    """pretrained='sface' at 64 px: SFace's convolutions with the resampled output block give a 128-D embedder
    (the start of the 64 px student); sizes the grid cannot take are refused."""
    from facedata.preprocess import get_preset

    model = build_embedder("sface_mobilefacenet", 128, pretrained="sface", input_px=64).eval()
    with torch.no_grad():
        e = model.embed(get_preset("sface64").batch(faces)).numpy()
    assert e.shape == (len(faces), 128) and np.isfinite(e).all()
    with pytest.raises(ValueError, match="divisible by 16 and at most 112 px"):
        build_embedder("sface_mobilefacenet", 128, pretrained="sface", input_px=72)
