"""Checkpoints rebuild their model from their own spec; mismatches and bad files say what is wrong."""
from __future__ import annotations

import pickle
import re

import pytest
import torch

from facedata.preprocess import get_preset
from models_definition.backbones import build_embedder
from models_definition.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint


def _spec(**kw):
    return {"backbone": "mobilefacenet", "embedding_size": 128, "preprocess": get_preset("arcface112").to_dict(),
            "head": {"name": "arcface", "scale": 64.0, "margin_rad": 0.5}, "classes": ["a", "b"],
            "metrics": {"val_auc": 0.5}, **kw}


def test_roundtrip_gives_the_same_embeddings(tmp_path):
    torch.manual_seed(0)
    model = build_embedder("mobilefacenet", 128).eval()
    path = save_checkpoint(tmp_path / "best.pt", model, _spec(), epoch=3)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary left behind
    again, preprocess, spec = model_from_checkpoint(path)
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(model.embed(x), again.embed(x), atol=1e-6)
    assert preprocess == get_preset("arcface112") and spec["classes"] == ["a", "b"]
    assert load_checkpoint(path)["epoch"] == 3


def test_spec_mismatch_says_what_differs(tmp_path):
    model = build_embedder("mobilefacenet", 128)
    path = save_checkpoint(tmp_path / "x.pt", model, _spec(embedding_size=256))
    with pytest.raises(CheckpointError, match=r"shape mismatches \(neck.2.weight: checkpoint \(128, 512\) vs spec \(256, 512\)"):
        model_from_checkpoint(path)
    path = save_checkpoint(tmp_path / "y.pt", model, _spec(backbone="resnet18"))
    with pytest.raises(CheckpointError, match="do not match the spec \\(backbone 'resnet18'.*missing"):
        model_from_checkpoint(path)


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable checkpoint of this project: not a torch "
                                              "checkpoint archive"):
        load_checkpoint(tmp_path / "junk.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"spec": Evil(), "model": {}}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):  # weights_only refuses code
        load_checkpoint(tmp_path / "evil.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no 'spec' and 'model'"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="spec lacks \\['preprocess'\\]"):
        save_checkpoint(tmp_path / "z.pt", build_embedder("mobilefacenet", 128), {"backbone": "m", "embedding_size": 1})


@pytest.mark.parametrize("change, words", [
    ({"backbone": "nonexistent"}, "unknown backbone 'nonexistent'; valid:"),
    ({"backbone": 3}, "'backbone' is 3 (expected a backbone name)"),
    ({"embedding_size": "128"}, "'embedding_size' is '128' (expected a whole number)"),
    ({"embedding_size": -4}, "embedding_size must be positive"),
    ({"dropout": None}, "'dropout' is None (expected a number)"),
    ({"preprocess": {"size_px": 112.0}}, "'preprocess.size_px' is 112.0 (expected a whole number)"),
    ({"preprocess": {"size_px": 112, "mean": [0.5]}}, "'preprocess.mean' is [0.5] (expected 3 numbers)"),
    ({"preprocess": {"size_px": 112, "colour": "RGB"}}, "'preprocess' has unknown keys ['colour']"),
    ({"preprocess": {"size_px": 112, "color_order": "XYZ"}}, "color_order must be 'RGB' or 'BGR'"),
])
def test_a_spec_of_the_wrong_shape_is_a_checkpoint_error(tmp_path, change, words):
    path = save_checkpoint(tmp_path / "x.pt", build_embedder("mobilefacenet", 128), _spec(**change))
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: its spec") + ".*" + re.escape(words)):
        model_from_checkpoint(path)


def test_a_bug_in_a_builder_is_not_blamed_on_the_checkpoint(tmp_path, monkeypatch):
    import models_definition.checkpoint as checkpoint

    path = save_checkpoint(tmp_path / "x.pt", build_embedder("mobilefacenet", 128), _spec())

    def buggy(*args, **kwargs):
        raise TypeError("a bug in the builder")

    monkeypatch.setattr(checkpoint, "build_embedder", buggy)
    with pytest.raises(TypeError, match="a bug in the builder"):
        model_from_checkpoint(path)
