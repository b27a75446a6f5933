"""Models by name: trained checkpoints and the SFace reference, with their preprocessing and thresholds."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import config
from facedata.errors import FaceKitError
from facedata.io import load_image
from models_definition.backbones import build_embedder
from models_definition.checkpoint import save_checkpoint
from models_definition.reference import SFACE_PREPROCESS, sface_onnx
from models_definition.thresholds import ThresholdsFileError, entry_records, record
from models_definition.zoo import ModelNotFoundError, load_model
from facedata.preprocess import get_preset


def crops(folder: Path, n: int) -> list[np.ndarray]:
    return [load_image(p) for p in sorted(folder.glob("*.jpg"))[:n]]


def test_every_config_model_resolves():
    for name, entry in config.MODELS.items():
        assert sum(k in entry for k in ("checkpoint", "reference", "random_init", "pretrained_backbone")) == 1, name
        if "checkpoint" in entry:
            assert entry["recipe"] in config.TRAIN_RECIPES, name


def test_unknown_and_untrained_models():
    with pytest.raises(ModelNotFoundError, match="unknown model 'ce-efficient'; valid: arcface-efficientnet, "
                                                 "arcface-efficientnet-last-epoch, ce-efficientnet"):
        load_model("ce-efficient", config.MODELS)
    registry = {"ce-efficientnet": dict(checkpoint=Path("/nonexistent/best.pt"), recipe="ce-efficientnet")}
    with pytest.raises(ModelNotFoundError, match=r"checkpoint /nonexistent/best.pt not found\. Train it with "
                                                 r"`python train.py --recipe ce-efficientnet`"):
        load_model("ce-efficientnet", registry)


def test_checkpoint_model_batches_flips_and_threshold(small_aligned, tmp_path):
    torch.manual_seed(0)
    model = build_embedder("mobilefacenet", 64).eval()
    pre = get_preset("arcface112")
    spec = {"backbone": "mobilefacenet", "embedding_size": 64, "preprocess": pre.to_dict(),
            "metrics": {"threshold_cos@fpr=1e-3": 0.42}}
    save_checkpoint(tmp_path / "best.pt", model, spec)
    registry = {"m": dict(checkpoint=tmp_path / "best.pt", recipe="x", threshold_cos=None)}
    emb = load_model("m", registry, device="cpu", batch_size=4)
    faces = crops(small_aligned / "pyfeat_man", 6)
    batched = emb(faces)
    one_by_one = np.concatenate([emb([f]) for f in faces])
    assert len(faces) >= 3 and batched.shape == (len(faces), 64) and np.allclose(np.linalg.norm(batched, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)
    with torch.no_grad():  # the folded, NHWC inference model gives the trained model's embeddings
        plain = model.embed(pre.batch(faces)).numpy()
    np.testing.assert_allclose(batched, plain, atol=1e-4)
    assert emb.threshold == 0.42 and emb.threshold_fpr == 1e-3  # measured by the training run
    flip = load_model("m", registry, device="cpu", flip_tta=True)
    mirrored = [f[:, ::-1].copy() for f in faces]
    np.testing.assert_allclose(flip(faces), flip(mirrored), atol=1e-4)  # crop + mirror: order does not matter
    assert flip.threshold is None  # the run measured 0.42 without flip: never used for a flip-TTA embedder
    assert emb([]).shape == (0, 64)
    registry["m"]["threshold_cos"] = 0.3
    assert load_model("m", registry, device="cpu").threshold == 0.3  # the config entry wins


def test_sface_reference_on_real_faces(small_aligned):
    sface = load_model("sface", config.MODELS, device="cpu")
    assert sface.preprocess == SFACE_PREPROCESS and sface.threshold == 0.363
    man, woman = sface(crops(small_aligned / "pyfeat_man", 4)), sface(crops(small_aligned / "pyfeat_woman", 4))
    obama = sface(crops(small_aligned / "Barack_Obama", 3))
    same = [(man @ man.T)[np.triu_indices(4, 1)], (obama @ obama.T)[np.triu_indices(3, 1)]]
    assert min(s.min() for s in same) > sface.threshold  # the same person clears the published threshold
    assert (man @ woman.T).max() < sface.threshold and (man @ obama.T).max() < sface.threshold
    # Batched OpenCV DNN gives OpenCV's own FaceRecognizerSF features.
    rec = cv2.FaceRecognizerSF.create(str(sface_onnx()), "")
    face = crops(small_aligned / "Barack_Obama", 1)[0]
    ref = rec.feature(np.ascontiguousarray(face[:, :, ::-1])).ravel()
    np.testing.assert_allclose(sface([face])[0], ref / np.linalg.norm(ref), atol=1e-4)


def test_dlib_reference_on_real_faces(small_aligned):
    dl = load_model("dlib", config.MODELS, device="cpu")
    man, woman = dl(crops(small_aligned / "pyfeat_man", 4)), dl(crops(small_aligned / "pyfeat_woman", 4))
    obama = dl(crops(small_aligned / "Barack_Obama", 3))
    same = min((man @ man.T).min(), (obama @ obama.T).min(), (woman @ woman.T).min())
    different = max((man @ woman.T).max(), (man @ obama.T).max(), (woman @ obama.T).max())
    assert same > different  # every same-person pair above every different-person pair
    assert dl.threshold is None  # its published rule is an L2 distance on raw descriptors: measure one


def test_dlib_jitter_is_its_own_model(small_aligned):
    # dlib's 99.38 LFW figure averages 100 jittered chips; the entry says so in its spec (and so in the
    # embedding cache key), and the averaged descriptor stays close to the single one of the same face.
    one = load_model("dlib", config.MODELS, device="cpu")
    jit = load_model("dlib-jitter-test", {"dlib-jitter-test": dict(reference="dlib", num_jitters=3)}, device="cpu")
    assert jit.spec == {"reference": "dlib", "num_jitters": 3} and one.spec == {"reference": "dlib"}
    face = crops(small_aligned / "Barack_Obama", 1)
    a, b = one(face)[0], jit(face)[0]
    assert 0.9 < float(a @ b) < 0.99999  # jittered: not the same vector, but the same face
    assert config.MODELS["dlib-jitter100"]["num_jitters"] == 100
    with pytest.raises(Exception, match="num_jitters must be an integer >= 1, got 0"):
        load_model("bad", {"bad": dict(reference="dlib", num_jitters=0)}, device="cpu")


def test_untrained_baseline_follows_its_preprocess(small_aligned):
    """The seeded untrained network of a 64 px recipe is built for 64 px crops: MobileFaceNet's last
    (global depthwise) kernel spans the final map, so a network built for 112 px cannot take them."""
    registry = {"a": dict(random_init="mobilefacenet", seed=0, preprocess="arcface64", embedding_size=128),
                "b": dict(random_init="mobilefacenet", seed=0, embedding_size=128)}
    small, large = load_model("a", registry, device="cpu"), load_model("b", registry, device="cpu")
    assert small.preprocess.size_px == 64 and large.preprocess.size_px == 112
    faces = crops(small_aligned / "pyfeat_man", 2)
    assert small(faces).shape == (2, 128) and large(faces).shape == (2, 128)
    np.testing.assert_allclose(small(faces), load_model("a", registry, device="cpu")(faces), atol=1e-5)  # seeded


def test_measured_thresholds_are_read_when_the_model_loads(small_aligned, tmp_path):
    """Precedence: measured (this FPR and flip setting), then the entry's own, then the checkpoint's; the file
    is read by load_model, so one written after the registry was built counts."""
    measured = tmp_path / "thresholds.json"
    registry = {"m": dict(random_init="mobilefacenet", seed=0, embedding_size=32, threshold_cos=0.3,
                          threshold_fpr=1e-3, measured_thresholds=measured)}
    assert load_model("m", registry, device="cpu").threshold == 0.3  # no file yet: the entry's own
    measured.write_text(json.dumps({"m": [record(0.2, 1e-2, False), record(0.6, 1e-3, True),
                                          record(0.5, 1e-3, False)], "other": [record(0.9, 1e-3, False)]}))
    plain, flip = load_model("m", registry, device="cpu"), load_model("m", registry, device="cpu", flip_tta=True)
    assert (plain.threshold, plain.threshold_fpr) == (0.5, 1e-3)  # not 0.2: measured at another FPR
    assert (flip.threshold, flip.threshold_fpr) == (0.6, 1e-3)
    face = crops(small_aligned / "pyfeat_man", 1)
    assert plain(face).shape == (1, 32)
    spec = {"metrics": {"thresholds": [record(0.42, 1e-3, False)]}}
    entry = dict(registry["m"], thresholds=[record(0.35, 1e-3, False)])
    assert [r["cos"] for r in entry_records(entry, spec, [record(0.5, 1e-3, False)])] == [0.5, 0.35, 0.3, 0.42]


@pytest.mark.parametrize("text", ['{"m": [{"cos": 0.5, "fpr": 0.001, "fl', "not json", "[1, 2]", '{"m": 0.5}'])
def test_a_broken_thresholds_file_is_named_when_the_model_loads(tmp_path, text):
    measured = tmp_path / "thresholds.json"
    measured.write_text(text)
    registry = {"m": dict(checkpoint=tmp_path / "absent.pt", recipe="x", measured_thresholds=measured)}
    with pytest.raises(ThresholdsFileError, match=f"{measured}: .*--write-thresholds") as err:
        load_model("m", registry, device="cpu")  # before the checkpoint is looked for
    assert isinstance(err.value, FaceKitError)


def test_fingerprint_covers_what_changes_an_embedding_and_nothing_else():
    from dataclasses import replace

    from models_definition.fingerprint import model_fingerprint
    from models_definition.zoo import FaceEmbedder

    base = FaceEmbedder("x", lambda x: x, get_preset("arcface112"), 16,
                        spec={"random_init": "mobilefacenet", "seed": 0, "embedding_size": 16})
    key = model_fingerprint(base)
    # not: the registry name, the threshold, the batch size
    assert model_fingerprint(replace(base, name="y", threshold=0.3, threshold_fpr=1e-3, batch_size=7)) == key
    changed = [replace(base, spec={**base.spec, "seed": 1}), replace(base, spec={**base.spec, "random_init": "r18"}),
               replace(base, spec={**base.spec, "embedding_size": 32}), replace(base, preprocess=get_preset("sface112")),
               replace(base, flip_tta=True), replace(base, spec={"reference": "dlib", "num_jitters": 100}),
               replace(base, spec={"reference": "dlib"})]
    keys = [model_fingerprint(e) for e in changed]
    assert key not in keys and len(set(keys)) == len(keys)


def test_embeddings_are_normalised_by_the_one_l2_normalize(tmp_path):
    from id_rate.scoring import EmbeddingValueError, l2_normalize
    from models_definition.zoo import FaceEmbedder

    np.testing.assert_allclose(l2_normalize(np.array([[3.0, 4.0], [0.0, 2.0]])), [[0.6, 0.8], [0.0, 1.0]])
    with pytest.raises(EmbeddingValueError, match="probe: row 1 is all zeros"):
        l2_normalize(np.array([[1.0, 0.0], [0.0, 0.0]]), "probe")
    broken = FaceEmbedder("broken", lambda x: np.full((len(x), 4), np.nan, np.float32), get_preset("arcface112"), 4,
                          checkpoint=tmp_path / "best.pt")
    face = np.zeros((112, 112, 3), np.uint8)
    with pytest.raises(EmbeddingValueError, match=r"model 'broken' \(weights .*best.pt\): its embeddings: row 0 has "
                                                  r"NaN or inf \(2 such rows\)") as err:
        broken([face, face])
    assert isinstance(err.value, FaceKitError) and isinstance(err.value, FloatingPointError)


def test_require_threshold_names_how_to_measure_one():
    from models_definition.zoo import FaceEmbedder, NoThresholdError, require_threshold

    model = FaceEmbedder("mine", lambda x: x, get_preset("arcface112"), 4)
    with pytest.raises(NoThresholdError, match="model 'mine' has no measured threshold; pass --threshold .*"
                                               "python -m id_rate --models mine --data <aligned folder> "
                                               "--write-thresholds 1e-3") as err:
        require_threshold(model)
    assert isinstance(err.value, FaceKitError)
    assert require_threshold(model, 0.25) == 0.25
    model.threshold = 0.4
    assert require_threshold(model) == 0.4 and require_threshold(model, -0.1) == -0.1


@pytest.mark.parametrize("bad", [float("nan"), 1.5, -2.0, float("inf")])
def test_require_threshold_refuses_a_threshold_outside_the_cosine_range_wherever_it_comes_from(bad):
    """A thresholds file or a checkpoint can hold NaN (every face Unknown): refused like a --threshold value."""
    from facedata.errors import UsageError
    from models_definition.zoo import FaceEmbedder, require_threshold

    model = FaceEmbedder("mine", lambda x: x, get_preset("arcface112"), 4, threshold=bad)
    with pytest.raises(UsageError, match=rf"model 'mine''s measured threshold {bad}: a cosine similarity threshold "
                                         r"must be a number in \[-1, 1\]"):
        require_threshold(model)
    with pytest.raises(UsageError, match=rf"--threshold {bad}: "):
        require_threshold(model, bad)
    assert require_threshold(model, 0.3) == 0.3  # a valid given one is used whatever the model's


def test_check_model_names_lists_the_valid_names():
    from models_definition.zoo import check_model_names

    registry = {"b": {}, "a": {}}
    check_model_names(["a", "b", "a"], registry)  # all known: nothing to say
    with pytest.raises(ModelNotFoundError, match=r"^unknown model 'c'; valid: a, b$") as err:
        check_model_names(["a", "c", "d"], registry)
    assert isinstance(err.value, FaceKitError)
    with pytest.raises(ModelNotFoundError, match=r"^unknown recipe 'c'; valid: b, a$"):
        check_model_names(["c"], registry, "recipe", sort=False)


def test_a_checkpoint_rewritten_while_its_weights_load_is_stale(tmp_path, monkeypatch):
    import os

    import models_definition.zoo as zoo
    from models_definition.fingerprint import StaleModelError, model_fingerprint

    pre = get_preset("arcface112")
    spec = {"backbone": "mobilefacenet", "embedding_size": 16, "preprocess": pre.to_dict()}
    path = save_checkpoint(tmp_path / "best.pt", build_embedder("mobilefacenet", 16), spec)
    read = zoo.model_from_checkpoint

    def read_then_rewritten(*args, **kwargs):  # a training run replaces the file just after the weights were read
        out = read(*args, **kwargs)
        save_checkpoint(path, build_embedder("mobilefacenet", 16), spec)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new mtime even on a coarse clock
        return out

    monkeypatch.setattr(zoo, "model_from_checkpoint", read_then_rewritten)
    emb = load_model("m", {"m": {"checkpoint": path}}, device="cpu")
    with pytest.raises(StaleModelError, match="rewritten since model 'm' was loaded"):
        model_fingerprint(emb)
    monkeypatch.undo()  # the control: loaded again, the model keys on the new file
    assert model_fingerprint(load_model("m", {"m": {"checkpoint": path}}, device="cpu"))


@pytest.mark.skipif(not __import__("models_definition.precision", fromlist=["x"]).cpu_has_bf16(),
                    reason="this CPU has no bfloat16 units")
def test_cpu_bf16_inference_is_close_to_float32_and_keys_its_own_cache(small_aligned, tmp_path):
    from models_definition.fingerprint import model_fingerprint

    ckpt = tmp_path / "m.pt"
    torch.manual_seed(0)
    save_checkpoint(ckpt, build_embedder("resnet18_half", 64).eval(),
                    {"backbone": "resnet18_half", "embedding_size": 64, "preprocess": get_preset("arcface112").to_dict()})
    registry = {"fp32": {"checkpoint": ckpt}, "bf16": {"checkpoint": ckpt, "cpu_bf16": True}}
    crops = [load_image(p) for p in sorted(small_aligned.glob("*/*.jpg"))[:8]]
    fp32, bf16 = (load_model(n, registry, device="cpu") for n in ("fp32", "bf16"))
    a, b = fp32(crops), bf16(crops)
    cos = (a * b).sum(1)
    assert cos.min() > 0.995 and not np.array_equal(a, b)  # rounding, not another model
    assert bf16.spec["inference_dtype"] == "bfloat16" and "inference_dtype" not in fp32.spec
    assert model_fingerprint(fp32) != model_fingerprint(bf16)  # their embeddings are cached apart
