"""A model shipped in the repository: a run trained on real faces (a composed-style folder: FIW and CelebA identity
prefixes), shipped with `python -m models_definition.ship`'s main, loads by name with its spec and threshold, embeds
as the float32 checkpoint does within float16's rounding, carries a model card, and is refused by name, before
torch reads it, once its bytes are not the shipped ones."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import config
from facedata.errors import UsageError
from facedata.io import image_files, load_image
from models_definition.checkpoint import load_checkpoint, model_from_checkpoint
from models_definition.ship import main as ship
from models_definition.shipped import ShippedModelError, half_weights
from models_definition.zoo import load_model
from training import TrainConfig, Trainer

NAME = "tiny-r18half"
RECIPE = "composed-arcface"  # named by --recipe: the run folder is not called after a recipe here
# What float16 storage may change in a unit-length embedding: float16 keeps 11 significant bits (a weight moves by
# at most 2**-11 = 4.9e-4 of itself). Measured on this test's 33 real crops (32-D): max |component diff| 1.02e-3,
# min cosine(fp32, fp16) 0.9999976. The bounds leave 4x and 40x headroom for other CPUs' kernels:
MAX_COMPONENT_DIFF = 4e-3
MIN_COSINE = 0.9999
# a benchmark results.json (the shape python -m id_rate.benchmark writes), figures chosen to check by hand
LFW = {"accuracy_mean": 0.9951666666666666, "accuracy_std": 0.004112987559751028, "tar_at_far_1e3": 0.991,
       "achieved_far_1e3": 0.001, "auc": 0.9992}
CELEBA = {"auc": 0.61234, "points": [{"target_fpr": 0.001, "tpr": 0.0071, "fpr": 0.00082}],
          "bootstrap95_over_identities": {"auc": [0.592, 0.634]}}
RESULTS = {"meta": {"date": "2026-01-02", "sets": {"lfw": "LFW View 2", "celeba": "CelebA held-out people"},
                    "bootstrap": 200, "flip_tta": False},
           "models": {RECIPE: {"lfw": LFW, "celeba": CELEBA}, "sface": {"lfw": dict(LFW, accuracy_mean=0.99)},
                      "random-init": {"lfw": dict(LFW, accuracy_mean=0.6283)}, "dlib": {"lfw": LFW},
                      "sface-torch": {"lfw": LFW}}}


@pytest.fixture(scope="module")
def shipped(small_aligned, tmp_path_factory) -> SimpleNamespace:
    """A tiny ResNet-18-half run on the real sample crops, identities renamed as a composed set names them, shipped."""
    root = tmp_path_factory.mktemp("ship")
    data = root / "composed"
    folders = sorted(d for d in small_aligned.iterdir() if d.is_dir())
    for i, folder in enumerate(folders):  # half FIW families, half CelebA numbers
        name = f"fiw__F{i:04d}__MID1" if i % 2 else f"celeba__id{i:05d}"
        shutil.copytree(folder, data / name)
    cfg = TrainConfig(data=str(data), backbone="resnet18_half", embedding_size=32, head="arcface",
                      head_kwargs={"scale": 16.0, "margin_rad": 0.3}, sampler="pk", pk_k=2, batch_size=8,
                      batches_per_epoch=2, epochs=1, open_set_query=3, open_set_distractor=10, val_fraction=0.0,
                      workers=0, progress=False, seed=3)
    Trainer(cfg, root / "run").fit()
    # 3 held-out people and 10 distractors give 262 negative pairs: enough for a threshold at FPR 1e-2 (not 1e-3)
    assert [r["fpr"] for r in load_checkpoint(root / "run" / "best.pt")["spec"]["metrics"]["thresholds"]] == [0.01] * 2
    (root / "results.json").write_text(json.dumps(RESULTS))
    out, stdout = root / "shipped", io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = ship([str(root / "run"), "--name", NAME, "--recipe", RECIPE, "--out", str(out),
                   "--results", str(root / "results.json")])
    assert rc == 0
    return SimpleNamespace(root=root, best=root / "run" / "best.pt", pt=out / f"{NAME}.pt", md=out / f"{NAME}.md",
                           stdout=stdout.getvalue(), crops=[load_image(p) for p in image_files(data, recursive=True)])


def entry(path: Path, digest: str) -> dict:
    """The registry entry config.shipped_model makes, pointed at ``path`` (the test's folder, not SHIPPED_DIR)."""
    return dict(config.shipped_model(NAME, digest, RECIPE, threshold_fpr=0.01), checkpoint=path)


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_shipped_file_loads_by_name_with_its_spec_preprocess_and_threshold(shipped):
    digest = digest_of(shipped.pt)
    assert f"SHA-256 {digest}" in shipped.stdout
    assert f'"{NAME}": shipped_model("{NAME}", "{digest}", recipe="{RECIPE}", threshold_fpr=0.01),' in shipped.stdout
    best = load_checkpoint(shipped.best)
    # the whole spec, the weights in float16 (BatchNorm's step counts stay integers), nothing else
    raw = torch.load(shipped.pt, weights_only=True)
    assert set(raw) == {"spec", "model"} and raw["spec"] == best["spec"]
    assert {v.dtype for v in raw["model"].values()} == {torch.float16, torch.int64}
    assert all(raw["model"][k].dtype == torch.int64 for k in raw["model"] if k.endswith("num_batches_tracked"))
    assert shipped.pt.stat().st_size < 0.55 * shipped.best.stat().st_size  # about half the float32 file

    emb = load_model(NAME, {NAME: entry(shipped.pt, digest)}, device="cpu")
    assert emb.spec == best["spec"] and emb.embedding_size == 32
    assert emb.preprocess.to_dict() == best["spec"]["preprocess"]
    record = next(r for r in best["spec"]["metrics"]["thresholds"] if r["fpr"] == 0.01 and not r["flip"])
    assert emb.threshold == record["cos"] and emb.threshold_fpr == 0.01
    assert emb.checkpoint == shipped.pt

    # float16 weights into the float32 model: load_state_dict casts them, exactly
    model, _, _ = model_from_checkpoint(shipped.pt)
    state = model.state_dict()
    floats = [k for k, v in raw["model"].items() if v.dtype == torch.float16]
    assert floats and all(state[k].dtype == torch.float32 for k in floats)
    assert all(torch.equal(state[k], raw["model"][k].float()) for k in floats)


def test_shipped_embeddings_equal_the_float32_checkpoints_within_float16_rounding(shipped):
    fp16 = load_model(NAME, {NAME: entry(shipped.pt, digest_of(shipped.pt))}, device="cpu")
    fp32 = load_model("run", {"run": dict(checkpoint=shipped.best)}, device="cpu")
    a, b = fp32(shipped.crops), fp16(shipped.crops)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(shipped.crops), 32)
    assert float(np.abs(a - b).max()) <= MAX_COMPONENT_DIFF
    assert float((a * b).sum(axis=1).min()) >= MIN_COSINE
    assert not np.array_equal(a, b)  # the weights did change: the comparison is not of one model with itself


def test_the_model_card_names_the_licences_digest_thresholds_and_benchmark_rows(shipped):
    card = shipped.md.read_text()
    digest, size = digest_of(shipped.pt), shipped.pt.stat().st_size
    assert f"SHA-256 `{digest}`" in card and f"{size:,} bytes" in card
    assert "FIW (Families In the Wild)" in card and "CelebA (CelebFaces Attributes)" in card
    assert "**Licence: for non-commercial research only.**" in card
    assert "| `fiw` | FIW (Families In the Wild) | for non-commercial research only |" in card
    assert f"python train.py --recipe {RECIPE}" in card and f"--name {NAME}" in card
    assert "| `resnet18_half`" in card or "`resnet18_half`, " in card
    record = next(r for r in load_checkpoint(shipped.best)["spec"]["metrics"]["thresholds"] if not r["flip"])
    assert f"| 0.01 | no | {record['cos']:.4f} |" in card
    # 0.99517 ± 0.00411 -> "99.52 ± 0.41"; the CelebA cell: AUC with its interval, TPR with the FPR it reached
    assert f"| `{RECIPE}` | LFW | 99.52 ± 0.41 | 0.991 (FAR 0.001) |" in card
    assert f"| `{RECIPE}` | CelebA | - | - | 0.612 (0.592-0.634) | 0.007 (FPR 0.00082) |" in card
    assert "| `sface` | LFW | 99.00 ± 0.41 |" in card and "| `random-init` | LFW | 62.83 ± 0.41 |" in card
    assert "`dlib`" not in card and "`sface-torch`" not in card  # only the model and the baselines


def test_half_weights_keeps_in_float32_only_what_float16_cannot_hold():
    state = {"w": torch.tensor([1.5, -0.1]), "big": torch.tensor([1.0, 70000.0]),  # float16's largest is 65504
             "n": torch.tensor(7)}
    out, kept = half_weights(state)
    assert kept == ["big"] and out["big"].dtype == torch.float32 and out["n"].dtype == torch.int64
    assert out["w"].dtype == torch.float16 and out["w"].tolist() == [1.5, -0.0999755859375]  # -0.1 rounded to 11 bits


def _flip_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


TAMPER = {
    "one byte flipped": _flip_byte,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "emptied": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("how", list(TAMPER))
def test_an_altered_file_is_refused_by_name_before_torch_reads_it(shipped, tmp_path, monkeypatch, how):
    digest = digest_of(shipped.pt)
    pt = tmp_path / f"{NAME}.pt"
    shutil.copyfile(shipped.pt, pt)
    TAMPER[how](pt)

    def never(*a, **k):
        raise AssertionError("torch.load ran on a file whose digest does not match")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ShippedModelError) as err:
        load_model(NAME, {NAME: entry(pt, digest)}, device="cpu")
    msg = str(err.value)
    assert str(pt) in msg and f"expected {digest}" in msg and f"found {digest_of(pt)}" in msg
    assert f"git checkout -- {pt}" in msg and "python -m models_definition.ship" in msg
    assert ("empty (0 bytes)" in msg) == (how == "emptied")


def test_a_replaced_or_missing_file_and_a_bad_digest_are_refused_by_name(shipped, tmp_path):
    digest = digest_of(shipped.pt)
    pt = tmp_path / f"{NAME}.pt"
    shutil.copyfile(shipped.best, pt)  # a valid checkpoint, but not the shipped one: refused all the same
    with pytest.raises(ShippedModelError, match=f"found {digest_of(shipped.best)}"):
        load_model(NAME, {NAME: entry(pt, digest)}, device="cpu")
    pt.unlink()
    with pytest.raises(ShippedModelError, match=rf"{re.escape(str(pt))} is missing; it is shipped in the repository"):
        load_model(NAME, {NAME: entry(pt, digest)}, device="cpu")
    with pytest.raises(ShippedModelError, match="not a SHA-256 digest"):
        load_model(NAME, {NAME: entry(shipped.pt, digest[:12])}, device="cpu")


def test_a_command_given_an_altered_shipped_model_says_error_and_exits_2(shipped, tmp_path, monkeypatch, capsys,
                                                                          sample_data):
    from recognition.verify import main as verify

    pt = tmp_path / f"{NAME}.pt"
    shutil.copyfile(shipped.pt, pt)
    _flip_byte(pt)
    monkeypatch.setitem(config.MODELS, NAME, entry(pt, digest_of(shipped.pt)))
    obama = sample_data / "raw" / "face_recognition"
    assert verify([str(obama / "obama.jpg"), str(obama / "obama2.jpg"), "--model", NAME]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m recognition.verify: error: model '{NAME}': {pt} is not the shipped file")


def test_bad_names_a_missing_run_and_an_existing_file_are_named_errors(shipped, tmp_path, capsys):
    run = str(shipped.root / "run")
    for bad in ("../escape", "a/b", "sub\\dir", ".hidden", "-x", "name.pt", ""):
        with pytest.raises(UsageError, match="a plain file name"):
            ship.__wrapped__([run, f"--name={bad}", "--recipe", RECIPE, "--out", str(tmp_path)])
    assert ship([run, "--name", "../escape", "--recipe", RECIPE, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("python -m models_definition.ship: error: --name '../escape'")
    with pytest.raises(UsageError, match="no such run folder or checkpoint"):
        ship.__wrapped__([str(tmp_path / "nope"), "--name", NAME, "--recipe", RECIPE, "--out", str(tmp_path)])
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(UsageError, match="without best.pt"):
        ship.__wrapped__([str(tmp_path / "empty-run"), "--name", NAME, "--recipe", RECIPE, "--out", str(tmp_path)])
    with pytest.raises(UsageError, match="'run' \\(the run folder name\\): not in config.TRAIN_RECIPES"):
        ship.__wrapped__([run, "--name", NAME, "--out", str(tmp_path)])
    with pytest.raises(UsageError, match="config.MODELS already has a model of that name"):
        ship.__wrapped__([run, "--name", "sface", "--recipe", RECIPE, "--out", str(tmp_path)])
    results = str(shipped.root / "results.json")
    with pytest.raises(UsageError, match="no model named other or composed-ce in them .*--results-model"):
        ship.__wrapped__([run, "--name", "other", "--recipe", "composed-ce", "--out", str(tmp_path), "--results",
                          results])
    (tmp_path / "idrate.json").write_text(json.dumps({"meta": {"protocol": "lfw"}, "models": {}}))
    with pytest.raises(UsageError, match="not a results.json of `python -m id_rate.benchmark`"):
        ship.__wrapped__([run, "--name", "other", "--recipe", RECIPE, "--out", str(tmp_path),
                          "--results", str(tmp_path / "idrate.json")])
    assert not list(tmp_path.glob("other.*"))  # refused before anything was written
    # the shipped file is never replaced unless asked
    out = shipped.pt.parent
    before = shipped.pt.stat().st_mtime_ns
    assert ship([run, "--name", NAME, "--recipe", RECIPE, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and shipped.pt.stat().st_mtime_ns == before
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no temporary left behind


def test_the_default_model_is_shipped_and_loads_by_name_with_its_spec_and_threshold():
    """config.DEFAULT_MODEL (make demo, the real-time script): a file in the repository, checked by its SHA-256,
    that loads with its preprocessing and the threshold its training run measured."""
    import config
    from models_definition.fingerprint import file_sha256
    from models_definition.zoo import load_model

    entry = config.MODELS[config.DEFAULT_MODEL]
    path = Path(entry["checkpoint"])
    assert path.parent == config.SHIPPED_DIR and path.stat().st_size <= 10e6
    assert file_sha256(path) == entry["sha256"]
    assert (config.SHIPPED_DIR / f"{config.DEFAULT_MODEL}.md").is_file()  # its model card
    emb = load_model(config.DEFAULT_MODEL, config.MODELS, device="cpu")
    assert emb.threshold is not None and 0 < emb.threshold < 1 and emb.threshold_fpr == config.RECIPE_THRESHOLD_FPR
    assert emb.spec["preprocess"] == emb.preprocess.to_dict() and emb.spec["train_config"]["data"]
    assert entry["recipe"] in config.TRAIN_RECIPES  # how to make it again
