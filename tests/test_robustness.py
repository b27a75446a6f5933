"""Issue 12, a hostile new user: bad paths, killed runs, bad settings and damaged files end in one clear
line (never a traceback), outputs are checked before any work and never lost, every output is published
with the same permissions, and one detector can be shared by threads. Images are the real sample faces."""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from facedata.errors import DatasetError, ImageReadError, OutputPathError, VerificationFileError
from facedata.io import atomic_output, check_output_file, leftover_temps, load_image, save_image_atomic

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_").removesuffix(".py"), ROOT / name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # nothing runs at import
    return mod


class Reached(Exception):
    """Raised by a stand-in for model loading: the command got past its input checks."""


def _no_model(*args, **kwargs):
    raise Reached("the model was asked for")


@pytest.fixture(scope="module")
def video_frames(sample_data) -> list[np.ndarray]:
    """60 RGB 640x480 frames of data/sample_video.mp4 (the man, real faces)."""
    cap = cv2.VideoCapture(str(sample_data / "sample_video.mp4"))
    frames = []
    while len(frames) < 60:
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("L", (8000, 8000), 128).save(path)  # 64 MP, above the 40 MP default
    return path


class NoFaces:
    """The part of a Recognizer that ``run`` uses, finding no face: for tests of the outputs alone."""

    gallery = SimpleNamespace(people=[])
    timings: Counter = Counter()

    def process(self, rgb, index):
        return []


# --- 1. the real-time script's outputs ----------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-output_path", "--log", "--summary"])
def test_output_paths_are_checked_before_the_model_loads(flag, sample_data, tmp_path, capsys, monkeypatch):
    import models_definition.zoo

    monkeypatch.setattr(models_definition.zoo, "load_model", _no_model)
    folder = tmp_path / ("X.gif" if flag == "-output_path" else "X.out")
    folder.mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    under_a_file = tmp_path / "file" / ("x.gif" if flag == "-output_path" else "x.csv")
    mod = load_script("real-time-recognition.py")
    base = [f"-cam={sample_data / 'sample_video.mp4'}", "--no-display", "-output_path=none"]
    for bad, why in ((folder, "is a folder"), (under_a_file, f"{tmp_path / 'file'} is a file, not a folder")):
        rc = mod.main(base + ([f"-output_path={bad}"] if flag == "-output_path" else [flag, str(bad)]))
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"real-time-recognition: error: {flag} {bad}: {why}"), err
        assert len(err.splitlines()) == 1 and ".tmp" not in err


def test_existing_log_is_refused_unless_overwrite(sample_data, tmp_path, capsys):
    log = tmp_path / "faces.csv"
    log.write_text("frame,time_s\n0,0.0\n")
    mod = load_script("real-time-recognition.py")
    base = [f"-cam={tmp_path / 'missing.mp4'}", "-output_path=none", "--no-display", "--log", str(log)]
    assert mod.main(base) == 2
    err = capsys.readouterr().err
    assert f"--log {log}: already exists and would be replaced; pass --overwrite" in err
    assert mod.main(base + ["--overwrite"]) == 2  # past the output checks: stops at the missing -cam
    assert "no such file or folder" in capsys.readouterr().err
    assert log.read_text() == "frame,time_s\n0,0.0\n"


def test_recording_and_log_are_kept_when_they_cannot_be_renamed_into_place(video_frames, tmp_path):
    """The gif path turns into a folder during the run: the frames are kept at a visible path that the
    summary names, not deleted while the report says 'saved'."""
    from recognition.realtime import run
    from recognition.recorder import FaceLog, Recorder
    from recognition.sources import Frame

    gif, log = tmp_path / "out.gif", tmp_path / "faces.csv"

    def frames():
        for i, f in enumerate(video_frames[:12]):
            if i == 8:
                gif.mkdir()  # the rename onto out.gif will fail
                log.mkdir()
            yield Frame(i, f, time.perf_counter())

    s = run(frames(), NoFaces(), Recorder(gif, max_side_px=160), FaceLog(log))
    kept_gif, kept_log = Path(s.output), Path(s.log)
    assert kept_gif.parent == tmp_path and kept_gif.name.startswith("out.unsaved-") and kept_gif.suffix == ".gif"
    with Image.open(kept_gif) as g:
        assert g.n_frames == 12
    assert kept_log.name.startswith("faces.unsaved-") and kept_log.read_text().startswith("frame,time_s")
    report = s.report()
    assert f"recording: {kept_gif}" in report and f"its data is kept at {kept_gif}" in report
    assert f"its data is kept at {kept_log}" in report


@pytest.mark.slow  # a process that kills itself: it must be a process of its own
def test_a_killed_run_leaves_spools_that_the_next_run_reports(raw, tmp_path, capsys):
    gif, log = tmp_path / "run.gif", tmp_path / "faces.csv"
    code = (f"import os, signal, sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
            "from facedata.io import load_image\n"
            "from recognition.recorder import FaceLog, Recorder\n"
            f"frame = load_image({str(raw / 'face_recognition' / 'obama.jpg')!r})\n"
            f"rec, log = Recorder({str(gif)!r}, max_side_px=200), FaceLog({str(log)!r})\n"
            "for i in range(5):\n"
            "    rec.add(frame)\n"
            "    log.write([(i, 0.0, -1, 1, 2, 3, 4, 'Unknown', '', 1)])\n"
            "time.sleep(1.5)  # the encoder has written the frames\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not gif.exists() and not log.exists()
    (spool,), (partial,) = leftover_temps(gif), leftover_temps(log)
    with Image.open(spool) as g:  # the frames encoded before the kill play, with no trailer
        assert g.n_frames == 5
    partial_rows = partial.read_text()
    assert partial_rows.count("Unknown") == 5

    # The next run with the same outputs lists them (before anything else) and says how to delete them.
    mod = load_script("real-time-recognition.py")
    args = [f"-cam={tmp_path / 'missing'}", f"-output_path={gif}", "--log", str(log), "--no-display"]
    assert mod.main(args) == 2
    err = capsys.readouterr().err
    assert "2 unfinished file(s) of an earlier run that was killed" in err
    assert str(spool) in err and str(partial) in err and f"rm -- '{spool}' '{partial}'" in err
    assert "--clean-partials" in err

    # A new log at the same path writes its own temporary file: the killed run's rows stay.
    from recognition.recorder import FaceLog

    again = FaceLog(log)
    again.write([(0, 0.0, -1, 1, 2, 3, 4, "pyfeat_man", "0.9", 1)])
    assert again.close() == log and partial.read_text() == partial_rows

    assert mod.main(args + ["--clean-partials", "--overwrite"]) == 2
    assert "deleted 2 unfinished file(s)" in capsys.readouterr().err
    assert leftover_temps(gif) == [] and leftover_temps(log) == []


def test_gif_is_encoded_while_recording(video_frames, tmp_path):
    """Frames reach the gif as they come: most are in the file before it is closed (closing waits only for
    the few still queued; how long that takes is benchmarks/bench_recorder.py's to measure, not a test's)."""
    from recognition.recorder import Recorder

    rec = Recorder(tmp_path / "r.gif")
    for f in video_frames:
        rec.add(f)
        time.sleep(0.02)  # a 50 FPS stream
    (spool,) = leftover_temps(tmp_path / "r.gif")
    encoded = spool.stat().st_size
    assert rec.close() == tmp_path / "r.gif"
    assert encoded > 0.5 * (tmp_path / "r.gif").stat().st_size  # most frames were in the file before the end
    with Image.open(tmp_path / "r.gif") as g:
        assert g.n_frames == 60 and g.size == (640, 480) and g.info["duration"] == 100 and g.info["loop"] == 0
        g.seek(30)
        err = np.abs(np.asarray(g.convert("RGB"), np.float32) - video_frames[30]).mean()
    assert err < 4.0  # 256 colours per frame
    assert leftover_temps(tmp_path / "r.gif") == []


# --- 2. train.py --------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting, message", [
    ("lr=abc", "training option lr='abc': expected a number > 0"),
    ("epochs=two", "training option epochs='two': expected an integer >= 1"),
    ("val_fraction=2.0", "training option val_fraction=2.0: expected a number in [0, 1)"),
    ("head_kwargs={'margn': 0.3}", "training option head_kwargs={'margn': 0.3}: unknown option 'margn' for head "
                                   "'triplet'; valid: margin, mining, distance"),
    ("head_kwargs={'margin': 'wide'}", "training option head_kwargs={'margin': 'wide'}: option 'margin' of head "
                                       "'triplet' must be a float like its default 0.2, got 'wide'"),
])
def test_bad_training_settings_name_the_key(setting, message, tmp_path, capsys):
    train = load_script("train.py")
    rc = train.main(["--recipe", "sample-triplet", "--out", str(tmp_path / "run"), "--set", setting])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"train.py: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_out_naming_a_file_is_refused_up_front(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    rc = load_script("train.py").main(["--recipe", "sample-triplet", "--out", str(tmp_path / "notes.txt")])
    assert rc == 2
    assert capsys.readouterr().err == (f"train.py: error: --out {tmp_path / 'notes.txt'}: is a file, not a folder; "
                                       "give a folder (it is created when missing)\n")


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None], ids=["empty", "missing"])
def test_resume_with_nothing_to_resume_says_a_new_run_starts(make, tmp_path, capsys, monkeypatch):
    train = load_script("train.py")
    started = []

    class FakeTrainer:
        is_main, history = True, [{"epoch": 1}]

        def __init__(self, cfg, out, resume):
            started.append((out, resume))

        def fit(self):
            return self.history

    monkeypatch.setattr(train, "Trainer", FakeTrainer)
    out = tmp_path / "run"
    make(out)
    assert train.main(["--recipe", "sample-triplet", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert f"train.py: nothing to resume in {out} (no last.pt): starting a new run there" in capsys.readouterr().err
    assert started == [(out, True)]


@pytest.mark.slow  # Ctrl+C to a whole process group (the loader's workers too): a process of its own
def test_ctrl_c_says_what_was_saved_and_how_to_resume(small_aligned, tmp_path):
    from training import TrainConfig

    cfg = TrainConfig(data=str(small_aligned), backbone="mobilefacenet", embedding_size=32, head="arcface",
                      head_kwargs={"scale": 16.0, "margin_rad": 0.3}, sampler="pk", pk_k=2, batch_size=8,
                      batches_per_epoch=2, epochs=500, open_set_query=0, open_set_distractor=0, val_fraction=0.0,
                      workers=1, progress=False, seed=3)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Its own process group, signalled as a whole: what Ctrl+C in a terminal does (loader workers get it too).
    proc = subprocess.Popen([sys.executable, "train.py", "--config", str(tmp_path / "cfg.json"), "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True,
                            # a background job (make ... &, nohup) inherits SIGINT ignored; a terminal's is not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # into the next epoch
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)  # a loaded CI machine: the last epoch and the log may take a while
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    from models_definition.checkpoint import load_checkpoint

    epoch = load_checkpoint(out / "last.pt")["spec"]["epoch"]
    cmd = f"python train.py --config {out / 'config.json'} --resume"
    assert f"Saved: {out / 'last.pt'} holds epoch {epoch}, the last completed one" in err and cmd in err, err
    # The printed command resumes (here with --epochs lowered to the epoch saved: nothing left to train).
    r = subprocess.run([sys.executable, *cmd.split()[1:], "--epochs", str(epoch)], cwd=ROOT, capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0 and "done:" in r.stdout, r.stderr[-2000:]


# --- 3. checkpoints -------------------------------------------------------------------------------------


def test_unreadable_checkpoints_never_suggest_the_unsafe_loader(tmp_path):
    from models_definition.backbones import build_embedder
    from models_definition.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from facedata.preprocess import get_preset

    spec = {"backbone": "mobilefacenet", "embedding_size": 32, "preprocess": get_preset("arcface112").to_dict()}
    good = save_checkpoint(tmp_path / "good.pt", build_embedder("mobilefacenet", 32), spec)
    data = good.read_bytes()
    rng = np.random.default_rng(12)
    bad = {f"random{i}.pt": rng.integers(0, 256, n, dtype=np.uint8).tobytes()
           for i, n in enumerate((16, 4096, 100_000))}
    bad["truncated.pt"] = data[: len(data) // 2]
    flipped = bytearray(data)
    for i in rng.choice(len(data), 64, replace=False):
        flipped[i] ^= 0xFF
    bad["flipped.pt"] = bytes(flipped)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad["evil.pt"] = pickle.dumps({"spec": Evil(), "model": {}})
    with zipfile.ZipFile(tmp_path / "evil_zip.pt", "w") as z:  # a torch-like archive holding code
        z.writestr("archive/data.pkl", pickle.dumps({"spec": Evil(), "model": {}}))
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    for name in [*bad, "evil_zip.pt"]:
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        msg = str(info.value)
        assert msg.startswith(f"{tmp_path / name}: not a readable checkpoint of this project"), msg
        assert "weights_only" not in msg and "likely succeed" not in msg and "\n" not in msg, msg


# --- 4. insightface verification files ---------------------------------------------------------------------


def test_fuzzed_verification_bins_give_one_named_error(raw, tmp_path):
    """A small valid .bin of real faces, then truncations, random files and bit flips (fixed seed): each
    one loads and decodes, or fails with VerificationFileError naming the file; nothing else escapes."""
    from facedata.insightface_io import load_verification_bin

    jpegs = []
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "obama3.jpg"):
        rgb = cv2.resize(load_image(raw / "face_recognition" / name), (56, 56))
        jpegs.append(cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes())
    rng = np.random.default_rng(2024)
    variants: dict[str, bytes] = {}
    for protocol in (2, 4):
        valid = pickle.dumps((jpegs, [True, False]), protocol=protocol)
        (tmp_path / f"valid{protocol}.bin").write_bytes(valid)
        assert len(load_verification_bin(tmp_path / f"valid{protocol}.bin")) == 2
        for cut in sorted(set(rng.integers(0, len(valid), 25).tolist()) | {0, 1, 2, len(valid) - 1}):
            variants[f"p{protocol}-cut{cut}"] = valid[:cut]
        for i in range(150):
            b = bytearray(valid)
            for pos in rng.choice(len(b), int(rng.integers(1, 9)), replace=False):
                b[pos] ^= 1 << int(rng.integers(0, 8))
            variants[f"p{protocol}-flip{i}"] = bytes(b)
        for i in range(10):  # the pickle's opening with random bytes after it
            variants[f"p{protocol}-tail{i}"] = valid[:12] + rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    for i in range(20):
        variants[f"random{i}"] = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
    for name, data in variants.items():
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        try:
            vs = load_verification_bin(path)
            for i in range(len(vs.images)):
                assert vs.image(i).dtype == np.uint8
            assert "cut" not in name and not name.startswith("random"), f"{name} loaded"  # these cannot be valid
        except VerificationFileError as exc:
            assert str(exc).startswith(str(path)) and isinstance(exc, DatasetError)
        path.unlink()


# --- 5. image reading: links, huge images ----------------------------------------------------------------


def test_symlink_loop_and_broken_link_are_named(raw, tmp_path):
    from recognition.sources import ImageSource

    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    with pytest.raises(ImageReadError, match=r"loop.jpg: symbolic link loop \(the link leads back to itself\)"):
        load_image(tmp_path / "loop.jpg")
    with pytest.raises(ImageReadError, match=r"gone.jpg: broken symbolic link \(it points to .*deleted.jpg"):
        load_image(tmp_path / "gone.jpg")
    # The real-time folder mode reports them like any unreadable image, next to a real face it reads.
    (tmp_path / "a.jpg").write_bytes((raw / "face_recognition" / "obama.jpg").read_bytes())
    source = ImageSource(tmp_path)
    assert [f.name for f in source.frames()] == ["a.jpg"]
    assert [(Path(p).name, r.split(" (")[0]) for p, r in source.skipped] == [
        ("gone.jpg", "broken symbolic link"), ("loop.jpg", "symbolic link loop")]


def test_max_megapixels_reaches_image_loading_in_verify_batch_and_realtime(huge_png, raw, tmp_path, capsys,
                                                                          monkeypatch):
    import importlib

    import models_definition.zoo

    batch = importlib.import_module("recognition.batch")  # the modules (the package re-exports functions by
    verify = importlib.import_module("recognition.verify")  # these names)

    obama = raw / "face_recognition" / "obama.jpg"
    # verify: the photo is refused before the model loads, with the option that lets it through
    monkeypatch.setattr(verify, "load_model", _no_model)
    assert verify.main([str(huge_png), str(obama)]) == 2
    err = capsys.readouterr().err
    assert f"verify: error: {huge_png}: image is 8000x8000 = 64.0 MP, above the limit of 40.0 MP" in err
    assert "--max-megapixels 64 on the command line" in err
    with pytest.raises(Reached):
        verify.main([str(huge_png), str(obama), "--max-megapixels", "64"])
    # real-time: one image as -cam, read when the source opens
    monkeypatch.setattr(models_definition.zoo, "load_model", _no_model)
    rt = load_script("real-time-recognition.py")
    args = [f"-cam={huge_png}", "-output_path=none", "--no-display"]
    assert rt.main(args) == 2 and "--max-megapixels 64 on the command line" in capsys.readouterr().err
    with pytest.raises(Reached):
        rt.main(args + ["--max-megapixels", "64"])
    # batch: the option reaches the loader (a row per image, never a stop)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "huge.png").symlink_to(huge_png)
    rows = batch.recognise_folder(photos, NoFaces())
    assert rows[0]["status"].startswith("unreadable: image is 8000x8000") and "--max-megapixels 64" in rows[0]["status"]
    assert batch.recognise_folder(photos, NoFaces(), max_pixels=64_000_000)[0]["status"] == "no_face"
    monkeypatch.setattr(batch, "load_model", _no_model)
    with pytest.raises(Reached):
        batch.main([str(photos), "--out", str(tmp_path / "r.csv"), "--max-megapixels", "64"])
    assert batch.main([str(photos), "--out", str(photos)]) == 2  # --out checked before the model too
    assert f"--out {photos}: is a folder" in capsys.readouterr().err


# --- 6. one atomic-write mechanism: the same permissions for every output -----------------------------------


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_every_output_gets_the_permissions_of_a_plain_open(mask, mode, raw, video_frames, tmp_path):
    from facedata.prepare import prepare_folder
    from facedata.io import write_bytes_atomic
    from facedata.preprocess import get_preset
    from models_definition.backbones import build_embedder
    from models_definition.checkpoint import save_checkpoint
    from recognition.recorder import FaceLog, Recorder

    src = tmp_path / "src" / "Barack_Obama"
    src.mkdir(parents=True)
    (src / "obama.jpg").write_bytes((raw / "face_recognition" / "obama.jpg").read_bytes())
    out = tmp_path / "out"
    with _umask(mask):
        prepare_folder(tmp_path / "src", tmp_path / "aligned", workers=0, progress=False)  # aligned crops
        save_image_atomic(video_frames[0], out / "people_faces" / "pyfeat_man.jpg")  # the sample gallery's writer
        spec = {"backbone": "mobilefacenet", "embedding_size": 32, "preprocess": get_preset("arcface112").to_dict()}
        for name in ("best.pt", "last.pt"):
            save_checkpoint(out / name, build_embedder("mobilefacenet", 32), spec)
        for name in ("r.gif", "r.mp4"):
            rec = Recorder(out / name, max_side_px=160)
            for f in video_frames[:3]:
                rec.add(f)
            rec.close()
        log = FaceLog(out / "faces.csv")
        log.close()
        write_bytes_atomic(b"{}", out / "summary.json")
        with open(out / "plain.txt", "w") as fh:  # the reference: what a plain open gives
            fh.write("x")
    crops = list((tmp_path / "aligned").rglob("*.jpg"))
    files = crops + [p for p in out.rglob("*") if p.is_file()]
    assert len(crops) == 1 and len(files) == 9
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: oct(mode) for p in files}


def test_atomic_output_removes_its_temporary_file_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "x.jpg") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputPathError, match="must end in .gif or .mp4"):
        check_output_file(tmp_path / "x.avi", "-output_path", suffixes=(".gif", ".mp4"))


# --- 7. one detector shared by threads ------------------------------------------------------------------------


def test_detector_shared_by_two_threads_gives_the_single_thread_results(raw):
    """Photos of different sizes are detected at different scales, so each call sets its own MTCNN minimum
    face size. The stand-in below pauses 10 ms between a call's start and MTCNN reading that setting (a
    window of microseconds otherwise) so that, without the detector's lock, the other thread's setting is
    read often enough to show; with the lock every result equals the single-thread one."""
    from facedata.detect import DetectorConfig, FaceDetector

    images = [load_image(p) for p in (raw / "face_recognition" / "biden.jpg", raw / "skimage" / "astronaut.png",
                                      raw / "pyfeat" / "multi_face.jpg")]
    det = FaceDetector(DetectorConfig(detect_max_side_px=400, min_face_size_px=40))
    assert len({round(det._scale(*im.shape[:2]), 3) for im in images}) == 3

    class SlowStart:
        def __init__(self, mtcnn) -> None:
            self.__dict__["_m"] = mtcnn

        def __getattr__(self, key):
            return getattr(self._m, key)

        def __setattr__(self, key, value):
            setattr(self._m, key, value)

        def detect(self, img, landmarks=False):
            time.sleep(0.01)
            return self._m.detect(img, landmarks=landmarks)

    det._mtcnn = SlowStart(det._mtcnn)

    def key(faces):
        return [(np.round(f.box, 2).tolist(), round(float(f.score), 4)) for f in faces]

    single = [key(det.detect_rgb(im)) for im in images]
    assert all(single)
    got: list[tuple[int, list]] = []

    def work(order: list[int]) -> None:
        for _ in range(3):
            for j in order:
                got.append((j, key(det.detect_rgb(images[j]))))

    threads = [threading.Thread(target=work, args=(o,)) for o in ([0, 1, 2], [1, 2, 0])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 18
    assert [j for j, faces in got if faces != single[j]] == []
