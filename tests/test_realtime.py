"""The real-time script, headless, on the sample video made from real faces (the man enrolled, the
woman not), on a video with no face, on photo folders; outputs written however the run ends; bad input."""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import config
from PIL import Image

from recognition.gallery import UNKNOWN

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "real-time-recognition.py"


def load_script():
    spec = importlib.util.spec_from_file_location("real_time_recognition", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # nothing runs at import
    return mod


@pytest.fixture(scope="module")
def demo_run(sample_data, tmp_path_factory):
    """The script as a user runs it, in a subprocess, on data/sample_video.mp4 with its default model: the small
    model shipped in the repository (config.DEFAULT_MODEL), its threshold the one its training run measured."""
    out = tmp_path_factory.mktemp("demo")
    cmd = [sys.executable, str(SCRIPT), f"-cam={sample_data / 'sample_video.mp4'}",
           f"-people_faces={ROOT / 'people_faces'}", f"-output_path={out / 'run.gif'}", "--no-display",
           "--log", str(out / "faces.csv"), "--summary", str(out / "summary.json"), "--record-max-side", "160",
           "--gallery-cache", str(out / "cache")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "faces.csv") as f:
        rows = list(csv.DictReader(f))
    return out, rows, json.loads((out / "summary.json").read_text()), r


def test_enrolled_man_is_named_and_woman_is_unknown(demo_run):
    _, rows, summary, _ = demo_run
    # data/sample_video.mp4: frames 0-71 the man, 72-143 the woman, 144-215 both (man left, woman right).
    man = [r for r in rows if int(r["frame"]) < 72 or (int(r["frame"]) >= 144 and float(r["x2"]) < 330)]
    woman = [r for r in rows if 72 <= int(r["frame"]) < 144 or (int(r["frame"]) >= 144 and float(r["x1"]) > 310)]
    man_frames = {int(r["frame"]) for r in man}
    named = {int(r["frame"]) for r in man if r["name"] == "pyfeat_man"}
    assert len(man_frames) >= 130  # his face is found in most of his 144 frames
    assert len(named) / len(man_frames) >= 0.9
    assert woman and all(r["name"] == UNKNOWN for r in woman)
    assert summary["frames"] == 216 and summary["frames_by_name"].get("pyfeat_man", 0) >= 0.9 * len(man_frames)
    assert summary["frames_by_name"]["Barack_Obama"] == summary["frames_by_name"]["Joe_Biden"] == 0


def test_gif_log_and_summary_are_written(demo_run):
    out, rows, summary, r = demo_run
    with Image.open(out / "run.gif") as gif:
        assert gif.n_frames == 216 and max(gif.size) == 160
    assert list(rows[0]) == ["frame", "time_s", "track", "x1", "y1", "x2", "y2", "name", "similarity", "embedded"]
    assert summary["stopped_by"] == "end" and summary["fps"] > 0 and summary["latency_ms_p95"] > 0
    assert "pyfeat_man: named in" in r.stdout
    assert not list(out.glob(".*partial*")) and not list(out.glob("*.tmp*"))


def test_video_without_a_face_runs_through(raw, tmp_path):
    mod = load_script()
    rc = mod.main(["-model_name=sface", f"-cam={raw / 'pyfeat' / 'no_face.mp4'}", f"-output_path={tmp_path / 'o.mp4'}",
                   f"-people_faces={ROOT / 'people_faces'}", "--no-display", "--max-frames", "40", "--quiet",
                   "--summary", str(tmp_path / "s.json"), "--gallery-cache", "none"])
    s = json.loads((tmp_path / "s.json").read_text())
    assert rc == 0 and s["frames"] == 40 and s["frames_with_faces"] == 0 and s["stopped_by"] == "max-frames"
    assert (tmp_path / "o.mp4").stat().st_size > 0


def test_photo_folder_with_a_broken_image_and_an_empty_gallery(raw, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(raw / "face_recognition" / "obama2.jpg", photos / "1.jpg")
    (photos / "2.jpg").write_bytes(b"broken")
    shutil.copy(raw / "face_recognition" / "biden.jpg", photos / "3.jpg")
    (tmp_path / "nobody").mkdir()
    mod = load_script()
    rc = mod.main(["-model_name=sface", f"-cam={photos}", f"-people_faces={tmp_path / 'nobody'}", "--allow-empty-gallery",
                   f"-output_path={tmp_path / 'o.gif'}", "--no-display", "--log", str(tmp_path / "l.csv"),
                   "--gallery-cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 0 and "skipped" in err and "2.jpg" in err
    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.n_frames == 2
    with open(tmp_path / "l.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [UNKNOWN, UNKNOWN]
    assert [r["embedded"] for r in rows] == ["1", "1"]  # photos are not tracked: each face is embedded


def test_photos_are_not_tracked_from_one_to_the_next(raw, tmp_path):
    """Biden's photo placed where Obama's face was must not inherit Obama's name."""
    from facedata.io import load_image

    photos = tmp_path / "photos"
    photos.mkdir()
    fr = raw / "face_recognition"
    obama, biden = load_image(fr / "obama.jpg"), load_image(fr / "biden.jpg")
    Image.fromarray(obama).save(photos / "1.png")
    Image.fromarray(np.asarray(Image.fromarray(biden).resize(obama.shape[1::-1]))).save(photos / "2.png")
    people = tmp_path / "people"
    people.mkdir()
    shutil.copy(fr / "obama2.jpg", people / "Barack_Obama.jpg")
    mod = load_script()
    rc = mod.main(["-model_name=sface", f"-cam={photos}", f"-people_faces={people}", "-output_path=none",
                   "--no-display", "--log", str(tmp_path / "l.csv"), "--gallery-cache", "none", "--quiet"])
    with open(tmp_path / "l.csv") as f:
        rows = [r for r in csv.DictReader(f) if float(r["x2"]) - float(r["x1"]) > 100]  # the main faces
    assert rc == 0 and [(r["frame"], r["name"]) for r in rows] == [("0", "Barack_Obama"), ("1", UNKNOWN)]


def test_outputs_survive_ctrl_c(raw, tmp_path):
    """A run interrupted after 5 frames keeps those 5 frames in the gif and the log."""
    from facedata.detect import DetectorConfig
    from models_definition.zoo import load_model
    from recognition.gallery import Gallery
    from recognition.realtime import Recognizer, run
    from recognition.recorder import FaceLog, Recorder
    from recognition.sources import Frame

    obama = np.asarray(Image.open(raw / "face_recognition" / "obama.jpg").convert("RGB"))

    def frames():
        for i in range(100):
            if i == 5:
                raise KeyboardInterrupt
            yield Frame(i, obama, 0.0)

    emb = load_model("sface", config.MODELS, device="cpu")
    rec = Recognizer(emb, Gallery([], np.zeros((0, 128), np.float32)), 0.363, DetectorConfig())
    s = run(frames(), rec, Recorder(tmp_path / "o.gif"), FaceLog(tmp_path / "l.csv"))
    assert s.stopped_by == "Ctrl+C" and s.frames == 5
    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.n_frames == 5
    with open(tmp_path / "l.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted({int(r["frame"]) for r in rows}) == [0, 1, 2, 3, 4]
    assert all(r["name"] == UNKNOWN and r["similarity"] == "" for r in rows)  # no gallery: no similarity


@pytest.mark.parametrize("args, message", [
    (["-cam=7"], "camera 7 does not open"),
    (["-cam={bad_video}"], "OpenCV cannot open this video"),
    (["-cam={missing}"], "no such file or folder"),
    (["-people_faces={missing}"], "gallery folder not found"),
    (["-people_faces={empty}"], "no images in the gallery"),
    (["-model_name=no-such-model"], "unknown model 'no-such-model'; valid: "),
    (["-model_name=ce-efficientnet"], "python train.py --recipe ce-efficientnet"),
    (["-model_name=dlib"], "has no measured threshold"),
    (["-output_path=out.avi"], "must end in .gif or .mp4"),
])
def test_bad_input_gets_a_clear_error(args, message, sample_data, tmp_path, capsys):
    bad_video = tmp_path / "clip.mp4"
    bad_video.write_bytes(b"this is not a video")
    (tmp_path / "empty").mkdir()
    fill = dict(bad_video=bad_video, missing=tmp_path / "missing", empty=tmp_path / "empty")
    base = {"-model_name": "sface", "-cam": str(sample_data / "sample_video.mp4"), "-people_faces": str(ROOT / "people_faces"),
            "-output_path": str(tmp_path / "o.gif")}
    for a in args:
        k, v = a.split("=", 1)
        base[k] = v.format(**fill)
    mod = load_script()
    rc = mod.main([f"{k}={v}" for k, v in base.items()] + ["--no-display", "--max-frames", "2", "--gallery-cache", "none"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "real-time-recognition: error:" in err and message in err, err


def test_gallery_images_without_a_face_are_reported_not_fatal(raw, sample_data, tmp_path, capsys):
    people = tmp_path / "people"
    people.mkdir()
    shutil.copy(ROOT / "people_faces" / "pyfeat_man.jpg", people / "pyfeat_man.jpg")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(people / "Nobody.jpg")
    (people / "Corrupt.jpg").write_bytes(b"\x89PNG broken")
    mod = load_script()
    rc = mod.main(["-model_name=sface", f"-cam={sample_data / 'sample_video.mp4'}", f"-people_faces={people}",
                   "-output_path=none", "--no-display", "--max-frames", "6", "--gallery-cache", "none"])
    out = capsys.readouterr()
    assert rc == 0
    assert "skipped" in out.err and "Nobody.jpg: no face found" in out.err and "Corrupt.jpg: cannot read" in out.err
    assert "pyfeat_man: named in 6 frames" in out.out


def test_batch_mode_writes_a_csv(raw, tmp_path, capsys):
    from recognition.batch import main

    photos = tmp_path / "photos"
    photos.mkdir()
    fr = raw / "face_recognition"
    shutil.copy(fr / "obama2.jpg", photos / "a.jpg")
    shutil.copy(fr / "biden.jpg", photos / "b.jpg")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(photos / "c.jpg")
    (photos / "d.jpg").write_bytes(b"junk")
    people = tmp_path / "people"
    people.mkdir()
    shutil.copy(fr / "obama.jpg", people / "Barack_Obama.jpg")
    rc = main([str(photos), "--model", "sface", "--people-faces", str(people), "--out", str(tmp_path / "r.csv"),
               "--gallery-cache", str(tmp_path / "cache")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    with open(tmp_path / "r.csv") as f:
        rows = {row["file"]: row for row in csv.DictReader(f)}
    assert rows["a.jpg"]["name"] == "Barack_Obama" and float(rows["a.jpg"]["similarity"]) > 0.363
    assert rows["b.jpg"]["name"] == UNKNOWN
    assert rows["c.jpg"]["status"] == "no_face" and rows["d.jpg"]["status"].startswith("unreadable")
    assert "a.jpg,Barack_Obama" in out.out


def test_threaded_reader_drops_stale_live_frames_and_keeps_every_file_frame():
    import time

    from recognition.sources import Frame, FrameSource, ThreadedReader

    class Fake(FrameSource):
        def __init__(self, live: bool) -> None:
            self.live = live

        def frames(self):
            for i in range(40):
                time.sleep(0.002)  # a camera giving a frame every 2 ms
                yield Frame(i, np.zeros((4, 4, 3), np.uint8), time.perf_counter())

    live = ThreadedReader(Fake(live=True))
    got = []
    for f in live:
        got.append(f.index)
        time.sleep(0.02)  # recognition is 10x slower than the camera
    live.close()
    assert got[-1] == 39 and len(got) < 20 and live.dropped == 40 - len(got)
    assert got == sorted(got)  # never an older frame after a newer one

    files = ThreadedReader(Fake(live=False))
    got = [f.index for f in files]
    files.close()
    assert got == list(range(40)) and files.dropped == 0


def test_a_reader_error_reaches_the_loop():
    from recognition.sources import FrameSource, ThreadedReader

    class Broken(FrameSource):
        def frames(self):
            raise OSError("the camera was unplugged")
            yield

    with pytest.raises(OSError, match="unplugged"):
        list(ThreadedReader(Broken()))


def test_display_without_window_support_is_refused(sample_data, tmp_path, capsys):
    mod = load_script()
    if mod._gui_available():
        pytest.skip("this machine can open windows")
    rc = mod.main(["-model_name=sface", f"-cam={sample_data / 'sample_video.mp4'}", "-output_path=none", "--display"])
    assert rc == 2 and "--display: this OpenCV build has no window support" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, words", [({"frame_ms": 0}, "frame_ms 0: must be at least 1"),
                                           ({"max_side_px": 1}, "max_side_px 1: must be at least 2"),
                                           ({"every": 0}, "every 0: must be at least 1")])
def test_recorder_names_its_own_parameters_not_the_command_lines_flags(kwargs, words, tmp_path):
    from facedata.errors import UsageError
    from recognition.recorder import Recorder

    with pytest.raises(UsageError) as caught:
        Recorder(tmp_path / "o.gif", **kwargs)
    assert str(caught.value) == words  # a library caller passed no --flag
    assert not (tmp_path / "o.gif").exists()
