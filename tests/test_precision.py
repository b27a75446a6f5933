"""Training on this CPU at speed: bfloat16 autocast, crops kept in memory as uint8, uint8 batches normalised in
the main process. Each must train on the same numbers (or, for bfloat16, the same loss within a stated tolerance)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facedata.datasets import scan_face_folder
from facedata.preprocess import get_preset
from models_definition.precision import autocast_dtype, cpu_has_bf16
from training import TrainConfig, Trainer, TrainingError
from training.data import KeyedBatches, checked

from test_training import tiny

BF16_LOSS_RTOL = 0.02  # measured on these batches: 0.1-0.6% apart (bfloat16 keeps 8 bits of mantissa)
BF16_GRAD_COSINE = 0.9  # cosine of the bf16 and fp32 gradients of one batch: measured 0.948 here (rounding noise)


def _batches(t: Trainer, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` training batches of epoch 1, as the engine feeds them to the model."""
    loader = t._loader(t.train_folder, KeyedBatches(t.sampler, t.cfg.seed, 1), augment=True)
    out = []
    for x, y in checked(loader, "test"):
        out.append((t._to_device(x), y))
        if len(out) == n:
            break
    return out


def test_uint8_batches_normalise_to_exactly_the_float_preprocessing(small_aligned):
    folder = scan_face_folder(small_aligned)
    crops = [folder.read(i) for i in range(6)]
    for name in ("arcface112", "arcface64", "sface112"):  # same size, resized, BGR
        pre = get_preset(name)
        u8 = torch.from_numpy(np.stack([pre.to_uint8(c) for c in crops]))
        x = pre.normalize(u8)
        assert torch.equal(x, pre.batch(crops))  # bit for bit: the same float32 operations
        assert x.is_contiguous(memory_format=torch.channels_last)


def test_crops_in_memory_give_the_same_batches_as_files(small_aligned, tmp_path):
    mem = Trainer(tiny(small_aligned, in_memory_gb=1.0), tmp_path / "mem")
    disk = Trainer(tiny(small_aligned, in_memory_gb=0.0), tmp_path / "disk")
    assert mem.train_folder.crops is not None and disk.train_folder.crops is None
    assert mem.train_folder.crops.shape == (len(mem.train_folder), 112, 112, 3)
    for (xm, ym), (xd, yd) in zip(_batches(mem, 3), _batches(disk, 3)):
        assert torch.equal(xm, xd) and torch.equal(ym, yd)


def test_crops_over_the_memory_cap_stay_on_disk(small_aligned, tmp_path):
    t = Trainer(tiny(small_aligned, in_memory_gb=1e-6), tmp_path / "r")  # 1 kB: no 112 px crop set fits
    assert t.train_folder.crops is None


def test_a_crop_of_another_size_trains_from_disk_and_an_unreadable_one_is_named(small_aligned, tmp_path, capsys):
    import shutil

    import cv2

    data = tmp_path / "data"
    shutil.copytree(small_aligned, data)
    one = dict(open_set_query=0, open_set_distractor=0, val_fraction=0.0)
    victim = sorted(data.glob("pyfeat_man/*.jpg"))[0]
    cv2.imwrite(str(victim), np.zeros((64, 64, 3), np.uint8))
    t = Trainer(tiny(data, **one), tmp_path / "r")  # the files still train (resized per step), from disk
    assert t.train_folder.crops is None and victim.name in capsys.readouterr().err
    assert np.isfinite(_batches(t, 1)[0][0].numpy()).all()
    victim.write_bytes(b"not a jpeg")
    with pytest.raises(TrainingError, match=f"{victim.name}: cannot be read"):
        Trainer(tiny(data, **one), tmp_path / "r2")


def test_crops_in_memory_are_read_only(small_aligned, tmp_path):
    t = Trainer(tiny(small_aligned), tmp_path / "r")
    with pytest.raises(ValueError, match="read-only"):
        t.train_folder.read(0)[0, 0, 0] = 1  # an augmentation writing in place would change every later epoch


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bfloat16 units: autocast would stay float32")
def test_bf16_autocast_gives_the_fp32_loss_and_gradient_within_tolerance(small_aligned, tmp_path):
    """Same weights, same real batches: the loss with the CPU's bfloat16 autocast (the default) against float32,
    and the direction of the whole gradient (what a step follows)."""
    cfg = dict(backbone="resnet18_half", embedding_size=64, batch_size=16, pk_k=2)
    amp = Trainer(tiny(small_aligned, amp=True, **cfg), tmp_path / "amp")
    fp32 = Trainer(tiny(small_aligned, amp=False, **cfg), tmp_path / "fp32")
    assert autocast_dtype(amp.device, amp.amp) == torch.bfloat16 and autocast_dtype(fp32.device, fp32.amp) is None
    fp32.module.load_state_dict(amp.module.state_dict())
    for x, y in _batches(amp, 2):
        losses, grads = [], []
        for t in (amp, fp32):
            t.module.train()
            t.module.zero_grad()
            loss = t.module(x, y)
            loss.backward()
            losses.append(float(loss.detach()))
            grads.append(torch.cat([p.grad.flatten() for p in t.module.parameters() if p.grad is not None]))
        assert losses[0] == pytest.approx(losses[1], rel=BF16_LOSS_RTOL)
        assert losses[0] != losses[1]  # bfloat16 really ran: close, not equal
        cos = float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0))
        assert cos > BF16_GRAD_COSINE


def test_the_head_and_loss_run_in_float32_under_autocast(small_aligned, tmp_path):
    t = Trainer(tiny(small_aligned, amp=True), tmp_path / "r")
    seen = {}

    def look(mod, args) -> None:  # returns None: the arguments go on unchanged
        seen["dtype"] = args[0].dtype

    t.head.register_forward_pre_hook(look)
    x, y = _batches(t, 1)[0]
    assert t.module(x, y).dtype == torch.float32
    assert seen["dtype"] == torch.float32


def test_loader_workers_default_to_none_for_crops_in_memory_on_cpu(small_aligned, tmp_path):
    from training.data import loader_workers

    t = Trainer(tiny(small_aligned, workers=None), tmp_path / "r")
    assert loader_workers(t.cfg, t.train_folder, "cpu") == 0
    assert loader_workers(t.cfg, t.train_folder, "cuda") == 2
    assert loader_workers(t.cfg, scan_face_folder(Path(small_aligned)), "cpu") == 2  # files: workers decode them
    assert loader_workers(TrainConfig(workers=1), t.train_folder, "cpu") == 1  # a setting is kept


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bfloat16 units")
def test_a_run_resumes_only_in_the_precision_it_trained_in(small_aligned, tmp_path):
    out = tmp_path / "run"
    Trainer(tiny(small_aligned, amp=False, epochs=2), out).fit(max_epochs=1)
    with pytest.raises(TrainingError, match="trained its forward passes in float32; here they would run in bfloat16"):
        Trainer(tiny(small_aligned, amp=True, epochs=2), out, resume=True)
    assert Trainer(tiny(small_aligned, amp=False, epochs=2), out, resume=True).epoch == 1
