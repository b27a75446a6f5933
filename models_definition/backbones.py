"""Backbones: an aligned face batch -> a pooled feature vector, in a plain-dict registry.

Each entry builds a trunk that ends in a (N, C) feature vector. :func:`build_embedder` puts the neck
(BatchNorm - Dropout - Linear - BatchNorm, as insightface) on top to give an embedding of the asked
size; the ImageNet encoders of the seed comparison can also be used bare (``neck=False``) as fixed
feature extractors. The model yields only the embedding: heads and losses live in ``heads.py``.

Pretrained weights (torchvision ImageNet, efficientnet-pytorch ImageNet, facenet-pytorch
``vggface2`` / ``casia-webface``) are downloaded by those libraries when asked for; offline that fails
with :class:`PretrainedWeightsError` saying what could not be fetched.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .mobilefacenet import MobileFaceNet
from .sface_torch import ABOUT as SFACE_ABOUT, build_sface_trunk, finish_sface
from facedata.errors import FaceKitError


class PretrainedWeightsError(FaceKitError, RuntimeError):
    """Pretrained weights were asked for but could not be loaded (usually: no internet)."""


class BackboneError(FaceKitError, KeyError, ValueError):
    """An unknown backbone name, weights it does not have, or a size it cannot build; the message lists the
    valid values (a KeyError and a ValueError too, as the plain errors it replaces were)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class BackboneEntry:
    build: Callable[[str | None, int], tuple[nn.Module, int]]  # (pretrained, input_px) -> (trunk, feature dim)
    pretrained: tuple[str, ...]  # accepted values of `pretrained` besides None
    input_px: int  # the size it is usually trained at
    about: str
    # weights that live in the neck too (a whole pretrained face network): loaded into the built Embedder
    finish: Callable[[nn.Module, str | None], None] | None = None


class _Pooled(nn.Module):
    """features(x) -> global average pool -> (N, C)."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)


class _EfficientNetTrunk(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.net.extract_features(x), 1), 1)


class _InceptionResnetTrunk(nn.Module):
    """facenet-pytorch's InceptionResnetV1 up to its average pool (1792-D); its own 512-D head is dropped
    so that every backbone gets the same neck."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        for layer in (n.conv2d_1a, n.conv2d_2a, n.conv2d_2b, n.maxpool_3a, n.conv2d_3b, n.conv2d_4a, n.conv2d_4b,
                      n.repeat_1, n.mixed_6a, n.repeat_2, n.mixed_7a, n.repeat_3, n.block8, n.avgpool_1a):
            x = layer(x)
        return torch.flatten(x, 1)


# torch reports a damaged weight file as a RuntimeError: the hub's hash check, or its archive reader on a
# truncated download. Any other RuntimeError is a bug and keeps its traceback.
DAMAGED_FILE_MARKS = ("invalid hash value", "PytorchStreamReader")


def _download_guard(what: str, fn: Callable[[], nn.Module]) -> nn.Module:
    """``fn()``; a download that failed (no network: URLError, an OSError) or a damaged weight file becomes a
    :class:`PretrainedWeightsError` saying what to do."""
    try:
        return fn()
    except (OSError, EOFError, pickle.UnpicklingError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not any(mark in str(exc) for mark in DAMAGED_FILE_MARKS):
            raise
        raise PretrainedWeightsError(
            f"could not load pretrained weights for {what}: {type(exc).__name__}: {exc}. "
            f"They are downloaded on first use into {torch.hub.get_dir()}; without internet use "
            "pretrained=None (random init) or copy the weight file there (a damaged file there: delete it and "
            "run again)."
        ) from None


def _efficientnet(variant: int) -> Callable[[str | None, int], tuple[nn.Module, int]]:
    def build(pretrained: str | None, input_px: int) -> tuple[nn.Module, int]:
        from efficientnet_pytorch import EfficientNet

        name = f"efficientnet-b{variant}"
        if pretrained == "imagenet":
            net = _download_guard(name + " (ImageNet)", lambda: EfficientNet.from_pretrained(name))
        else:
            net = EfficientNet.from_name(name)
        net.set_swish(memory_efficient=False)  # the default custom-autograd swish is slow at inference
        dim = net._fc.in_features
        net._fc = nn.Identity()  # its ImageNet classifier is unused: no dead parameters in the optimizer
        return _EfficientNetTrunk(net), dim

    return build


def _inception_resnet_v1(pretrained: str | None, input_px: int) -> tuple[nn.Module, int]:
    from facenet_pytorch import InceptionResnetV1

    net = _download_guard(f"InceptionResnetV1 ({pretrained})", lambda: InceptionResnetV1(pretrained=pretrained)) \
        if pretrained else InceptionResnetV1()
    for unused in ("last_linear", "last_bn", "logits"):  # its own head: replaced by the shared neck
        if hasattr(net, unused):
            setattr(net, unused, nn.Identity())
    return _InceptionResnetTrunk(net), 1792


def _torchvision(name: str, weights: str, trunk: Callable[[nn.Module], tuple[nn.Module, int]],
                 kwargs: dict | None = None, random_init_kwargs: dict | None = None):
    """``kwargs`` go to the constructor always; ``random_init_kwargs`` only without pretrained weights."""

    def build(pretrained: str | None, input_px: int) -> tuple[nn.Module, int]:
        import torchvision

        ctor = getattr(torchvision.models, name)
        if pretrained == "imagenet":
            net = _download_guard(f"{name} (ImageNet)", lambda: ctor(weights=weights, **(kwargs or {})))
        else:
            net = ctor(weights=None, **(kwargs or {}), **(random_init_kwargs or {}))
        return trunk(net)

    return build


def _resnet_trunk(net: nn.Module) -> tuple[nn.Module, int]:
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def _googlenet_trunk(net: nn.Module) -> tuple[nn.Module, int]:
    net.fc = nn.Identity()
    net.dropout = nn.Identity()
    return net, 1024


def _densenet_trunk(net: nn.Module) -> tuple[nn.Module, int]:
    return _Pooled(nn.Sequential(net.features, nn.ReLU(inplace=False))), net.classifier.in_features


def _squeezenet_trunk(net: nn.Module) -> tuple[nn.Module, int]:
    return _Pooled(net.features), 512


def _vgg_trunk(net: nn.Module) -> tuple[nn.Module, int]:
    # "Without the last layer", as the seed comparison: features, 7x7 pool, classifier up to fc7 (4096-D).
    return nn.Sequential(net.features, net.avgpool, nn.Flatten(1), *list(net.classifier.children())[:-1]), 4096


def _narrow_resnet18(pretrained: str | None, input_px: int) -> tuple[nn.Module, int]:
    from .narrow_resnet import narrow_resnet18  # imports torchvision: only when asked for

    return narrow_resnet18(pretrained, input_px)


def _mobilefacenet(pretrained: str | None, input_px: int) -> tuple[nn.Module, int]:
    return MobileFaceNet(input_px=input_px), 512


BACKBONES: dict[str, BackboneEntry] = {
    **{f"efficientnet_b{i}": BackboneEntry(_efficientnet(i), ("imagenet",), 112, f"EfficientNet-B{i} (efficientnet-pytorch)")
       for i in range(4)},
    "inception_resnet_v1": BackboneEntry(_inception_resnet_v1, ("vggface2", "casia-webface"), 160,
                                         "InceptionResnetV1 (facenet-pytorch), 1792-D before its head"),
    "resnet18": BackboneEntry(_torchvision("resnet18", "IMAGENET1K_V1", _resnet_trunk), ("imagenet",), 112, "ResNet-18 (torchvision)"),
    "resnet18_half": BackboneEntry(_narrow_resnet18, (), 112, "ResNet-18 at half width (32-256 channels), 2.8M parameters: "
                                   "the fastest of these to train on a 2-core CPU (models_definition.narrow_resnet)"),
    "resnet50": BackboneEntry(_torchvision("resnet50", "IMAGENET1K_V2", _resnet_trunk), ("imagenet",), 112, "ResNet-50 (torchvision)"),
    "mobilefacenet": BackboneEntry(_mobilefacenet, (), 112, "MobileFaceNet (Chen et al. 2018), 1M parameters, CPU real time"),
    "sface_mobilefacenet": BackboneEntry(build_sface_trunk, ("sface",), 112, SFACE_ABOUT, finish_sface),
    # The seed comparison's ImageNet encoders, without their classifier.
    "densenet121": BackboneEntry(_torchvision("densenet121", "IMAGENET1K_V1", _densenet_trunk), ("imagenet",), 224, "DenseNet-121 features (torchvision)"),
    "googlenet": BackboneEntry(_torchvision("googlenet", "IMAGENET1K_V1", _googlenet_trunk, {"aux_logits": False}, {"init_weights": True}), ("imagenet",), 224, "GoogLeNet without fc (torchvision)"),
    "squeezenet1_0": BackboneEntry(_torchvision("squeezenet1_0", "IMAGENET1K_V1", _squeezenet_trunk), ("imagenet",), 224, "SqueezeNet 1.0 features (torchvision)"),
    "vgg16": BackboneEntry(_torchvision("vgg16", "IMAGENET1K_V1", _vgg_trunk), ("imagenet",), 224, "VGG-16 up to fc7 (torchvision)"),
}


def get_backbone(name: str) -> BackboneEntry:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneError(f"unknown backbone {name!r}; valid: {', '.join(sorted(BACKBONES))}") from None


class Embedder(nn.Module):
    """Trunk + neck. ``forward`` gives the raw embedding (what heads train on); ``embed`` the L2-normalised one."""

    def __init__(self, trunk: nn.Module, feature_dim: int, embedding_size: int | None, dropout: float = 0.0) -> None:
        super().__init__()
        self.trunk = trunk
        if embedding_size is None:
            self.neck = nn.Identity()
            self.embedding_size = feature_dim
        else:
            self.neck = nn.Sequential(
                nn.BatchNorm1d(feature_dim), nn.Dropout(dropout),
                nn.Linear(feature_dim, embedding_size, bias=False), nn.BatchNorm1d(embedding_size),
            )
            self.embedding_size = embedding_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.trunk(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward(x), dim=1)


def build_embedder(backbone: str, embedding_size: int | None = 512, pretrained: str | None = None,
                   input_px: int = 112, dropout: float = 0.0) -> Embedder:
    """Backbone by name + neck to ``embedding_size`` (None: the bare trunk, a fixed feature extractor)."""
    entry = get_backbone(backbone)
    if pretrained is not None and pretrained not in entry.pretrained:
        valid = ", ".join(entry.pretrained) or "none (random init only)"
        raise BackboneError(f"backbone {backbone!r} has no pretrained weights {pretrained!r}; valid: {valid}")
    if embedding_size is not None and not embedding_size > 0:
        raise BackboneError(f"embedding_size must be positive or None, got {embedding_size!r}")
    trunk, dim = entry.build(pretrained, input_px)
    model = Embedder(trunk, dim, embedding_size, dropout)
    if entry.finish is not None:
        entry.finish(model, pretrained)
    return model


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an ``nn.Sequential`` into the
    convolution (eval-mode inference only): one memory pass fewer per layer, same outputs."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fuse_conv_bn is for eval-mode inference; call model.eval() first")
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = nn.Identity()
    return model
