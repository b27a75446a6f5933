"""The folder-alignment CLI on real faces and bad files: manifest, resume, interruption, source untouched."""
from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedata.errors import DatasetError
from facedata.io import load_image
from facedata.prepare import MANIFEST_FIELDS, PrepareConfig, main, prepare_folder, read_manifest


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture()
def source(tmp_path, sample_data) -> Path:
    """LFW-style folder: two real people, a multi-face photo, a faceless frame and every kind of bad file."""
    ids = sample_data / "sample_identities"
    src = tmp_path / "src"
    for name in ("Barack_Obama", "pyfeat_woman"):
        (src / name).mkdir(parents=True)
        for p in sorted((ids / name).glob("*.jpg"))[:3]:
            shutil.copy(p, src / name / p.name)
    bad = src / "Bad_Files"
    bad.mkdir()
    (bad / "Bad_Files_0001.jpg").write_bytes(b"")
    (bad / "Bad_Files_0002.jpg").write_text("not a jpeg\n")
    data = (ids / "Barack_Obama" / "Barack_Obama_0001.jpg").read_bytes()
    (bad / "Bad_Files_0003.jpg").write_bytes(data[: len(data) // 3])
    Image.new("L", (8000, 8000)).save(bad / "Bad_Files_0004.png")
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(bad / "Bad_Files_0005.jpg")  # no face
    shutil.copy(sample_data / "raw" / "pyfeat" / "multi_face.jpg", bad / "Bad_Files_0006.jpg")
    return src


def _rows(dst: Path) -> dict[str, dict]:
    with open(dst / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len({r["source"] for r in rows}), "a source has two manifest rows"
    return {r["source"]: r for r in rows}


def test_aligns_folder_and_records_every_file(source, tmp_path):
    before = _tree_hash(source)
    dst = tmp_path / "aligned"
    result = prepare_folder(source, dst, workers=2, progress=False)
    assert _tree_hash(source) == before  # the source is never modified
    rows = _rows(dst)
    assert len(rows) == 12 and sum(result.counts.values()) == 12
    status = {k: r["status"] for k, r in rows.items()}
    assert status["Bad_Files/Bad_Files_0001.jpg"] == "unreadable"
    assert "empty file" in rows["Bad_Files/Bad_Files_0001.jpg"]["reason"]
    assert "not an image" in rows["Bad_Files/Bad_Files_0002.jpg"]["reason"]
    assert "corrupt or truncated" in rows["Bad_Files/Bad_Files_0003.jpg"]["reason"]
    assert status["Bad_Files/Bad_Files_0004.png"] == "too_large"
    assert "8000x8000" in rows["Bad_Files/Bad_Files_0004.png"]["reason"]
    assert status["Bad_Files/Bad_Files_0005.jpg"] == "no_face"
    multi = rows["Bad_Files/Bad_Files_0006.jpg"]
    assert multi["status"] == "ok" and int(multi["n_faces"]) >= 4 and "largest, most central" in multi["reason"]
    for name in ("Barack_Obama", "pyfeat_woman"):
        for k in (k for k in rows if k.startswith(name)):
            r = rows[k]
            assert r["status"] == "ok", r
            crop = load_image(dst / r["output"])
            assert crop.shape == (112, 112, 3)
            assert len(r["landmarks"].split()) == 10 and float(r["score"]) > 0.9
    assert set(rows[next(iter(rows))]) == set(MANIFEST_FIELDS)
    assert not list(dst.rglob("*.tmp")) and not list(dst.rglob(".*.tmp"))


def test_resume_skips_finished_files(source, tmp_path):
    dst = tmp_path / "aligned"
    first = prepare_folder(source, dst, workers=0, progress=False, limit=8)  # 6 bad files, 2 of Obama
    assert sum(first.counts.values()) == 8 and first.skipped == 0  # the 4 left by the limit are not "done"
    crop = dst / "Barack_Obama" / "Barack_Obama_0001.jpg"
    mtime = crop.stat().st_mtime_ns
    second = prepare_folder(source, dst, workers=0, progress=False)
    assert second.skipped == 8 and sum(second.counts.values()) == 4
    assert crop.stat().st_mtime_ns == mtime  # finished crops are not redone
    assert len(_rows(dst)) == 12
    third = prepare_folder(source, dst, workers=0, progress=False)
    assert sum(third.counts.values()) == 0 and third.skipped == 12
    retry = prepare_folder(source, dst, workers=0, progress=False, retry_failed=True)
    assert sum(retry.counts.values()) == 5  # the five failed files are tried again, and fail again
    rows = read_manifest(dst / "manifest.csv")  # a retried file's newest row wins
    assert len(rows) == 12 and sum(r["status"] != "ok" for r in rows.values()) == 5


def test_interrupted_run_resumes_from_partial_manifest(source, tmp_path):
    dst = tmp_path / "aligned"
    prepare_folder(source, dst, workers=0, progress=False, limit=3)
    with open(dst / "manifest.csv", "a") as fh:  # a crash mid-row
        fh.write("Barack_Obama/Barack_Obama_0003.jpg,Barack_Obama/Barack_Ob")
    rows = read_manifest(dst / "manifest.csv")
    assert len(rows) == 3
    result = prepare_folder(source, dst, workers=0, progress=False)
    assert result.skipped == 3 and sum(result.counts.values()) == 9
    assert len(_rows(dst)) == 12


def test_deleted_crop_is_redone(source, tmp_path):
    dst = tmp_path / "aligned"
    prepare_folder(source, dst, workers=0, progress=False)
    victim = dst / "Barack_Obama" / "Barack_Obama_0001.jpg"
    victim.unlink()
    result = prepare_folder(source, dst, workers=0, progress=False)
    assert result.counts["ok"] == 1 and victim.exists()


def test_changed_settings_refuse_to_mix(source, tmp_path):
    dst = tmp_path / "aligned"
    prepare_folder(source, dst, workers=0, progress=False, limit=1)
    with pytest.raises(DatasetError, match="prepared with other settings"):
        prepare_folder(source, dst, PrepareConfig(size_px=160), workers=0, progress=False)


def test_cli_errors_name_the_folder(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "nope: source folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "empty: folder is empty" in capsys.readouterr().err
    (tmp_path / "empty" / "x").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "empty" / "x" / "out"), "--no-progress"]) == 2
    assert "inside the source" in capsys.readouterr().err
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.jpg").write_text("x")
    assert main([str(tmp_path / "one"), str(tmp_path / "out2"), "--method", "nope", "--no-progress"]) == 2
    assert "valid: arcface, box, eye_rotation" in capsys.readouterr().err


def test_cli_runs_with_other_alignment(source, tmp_path, capsys):
    assert main([str(source), str(tmp_path / "out"), "--method", "eye_rotation", "--size", "160",
                 "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "12 images" in out and "ok 7" in out
    crop = load_image(tmp_path / "out" / "Barack_Obama" / "Barack_Obama_0001.jpg")
    assert crop.shape == (160, 160, 3)


def test_output_name_collision_is_refused(tmp_path):
    (tmp_path / "src" / "A").mkdir(parents=True)
    (tmp_path / "src" / "A" / "A_0001.jpg").write_bytes(b"x")
    (tmp_path / "src" / "A" / "A_0001.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="A_0001.png would both become .*A_0001.jpg; rename one"):
        prepare_folder(tmp_path / "src", tmp_path / "out", workers=0, progress=False)


def test_hints_fallback_keeps_every_image_on_its_hint_box(sample_data, tmp_path):
    """--fallback hints: the detection on the hint box is kept; a photo without a detectable face gets the
    hint's own landmarks (CFP's, from its fiducials); the manifest says which."""
    import cv2

    src = tmp_path / "src" / "p"
    src.mkdir(parents=True)
    shutil.copy(sample_data / "raw" / "face_recognition" / "obama.jpg", src / "obama.jpg")
    cap = cv2.VideoCapture(str(sample_data / "raw" / "pyfeat" / "no_face.mp4"))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(src / "empty.jpg"), bgr)
    h, w = bgr.shape[:2]
    lm = [w * 0.4, h * 0.4, w * 0.6, h * 0.4, w * 0.5, h * 0.5, w * 0.42, h * 0.6, w * 0.58, h * 0.6]
    hints = tmp_path / "hints.csv"
    hints.write_text("source,x1,y1,x2,y2,landmarks\n"
                     "p/obama.jpg,350,150,750,600,\n"  # around Obama's face (obama.jpg is 910 x 1137)
                     f"p/empty.jpg,{w * 0.3},{h * 0.3},{w * 0.7},{h * 0.7}," + " ".join(f"{v:.2f}" for v in lm) + "\n")
    out = tmp_path / "out"
    prepare_folder(tmp_path / "src", out, PrepareConfig(fallback="hints", hints=str(hints)), workers=0, progress=False)
    rows = read_manifest(out / "manifest.csv")
    assert rows["p/obama.jpg"]["method"] == "mtcnn"
    empty = rows["p/empty.jpg"]
    assert empty["status"] == "ok" and empty["method"] == "hint_template"
    assert np.allclose([float(v) for v in empty["landmarks"].split()], lm, atol=0.01)
    # a hint box elsewhere than the face: the detection is not the labelled face, so the template is used
    hints.write_text("source,x1,y1,x2,y2\np/obama.jpg,0,950,200,1137\n")
    out2 = tmp_path / "out2"
    prepare_folder(tmp_path / "src", out2, PrepareConfig(fallback="hints", hints=str(hints)), workers=0, progress=False)
    assert read_manifest(out2 / "manifest.csv")["p/obama.jpg"]["method"] == "hint_template"
    # bad hints are refused before any image, naming the file and line
    hints.write_text("source,x1,y1,x2,y2\np/obama.jpg,zero,0,10,10\n")
    with pytest.raises(DatasetError, match=r"hints.csv:2: box values must be numbers"):
        prepare_folder(tmp_path / "src", tmp_path / "out3", PrepareConfig(fallback="hints", hints=str(hints)),
                       workers=0, progress=False)
    hints.write_text("source,x1,y1,x2,y2\nImages/p/obama.jpg,0,0,10,10\n")  # written for another folder
    with pytest.raises(DatasetError, match="names none of the 2 files"):
        prepare_folder(tmp_path / "src", tmp_path / "out3", PrepareConfig(fallback="hints", hints=str(hints)),
                       workers=0, progress=False)
    with pytest.raises(DatasetError, match="not a UTF-8 CSV"):  # an image passed as the hints file
        prepare_folder(tmp_path / "src", tmp_path / "out3", PrepareConfig(fallback="hints", hints=str(src / "obama.jpg")),
                       workers=0, progress=False)
    with pytest.raises(DatasetError, match="--fallback hints and --hints FILE go together"):
        PrepareConfig(fallback="hints")


def test_a_folder_prepared_before_a_setting_existed_resumes(sample_data, tmp_path):
    """prepare.json written before a setting was added (top-level or the detector's, like pad_frac) reads
    that setting as its default, so an existing aligned folder resumes; a changed setting is still refused."""
    import json

    src = tmp_path / "src" / "Barack_Obama"
    src.mkdir(parents=True)
    shutil.copy(sample_data / "raw" / "face_recognition" / "obama.jpg", src / "a.jpg")
    out = tmp_path / "out"
    prepare_folder(tmp_path / "src", out, workers=0, progress=False)
    spec = json.loads((out / "prepare.json").read_text())
    del spec["detector"]["pad_frac"], spec["hints"]  # as an older version wrote it
    (out / "prepare.json").write_text(json.dumps(spec))
    assert prepare_folder(tmp_path / "src", out, workers=0, progress=False).skipped == 1
    from facedata.detect import DetectorConfig

    with pytest.raises(DatasetError, match="other settings"):
        prepare_folder(tmp_path / "src", out, PrepareConfig(detector=DetectorConfig(pad_frac=0.3)), workers=0,
                       progress=False)
