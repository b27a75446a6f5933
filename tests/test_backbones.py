"""Every backbone in the registry: forward, backward, embedding shape, unit norm; pretrained offline."""
from __future__ import annotations

import urllib.error

import pytest
import torch

from models_definition.backbones import BACKBONES, PretrainedWeightsError, build_embedder


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_smoke_every_backbone(name):
    torch.manual_seed(0)
    size = 128 if name == "mobilefacenet" else 512
    model = build_embedder(name, embedding_size=size)
    x = torch.randn(2, 3, 112, 112)
    model.train()
    emb = model(x)
    assert emb.shape == (2, size) and torch.isfinite(emb).all()
    emb.pow(2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        unit = model.embed(x)
    assert torch.allclose(unit.norm(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("name, dim", [("densenet121", 1024), ("googlenet", 1024), ("resnet50", 2048),
                                       ("squeezenet1_0", 512), ("vgg16", 4096)])
def test_imagenet_encoders_as_bare_feature_extractors(name, dim):
    model = build_embedder(name, embedding_size=None).eval()
    with torch.no_grad():
        assert model.embed(torch.randn(1, 3, 112, 112)).shape == (1, dim)


def test_registry_errors():
    with pytest.raises(KeyError, match="valid: densenet121, efficientnet_b0"):
        build_embedder("resnet1000")
    with pytest.raises(ValueError, match="valid: vggface2, casia-webface"):
        build_embedder("inception_resnet_v1", pretrained="imagenet")
    with pytest.raises(ValueError, match="none \\(random init only\\)"):
        build_embedder("mobilefacenet", pretrained="imagenet")


@pytest.mark.parametrize("name, pretrained", [("resnet18", "imagenet"), ("inception_resnet_v1", "vggface2")])
def test_pretrained_offline_says_what_failed(name, pretrained, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(PretrainedWeightsError, match="could not load pretrained weights for .*pretrained=None"):
        build_embedder(name, pretrained=pretrained)
