"""Heads and losses against hand-computed values; mining picks the hardest pairs of a crafted batch."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models_definition.heads import (
    ArcFaceHead, ContrastiveHead, CosFaceHead, SoftmaxHead, TripletHead, build_head, pairwise_distance,
)


def _unit_head(cls, **kw):
    head = cls(2, 2, **kw)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    return head


def test_arcface_logits_by_hand():
    head = _unit_head(ArcFaceHead, scale=64.0, margin_rad=0.5)
    a = math.radians(30)
    emb = torch.tensor([[math.cos(a), math.sin(a)]]) * 3.0  # length does not matter: it is normalised
    logits = head.logits(emb, torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(64 * math.cos(a + 0.5), abs=1e-4)  # 64 * 0.52061
    assert logits[0, 1].item() == pytest.approx(64 * 0.5, abs=1e-4)  # non-target: plain s * cos
    expected = -math.log(math.exp(64 * math.cos(a + 0.5)) / (math.exp(64 * math.cos(a + 0.5)) + math.exp(32)))
    assert head(emb, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-4)
    assert head.logits(emb)[0, 0].item() == pytest.approx(64 * math.cos(a), abs=1e-4)  # no labels: no margin


def test_arcface_is_safe_past_pi():
    head = _unit_head(ArcFaceHead, margin_rad=0.5)
    emb = torch.tensor([[-1.0, 0.01]])  # theta close to pi: theta + m > pi
    cos = F.normalize(emb, dim=1)[0, 0].item()
    got = head.logits(emb, torch.tensor([0]))[0, 0].item() / 64
    assert got == pytest.approx(cos - math.sin(math.pi - 0.5) * 0.5, abs=1e-5)  # cos - 0.2397
    exact = torch.tensor([[1.0, 0.0]], requires_grad=True)  # |cos| = 1 exactly: finite gradient
    head(exact, torch.tensor([0])).backward()
    assert torch.isfinite(exact.grad).all()


def test_sub_center_arcface_takes_nearest_centre():
    head = ArcFaceHead(2, 2, sub_centers=2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    cos = head.cosine(torch.tensor([[0.0, 2.0]]))
    assert cos.tolist() == [[1.0, 0.0]]


def test_cosface_by_hand():
    head = _unit_head(CosFaceHead, scale=30.0, margin=0.35)
    logits = head.logits(torch.tensor([[0.6, 0.8]]), torch.tensor([1]))
    assert logits[0].tolist() == pytest.approx([30 * 0.6, 30 * (0.8 - 0.35)], abs=1e-4)


def test_softmax_head():
    head = SoftmaxHead(2, 3)
    emb, labels = torch.randn(4, 2), torch.tensor([0, 1, 2, 0])
    assert head(emb, labels).item() == pytest.approx(F.cross_entropy(head.fc(emb), labels).item())


# Crafted batch (Euclidean): labels 0, 0, 1, 1 at x = 0, 1, 1.5, 3 on a line.
# Distances: d01=1, d02=1.5, d03=3, d12=0.5, d13=2, d23=1.5.
EMB = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.5, 0.0], [3.0, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_batch_hard_by_hand():
    # Anchors: a0 relu(1 - 1.5 + .2)=0, a1 relu(1 - .5 + .2)=.7, a2 relu(1.5 - .5 + .2)=1.2, a3 relu(1.5 - 2 + .2)=0.
    loss = TripletHead(margin=0.2, mining="batch_hard", distance="euclidean")(EMB, LABELS)
    assert loss.item() == pytest.approx((0.7 + 1.2) / 4, abs=1e-5)


def test_semi_hard_by_hand():
    # margin 0.6; (a, p): (0,1) nearest neg beyond 1 is 1.5 -> .1; (1,0) 2 -> 0; (2,3) none beyond 1.5,
    # farthest 1.5 -> .6; (3,2) nearest beyond 1.5 is 2 -> .1.
    loss = TripletHead(margin=0.6, mining="semi_hard", distance="euclidean")(EMB, LABELS)
    assert loss.item() == pytest.approx((0.1 + 0.0 + 0.6 + 0.1) / 4, abs=1e-5)


def test_mining_ignores_easy_negatives():
    head = TripletHead(margin=0.2, mining="batch_hard", distance="euclidean")
    far = EMB.clone()
    far[3, 0] = 30.0  # moves only the easy negative of a0 and a1 and the positive of a2
    # a2's hardest positive becomes 28.5: loss changes only through it.
    assert head(far, LABELS).item() == pytest.approx((0 + 0.7 + (28.5 - 0.5 + 0.2) + 0) / 4, abs=1e-4)


def test_triplet_needs_positives_and_negatives():
    with pytest.raises(ValueError, match=">= 2 identities with >= 2 images"):
        TripletHead()(torch.randn(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="valid: batch_hard, semi_hard"):
        TripletHead(mining="hardest")
    with pytest.raises(ValueError, match="valid: cosine, euclidean"):
        TripletHead(distance="manhattan")


def test_cosine_distance():
    d = pairwise_distance(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]), "cosine")
    assert torch.allclose(d, torch.tensor([[0.0, 1, 2], [1, 0, 1], [2, 1, 0]]), atol=1e-6)


def test_contrastive_by_hand():
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 0.5]])
    labels = torch.tensor([7, 7, 1, 2])  # pair 1 same (d=5 -> 25), pair 2 different (d=.5 -> (1-.5)^2)
    assert ContrastiveHead(margin=1.0, normalize=False)(emb, labels).item() == pytest.approx((25 + 0.25) / 2, abs=1e-4)
    unit = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [-3.0, 0.0]])  # normalised: d = sqrt(2), then d = 2
    labels = torch.tensor([7, 7, 1, 2])
    assert ContrastiveHead(margin=1.0)(unit, labels).item() == pytest.approx((2.0 + 0.0) / 2, abs=1e-4)
    assert ContrastiveHead(margin=2.5)(unit, labels).item() == pytest.approx((2.0 + 0.25) / 2, abs=1e-4)
    with pytest.raises(ValueError, match="odd batch"):
        ContrastiveHead()(emb[:3], labels[:3])


def test_build_head_registry():
    assert isinstance(build_head("arcface", 8, 5, margin_rad=0.3), ArcFaceHead)
    assert isinstance(build_head("triplet", 8, 5, mining="semi_hard"), TripletHead)
    with pytest.raises(KeyError, match="valid: arcface, contrastive, cosface, distill, softmax, triplet"):
        build_head("sphereface", 8, 5)


def test_contrastive_all_pairs_by_hand():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # normalised already
    labels = torch.tensor([0, 0, 1])
    # one same pair at d = 0; two different pairs at d = sqrt(2): margin 2 -> (2 - 1.414)^2 each
    expected = 0.5 * (0.0 + (2 - 2 ** 0.5) ** 2)
    assert ContrastiveHead(margin=2.0, pairs="all")(emb, labels).item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="needs same- and different-person rows"):
        ContrastiveHead(pairs="all")(emb[1:], labels[1:])


def test_contrastive_nonzero_average_by_hand():
    # Rows 0,1 one person, row 2 another, row 3 a third: same pair (0,1) at d = sqrt(2) -> 2;
    # different pairs: (0,2) d=0 -> 1, (1,2) d=sqrt(2) -> 0, (0,3) d=2 -> 0, (1,3) d=sqrt(2) -> 0, (2,3) d=2 -> 0.
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 2])
    all_avg = ContrastiveHead(margin=1.0, pairs="all")(emb, labels).item()
    nonzero = ContrastiveHead(margin=1.0, pairs="all", average="nonzero")(emb, labels).item()
    assert all_avg == pytest.approx(0.5 * (2.0 + 1.0 / 5), abs=1e-5)
    assert nonzero == pytest.approx(0.5 * (2.0 + 1.0), abs=1e-5)  # only the one active negative counts
    far = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])  # nothing active: loss 0, no NaN
    assert ContrastiveHead(margin=1.0, pairs="all", average="nonzero")(far, labels).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="valid: all, nonzero"):
        ContrastiveHead(average="max")


def test_distill_loss_by_hand():
    head = build_head("distill", 2, 1)
    head.set_targets(torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]))  # stored as unit vectors
    emb = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # row 0 vs teacher 0: cos 1 -> 0; row 1 vs teacher 1: cos 45 degrees -> 1 - 1/sqrt(2)
    loss = head(emb, torch.tensor([0, 1]))
    assert float(loss) == pytest.approx((0 + (1 - 1 / math.sqrt(2))) / 2, abs=1e-6)
    # indices pick the teacher rows: against teacher 2 (45 degrees) and teacher 2 (the same direction)
    assert float(head(emb, torch.tensor([2, 2]))) == pytest.approx((1 - 1 / math.sqrt(2)) / 2, abs=1e-6)


def test_distill_with_labels_adds_the_arcface_term():
    torch.manual_seed(0)
    head = build_head("distill", 4, 3, label_weight=0.5, scale=16.0, margin_rad=0.3)
    teacher, classes = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    head.set_targets(teacher, classes)
    emb, idx = torch.randn(3, 4), torch.tensor([4, 0, 2])
    distill = (1 - F.cosine_similarity(emb, F.normalize(teacher[idx]), dim=1)).mean()
    expected = distill + 0.5 * head.label_head(emb, classes[idx])
    assert float(head(emb, idx).detach()) == pytest.approx(float(expected.detach()), abs=1e-6)


def test_distill_label_term_skips_unlabelled_faces():
    torch.manual_seed(0)
    head = build_head("distill", 4, 3, label_weight=0.5, scale=16.0, margin_rad=0.3)
    teacher, classes = torch.randn(5, 4), torch.tensor([0, 1, -1, 2, -1])  # rows 2 and 4: extra faces, no label
    head.set_targets(teacher, classes)
    emb, idx = torch.randn(4, 4, requires_grad=True), torch.tensor([0, 2, 3, 4])
    distill = (1 - F.cosine_similarity(emb, F.normalize(teacher[idx]), dim=1)).mean()  # over all four
    labelled = torch.tensor([0, 2])  # batch rows whose faces have a class (images 0 and 3)
    expected = distill + 0.5 * head.label_head(emb[labelled], classes[idx[labelled]])
    assert float(head(emb, idx).detach()) == pytest.approx(float(expected.detach()), abs=1e-6)
    # a batch of unlabelled faces alone: the teacher term, and zero (not NaN) gradients on the class weights
    only = torch.tensor([2, 4])
    loss = head(emb[:2], only)
    assert float(loss) == pytest.approx(float((1 - F.cosine_similarity(emb[:2], F.normalize(teacher[only]), dim=1)).mean()),
                                        abs=1e-6)
    loss.backward()
    assert all(p.grad is not None and torch.all(p.grad == 0) for p in head.label_head.parameters())


def test_distill_refuses_a_teacher_of_another_size():
    head = build_head("distill", 128, 1)
    with pytest.raises(ValueError, match=r"the teacher gives \(512,\)-D embeddings but the student's embedding_size "
                                         r"is 128: set embedding_size=512"):
        head.set_targets(torch.zeros(3, 512))
    with pytest.raises(RuntimeError, match="call set_targets first"):
        build_head("distill", 4, 1)(torch.zeros(2, 4), torch.tensor([0, 1]))
