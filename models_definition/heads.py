"""Heads and losses: one call ``loss = head(embeddings, labels)``; heads are thrown away after training.

Margin heads (ArcFace, sub-centre ArcFace, CosFace) and softmax own class weights (give their
parameters to the optimizer); triplet and contrastive heads have none.
"""
from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from facedata.errors import FaceKitError


class SoftmaxHead(nn.Module):
    """Linear classifier + cross-entropy (the seed's CE models)."""

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(embedding_size, num_classes)

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.fc(emb)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(emb), labels)


class MarginHead(nn.Module):
    """Cosine classifier on normalised embeddings and class centres, with ``sub_centers`` centres per
    class (max-pooled, sub-centre ArcFace). Subclasses set the margin on the target logit."""

    def __init__(self, embedding_size: int, num_classes: int, scale: float = 64.0, sub_centers: int = 1) -> None:
        super().__init__()
        if sub_centers < 1:
            raise ValueError(f"sub_centers must be >= 1, got {sub_centers}")
        self.scale, self.k, self.num_classes = scale, sub_centers, num_classes
        self.weight = nn.Parameter(torch.empty(num_classes * sub_centers, embedding_size))
        nn.init.normal_(self.weight, std=0.01)

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """(N, C) cosine between each embedding and its class (the nearest sub-centre)."""
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1))
        if self.k > 1:
            cos = cos.view(-1, self.num_classes, self.k).amax(dim=2)
        return cos.clamp(-1.0, 1.0)

    def target_logit(self, cos_target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled logits; with ``labels`` the margin is applied to each row's target class."""
        cos = self.cosine(emb)
        if labels is not None:
            idx = labels.view(-1, 1)
            cos = cos.scatter(1, idx, self.target_logit(cos.gather(1, idx)))
        return self.scale * cos

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(emb.float(), labels), labels)


class ArcFaceHead(MarginHead):
    """ArcFace: target logit s*cos(theta + m). Where theta + m would pass pi, cos(theta + m) stops being
    monotonic in theta; there the target becomes cos(theta) - m*sin(m) (insightface's fallback)."""

    def __init__(self, embedding_size: int, num_classes: int, scale: float = 64.0, margin_rad: float = 0.5,
                 sub_centers: int = 1) -> None:
        super().__init__(embedding_size, num_classes, scale, sub_centers)
        self.margin_rad = margin_rad
        self.cos_m, self.sin_m = math.cos(margin_rad), math.sin(margin_rad)
        self.threshold = math.cos(math.pi - margin_rad)
        self.fallback = math.sin(math.pi - margin_rad) * margin_rad

    def target_logit(self, cos_t: torch.Tensor) -> torch.Tensor:
        sin_t = torch.sqrt((1.0 - cos_t * cos_t).clamp(min=0.0))  # clamp: no NaN gradient at |cos| = 1
        phi = cos_t * self.cos_m - sin_t * self.sin_m
        return torch.where(cos_t > self.threshold, phi, cos_t - self.fallback)


class CosFaceHead(MarginHead):
    """CosFace: target logit s*(cos(theta) - m)."""

    def __init__(self, embedding_size: int, num_classes: int, scale: float = 64.0, margin: float = 0.35,
                 sub_centers: int = 1) -> None:
        super().__init__(embedding_size, num_classes, scale, sub_centers)
        self.margin = margin

    def target_logit(self, cos_t: torch.Tensor) -> torch.Tensor:
        return cos_t - self.margin


def pairwise_distance(emb: torch.Tensor, metric: str) -> torch.Tensor:
    """(N, N) distances: 'cosine' = 1 - cos on normalised vectors; 'euclidean' on the vectors as given."""
    if metric == "cosine":
        e = F.normalize(emb, dim=1)
        return 1.0 - e @ e.T
    if metric == "euclidean":
        sq = (emb * emb).sum(1)
        d2 = (sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T).clamp(min=0.0)
        return torch.sqrt(d2 + 1e-12) * (1.0 - torch.eye(len(emb), device=emb.device, dtype=emb.dtype))
    raise ValueError(f"unknown distance {metric!r}; valid: cosine, euclidean")


class TripletHead(nn.Module):
    """Triplet loss max(0, d(a, p) - d(a, n) + margin) mined inside a P x K batch.

    ``batch_hard``: for each anchor its farthest positive and nearest negative. ``semi_hard``: every
    positive pair with the nearest negative farther than the positive (d(a,n) > d(a,p)), or, when none
    is, the farthest negative (FaceNet's rule as TensorFlow Addons implements it). Anchors with no positive or no negative are
    skipped; a batch with none usable raises (the sampler must give >= 2 identities x >= 2 images).
    """

    def __init__(self, margin: float = 0.2, mining: str = "batch_hard", distance: str = "cosine") -> None:
        super().__init__()
        if mining not in ("batch_hard", "semi_hard"):
            raise ValueError(f"unknown mining {mining!r}; valid: batch_hard, semi_hard")
        pairwise_distance(torch.zeros(1, 1), distance)  # validates the name
        self.margin, self.mining, self.distance = margin, mining, distance

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = pairwise_distance(emb.float(), self.distance)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        pos, neg = same & ~eye, ~same
        usable = pos.any(1) & neg.any(1)
        if not usable.any():
            raise ValueError("triplet batch has no anchor with both a positive and a negative: "
                             "sample >= 2 identities with >= 2 images each (P x K sampler)")
        inf = torch.finfo(d.dtype).max
        if self.mining == "batch_hard":
            hardest_pos = torch.where(pos, d, torch.zeros_like(d)).amax(1)
            hardest_neg = torch.where(neg, d, torch.full_like(d, inf)).amin(1)
            return F.relu(hardest_pos - hardest_neg + self.margin)[usable].mean()
        # semi-hard: one triplet per (anchor, positive) pair
        a_idx, p_idx = torch.nonzero(pos & usable[:, None], as_tuple=True)
        d_ap = d[a_idx, p_idx]
        d_an = d[a_idx]  # (T, N)
        negs = neg[a_idx]
        semi = negs & (d_an > d_ap[:, None])
        nearest_semi = torch.where(semi, d_an, torch.full_like(d_an, inf)).amin(1)
        farthest_neg = torch.where(negs, d_an, torch.full_like(d_an, -inf)).amax(1)
        chosen = torch.where(semi.any(1), nearest_semi, farthest_neg)
        return F.relu(d_ap - chosen + self.margin).mean()


class ContrastiveHead(nn.Module):
    """Siamese contrastive loss y*d^2 + (1-y)*max(0, m - d)^2 (Hadsell et al. 2006), y = 1 for the same
    person, d the Euclidean distance.

    ``pairs="consecutive"``: the batch holds pairs back to back, rows (0, 1), (2, 3), ... (a pair sampler),
    and the loss is their mean. ``pairs="all"``: every pair i < j of a P x K batch, the same-person and the
    different-person terms each averaged, then halved (so neither kind outweighs the other by its count).

    ``normalize=True`` (default) measures d between L2-normalised embeddings (0 to 2), the space the
    embeddings are compared in at test time, so the margin means the same whatever the embedding size;
    ``normalize=False`` is the seed's raw-vector version (its 1024-D outputs have d far above m = 1).
    ``average="nonzero"`` averages only the terms that are not zero (see ``_mean``)."""

    def __init__(self, margin: float = 1.0, normalize: bool = True, pairs: str = "consecutive",
                 average: str = "all") -> None:
        super().__init__()
        if pairs not in ("consecutive", "all"):
            raise ValueError(f"unknown pairs {pairs!r}; valid: consecutive, all")
        if average not in ("all", "nonzero"):
            raise ValueError(f"unknown average {average!r}; valid: all, nonzero")
        self.margin, self.normalize, self.pairs, self.average = margin, normalize, pairs, average

    def _mean(self, terms: torch.Tensor) -> torch.Tensor:
        """Mean of the loss terms; ``average="nonzero"`` over the active ones only (pytorch-metric-learning's
        AvgNonZeroReducer), so the many negatives already beyond the margin do not dilute the few that are not."""
        if self.average == "nonzero":
            active = terms > 0
            return terms[active].mean() if active.any() else terms.sum() * 0.0
        return terms.mean()

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(emb.float(), dim=1) if self.normalize else emb.float()
        if self.pairs == "all":
            d = pairwise_distance(emb, "euclidean")
            same = labels[:, None] == labels[None, :]
            upper = torch.triu(torch.ones_like(same), diagonal=1)
            pos, neg = same & upper, ~same & upper
            if not pos.any() or not neg.any():
                raise ValueError("contrastive pairs='all' needs same- and different-person rows in a batch (P x K sampler)")
            return 0.5 * (self._mean(d[pos].pow(2)) + self._mean(F.relu(self.margin - d[neg]).pow(2)))
        if len(emb) % 2:
            raise ValueError(f"contrastive batches hold pairs back to back; got an odd batch of {len(emb)}")
        a, b = emb[0::2], emb[1::2]
        y = (labels[0::2] == labels[1::2]).float()
        d = torch.sqrt(((a - b) ** 2).sum(1) + 1e-12)
        return self._mean(y * d.pow(2) + (1 - y) * F.relu(self.margin - d).pow(2))


class DistillHead(nn.Module):
    """Knowledge distillation: the student regresses a teacher's embeddings of the same images,
    loss = mean_i (1 - cos(s_i, t_i)) + label_weight * ArcFace(s, class). The teacher's unit vectors sit in a
    table filled once by :meth:`set_targets` (the training engine embeds every training image with the
    teacher, cached); the ``labels`` this head is called with are row indices into that table, so the one
    call ``loss = head(emb, labels)`` stays. ``label_weight`` 0: no labels needed at all. A row whose class
    is -1 (an unlabelled face) trains only the teacher term: the label term is the mean over labelled rows."""

    takes_index = True  # the engine feeds image indices, not class labels

    def __init__(self, embedding_size: int, num_classes: int, label_weight: float = 0.0, scale: float = 32.0,
                 margin_rad: float = 0.3) -> None:
        super().__init__()
        if label_weight < 0:
            raise ValueError(f"label_weight must be >= 0, got {label_weight}")
        self.embedding_size, self.label_weight = embedding_size, float(label_weight)
        # not in state_dict: rebuilt (from the cache) on resume, and a CASIA-size table would bloat last.pt
        self.register_buffer("teacher", torch.zeros(0, embedding_size), persistent=False)
        self.register_buffer("classes", torch.zeros(0, dtype=torch.long), persistent=False)
        self.label_head = ArcFaceHead(embedding_size, num_classes, scale, margin_rad) if label_weight > 0 else None

    def set_targets(self, teacher: torch.Tensor, classes: torch.Tensor | None = None) -> None:
        """Row i of ``teacher`` is the teacher's embedding of training image i (``classes[i]`` its label)."""
        if teacher.ndim != 2 or teacher.shape[1] != self.embedding_size:
            raise ValueError(f"the teacher gives {tuple(teacher.shape[1:])}-D embeddings but the student's "
                             f"embedding_size is {self.embedding_size}: set embedding_size={teacher.shape[-1]} "
                             "(distillation regresses the teacher's vector as it is, no projection)")
        if self.label_head is not None and (classes is None or len(classes) != len(teacher)):
            raise ValueError("label_weight > 0 needs one class label per teacher row")
        dev = self.teacher.device
        self.teacher = F.normalize(teacher.float(), dim=1).to(dev)
        self.classes = (classes if classes is not None else torch.zeros(0)).long().to(dev)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if len(self.teacher) == 0:
            raise RuntimeError("DistillHead has no teacher embeddings: call set_targets first")
        loss = (1 - F.cosine_similarity(emb.float(), self.teacher[labels], dim=1)).mean()
        if self.label_head is not None:
            classes = self.classes[labels]
            known = classes >= 0
            if bool(known.any()):
                loss = loss + self.label_weight * self.label_head(emb[known], classes[known])
            else:  # no labelled face in this batch: a zero that still reaches every head weight (DDP wants that)
                loss = loss + 0.0 * sum(p.sum() for p in self.label_head.parameters())
        return loss


HEADS: dict[str, type[nn.Module]] = {
    "softmax": SoftmaxHead,
    "arcface": ArcFaceHead,
    "cosface": CosFaceHead,
    "triplet": TripletHead,
    "contrastive": ContrastiveHead,
    "distill": DistillHead,
}
CLASSIFIER_HEADS = {"softmax", "arcface", "cosface", "distill"}  # take (embedding_size, num_classes)


def check_head_options(name: str, options: dict) -> None:
    """Refuse options a head does not take, or of another type than its default, naming the valid ones
    (a mistyped key would otherwise surface as a TypeError from the constructor). Unknown heads pass: the
    head name itself is checked by :func:`build_head`."""
    if name not in HEADS:
        return
    params = {k: p.default for k, p in inspect.signature(HEADS[name].__init__).parameters.items()
              if k not in ("self", "embedding_size", "num_classes")}
    for key, value in options.items():
        if key not in params:
            raise ValueError(f"unknown option {key!r} for head {name!r}; valid: {', '.join(params) or 'none'}")
        default = params[key]
        number = isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)
        if default is not None and not number and type(value) is not type(default):
            raise ValueError(f"option {key!r} of head {name!r} must be a {type(default).__name__} like its "
                             f"default {default!r}, got {value!r}")


class UnknownHeadError(FaceKitError, KeyError):
    """A head name that is not in HEADS; the message lists the valid ones."""


def build_head(name: str, embedding_size: int, num_classes: int, **kwargs) -> nn.Module:
    """A head by name; classifier heads get the sizes, metric heads only their keyword options."""
    try:
        cls = HEADS[name]
    except KeyError:
        raise UnknownHeadError(f"unknown head {name!r}; valid: {', '.join(sorted(HEADS))}") from None
    check_head_options(name, kwargs)
    if name in CLASSIFIER_HEADS:
        return cls(embedding_size, num_classes, **kwargs)
    return cls(**kwargs)
