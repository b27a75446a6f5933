"""ONNX export and the onnxruntime backend, on real aligned faces with the shipped model: parity before writing,
the metadata that makes the file a usable embedder, the int8 refusal rule, the named errors, and the live
script's recognitions on the demo video under onnxruntime equal to PyTorch's."""
from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import config
from facedata.io import image_files, load_image
from id_rate.evaluate import PairSet
from models_definition import export as ex
from models_definition.onnx_backend import NotAFaceModelError, OnnxModelError
from facedata.errors import UsageError
from models_definition.zoo import ModelNotFoundError, StaleExportError, load_model

ROOT = Path(__file__).resolve().parents[1]
MODEL = config.DEFAULT_MODEL


@pytest.fixture(scope="module")
def faces(small_aligned: Path) -> list[Path]:
    return image_files(small_aligned, recursive=True)


@pytest.fixture(scope="module")
def pairs(faces: list[Path]) -> PairSet:
    """Same-person pairs of the man, the woman and Obama, and different-person pairs across them: 10 folds."""
    by = {}
    for p in faces:
        by.setdefault(p.parent.name, []).append(p)
    people = [by[n] for n in ("pyfeat_man", "pyfeat_woman", "Barack_Obama")]
    same = [(ps[i], ps[j]) for ps in people for i in range(len(ps)) for j in range(i + 1, len(ps))][:30]
    others = [p for n, ps in by.items() if n not in ("pyfeat_man", "pyfeat_woman", "Barack_Obama") for p in ps]
    diff = [(people[k % 3][k % len(people[k % 3])], others[k % len(others)]) for k in range(30)]
    chosen = same + diff
    return PairSet("small", [x for ab in chosen for x in ab], np.array([True] * len(same) + [False] * len(diff)),
                   np.arange(len(chosen)) % 10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict:
    """config.MODELS with the shipped model's export going to a temporary folder."""
    out = tmp_path_factory.mktemp("onnx")
    return dict(config.MODELS, **{MODEL: dict(config.MODELS[MODEL], onnx=out / f"{MODEL}.onnx")})


@pytest.fixture(scope="module")
def exported(registry, faces, pairs) -> ex.ExportResult:
    return ex.export_model(MODEL, registry, registry[MODEL]["onnx"], {"small": pairs}, faces, log=lambda *_: None)


def test_export_passes_parity_and_carries_its_metadata(exported, registry, faces):
    assert exported.path.is_file()
    assert exported.parity.min_cos >= ex.MIN_PARITY_COS and exported.parity.faces == len(faces)
    (check,) = exported.parity.sets
    assert abs(check.change) <= ex.MAX_ACCURACY_CHANGE_POINTS and check.pairs == 60
    # the file alone is an embedder: an entry naming only the ONNX file loads with the preprocessing and threshold
    only = load_model("alone", {"alone": {"onnx": exported.path}})
    torch_model = load_model(MODEL, registry, device="cpu", backend="torch")
    assert only.backend == "onnx" and only.preprocess == torch_model.preprocess
    assert only.threshold == pytest.approx(torch_model.threshold) and only.embedding_size == 128
    assert only.spec["precision"] == "float32" and only.spec["backbone"] == "resnet18_half"


def test_onnx_backend_embeds_real_faces_as_pytorch_does(exported, registry, faces):
    crops = [load_image(p) for p in faces]
    a = load_model(MODEL, registry, device="cpu", backend="torch")(crops)
    onnx = load_model(MODEL, registry, device="cpu", backend="onnx")
    b = onnx(crops)
    assert onnx.backend == "onnx" and np.einsum("ij,ij->i", a, b).min() >= 0.9999
    # its embeddings are cached apart from PyTorch's: the fingerprint hashes the ONNX file
    from models_definition.fingerprint import model_fingerprint

    assert model_fingerprint(onnx) != model_fingerprint(load_model(MODEL, registry, device="cpu"))


def test_int8_refusal_rule_hand_computed():
    p = ex.Parity("int8", 10, 0.99, 0.995, [ex.SetCheck("lfw", 6000, 90.0, 89.6), ex.SetCheck("cfp_fp", 7000, 80.0,
                                                                                               79.1)])
    ex.check_int8(p, {"lfw": 0.5, "cfp_fp": 1.0}, 0.5)  # -0.4 and -0.9: within their limits
    with pytest.raises(ex.Int8RefusedError, match=r"cfp_fp 80.00% -> 79.10% \(-0.90 points, allowed -0.5\)"):
        ex.check_int8(p, {"lfw": 0.5}, 0.5)  # CFP-FP falls to the default limit
    with pytest.raises(ex.Int8RefusedError, match="lfw"):
        ex.check_int8(p, {"lfw": 0.3, "cfp_fp": 1.0}, 0.5)
    with pytest.raises(ex.Int8RefusedError, match="no pair set was checked"):
        ex.check_int8(ex.Parity("int8", 10, 0.99, 0.995, []), {}, 0.5)


def test_int8_export_is_refused_beyond_its_limit_and_the_float32_one_kept(registry, faces, pairs, tmp_path):
    out = tmp_path / "m.onnx"
    calibration = [p for p in faces if p.parent.name not in ("pyfeat_man", "pyfeat_woman", "Barack_Obama")]
    # a limit of -100 points asks the int8 model to gain 100 points: always refused
    with pytest.raises(ex.Int8RefusedError, match="int8 model refused"):
        ex.export_model(MODEL, registry, out, {"small": pairs}, faces, int8=True, calibration=calibration,
                        int8_max_drop_points={"small": -100.0}, log=lambda *_: None)
    assert out.is_file() and not (tmp_path / "m-int8.onnx").exists()
    r = ex.export_model(MODEL, registry, out, {"small": pairs}, faces, int8=True, calibration=calibration,
                        int8_max_drop_points={"small": 5.0}, overwrite=True, log=lambda *_: None)
    assert r.int8_path.is_file() and r.int8_parity.min_cos > 0.98  # int8 moves embeddings, a little
    int8 = load_model("q", {"q": {"onnx": r.int8_path}})
    assert int8.spec["precision"] == "int8" and r.int8_path.stat().st_size < 0.4 * out.stat().st_size


def test_an_export_that_fails_parity_writes_nothing(registry, faces, pairs, tmp_path, monkeypatch):
    real = ex.to_onnx

    def other_weights(module, size_px):  # an exporter that converts to other numbers
        broken = load_model("random-init-r18h", config.MODELS, device="cpu").module
        return real(broken, size_px)

    monkeypatch.setattr(ex, "to_onnx", other_weights)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ex.ExportParityError, match="cosine to the PyTorch embedding"):
        ex.export_model(MODEL, registry, out, {"small": pairs}, faces, log=lambda *_: None)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_onnx_files_that_are_not_our_face_models_are_named_errors(tmp_path):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), str(plain), dynamo=False)
    with pytest.raises(NotAFaceModelError, match="without this project's metadata"):
        load_model("x", {"x": {"onnx": plain}})
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(OnnxModelError, match="junk.onnx: onnxruntime cannot load it"):
        load_model("x", {"x": {"onnx": junk}})
    with pytest.raises(ModelNotFoundError, match="not found. Export it with `python -m models_definition.export x"):
        load_model("x", {"x": {"onnx": tmp_path / "none.onnx"}})
    with pytest.raises(UsageError, match="unknown backend 'tflite'; valid: torch, onnx"):
        load_model("sface", config.MODELS, backend="tflite")


def test_an_export_of_older_weights_is_refused(exported, registry, tmp_path):
    ckpt = tmp_path / "model.pt"
    shutil.copy(registry[MODEL]["checkpoint"], ckpt)
    entry = {"checkpoint": ckpt, "onnx": exported.path, "backend": "onnx"}
    load_model("m", {"m": entry})  # the same bytes as the source: fine
    state = torch.load(ckpt, weights_only=True)
    first = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][first] = state["model"][first] + 0.01
    torch.save(state, ckpt)
    with pytest.raises(StaleExportError, match="exported from another version"):
        load_model("m", {"m": entry})


def test_cli_export_checks_and_names_bad_input(tmp_path, capsys):
    assert ex.main(["no-such-model", str(tmp_path / "o.onnx"), "--no-benchmark-check"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert ex.main(["sface", str(tmp_path / "o.onnx"), "--no-benchmark-check"]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert ex.main([MODEL, str(tmp_path / "o.txt"), "--no-benchmark-check"]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert ex.main([MODEL, str(tmp_path / "o.onnx"), "--lfw-dir", str(tmp_path / "nolfw")]) == 2
    assert "LFW is needed to check the export" in capsys.readouterr().err
    assert ex.main([f"{MODEL}-int8", "--no-benchmark-check"]) == 2  # an export itself: its source is exported
    assert f"export its source instead: python -m models_definition.export {MODEL} --int8" in capsys.readouterr().err
    assert ex.main([MODEL, str(tmp_path / "o.onnx"), "--int8", "--calibration-images", "0"]) == 2
    assert "--calibration-images 0: at least 1" in capsys.readouterr().err


def _live(script, registry_patch, monkeypatch, sample_data, out: Path, backend: str) -> list[dict]:
    monkeypatch.setitem(config.MODELS, MODEL, registry_patch)
    log = out / f"{backend}.csv"
    rc = script.main([f"-cam={sample_data / 'sample_video.mp4'}", f"-people_faces={ROOT / 'people_faces'}",
                      "--no-display", "--log", str(log), "--gallery-cache", "none", "--quiet", "--backend", backend])
    assert rc == 0
    with open(log) as f:
        return list(csv.DictReader(f))


def test_live_recognitions_on_the_demo_video_are_the_same_under_onnxruntime(exported, registry, sample_data,
                                                                          tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("rt", ROOT / "real-time-recognition.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows_torch = _live(script, registry[MODEL], monkeypatch, sample_data, tmp_path, "torch")
    rows_onnx = _live(script, registry[MODEL], monkeypatch, sample_data, tmp_path, "onnx")
    assert len(rows_torch) == len(rows_onnx) > 200
    assert [(r["frame"], r["name"]) for r in rows_torch] == [(r["frame"], r["name"]) for r in rows_onnx]
    sims = np.array([[float(r["similarity"]), float(s["similarity"])] for r, s in zip(rows_torch, rows_onnx)])
    assert np.abs(sims[:, 0] - sims[:, 1]).max() < 1e-3
    assert sum(r["name"] == "pyfeat_man" for r in rows_onnx) > 100
