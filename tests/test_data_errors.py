"""Issue 19, the data side: a bad input to prepare, fetch, sample_data or describe ends in one
``<prog>: error:`` line and exit 2, or in the right result; never a traceback, a hang or a silent wrong
result. Commands are called in-process (``main(argv)``); images are the real sample faces."""
from __future__ import annotations

import csv
import hashlib
import multiprocessing
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedata.describe import main as describe_main
from facedata.fetch import FetchError, fetch_celeba_subset
from facedata.fetch import main as fetch_main
from facedata.io import _temp_next_to, leftover_temps, write_bytes_atomic
from facedata.prepare import main as prepare_main
from facedata.prepare import read_manifest
from facedata.sample_data import main as sample_data_main


def one_error(capsys, prog: str) -> str:
    """The command's stderr, checked to be exactly one ``python -m facedata.<prog>: error:`` line."""
    err = capsys.readouterr().err
    assert err.startswith(f"python -m facedata.{prog}: error: ") and err.count("\n") == 1, err
    return err


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture()
def photos(raw, tmp_path) -> Path:
    """Two real people, one photo each, in the <identity>/<image> layout."""
    src = tmp_path / "photos"
    for name, f in (("Barack_Obama", "obama.jpg"), ("Joe_Biden", "biden.jpg")):
        (src / name).mkdir(parents=True)
        shutil.copy(raw / "face_recognition" / f, src / name / f"{name}_0001.jpg")
    return src


def prepare(src: Path, dst: Path | str, *extra: str) -> int:
    return prepare_main([str(src), str(dst), "--workers", "0", "--no-progress", *extra])


# --- prepare: what is already in the destination ------------------------------------------------------------
@pytest.mark.parametrize("content", [np.random.default_rng(19).bytes(3000), b"name,age\nBob,3\n"],
                         ids=["random-bytes", "another-csv"])
def test_a_manifest_that_is_not_one_is_refused_and_left_as_it_is(content, photos, tmp_path, capsys):
    """Random bytes used to end in a UnicodeDecodeError traceback; another CSV was rewritten with
    prepare's header (the user's file lost) before its rows were found missing."""
    dst = tmp_path / "aligned"
    dst.mkdir()
    (dst / "manifest.csv").write_bytes(content)
    assert prepare(photos, dst) == 2
    err = one_error(capsys, "prepare")
    assert f"{dst / 'manifest.csv'}: not a manifest written by `python -m facedata.prepare`" in err
    assert "move manifest.csv away" in err
    assert tree(dst) == {".lock": tree(dst)[".lock"], "manifest.csv": hashlib.sha256(content).hexdigest()}


def test_a_settings_file_that_is_not_json_is_refused(photos, tmp_path, capsys):
    dst = tmp_path / "aligned"
    dst.mkdir()
    (dst / "prepare.json").write_text('{"method": "arcface", ')  # cut short
    assert prepare(photos, dst) == 2
    err = one_error(capsys, "prepare")
    assert f"{dst / 'prepare.json'}: not the settings file prepare writes (not JSON: " in err
    assert (dst / "prepare.json").read_text() == '{"method": "arcface", ' and not (dst / "manifest.csv").exists()


# --- prepare: bad values and destinations -----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_max_megapixels_must_be_a_positive_finite_number(value, photos, tmp_path, capsys):
    assert prepare(photos, tmp_path / "aligned", "--max-megapixels", value) == 2
    assert f"--max-megapixels {float(value)}: must be a positive" in one_error(capsys, "prepare")
    assert not (tmp_path / "aligned").exists()


@pytest.mark.parametrize("value", ["-1", "0"])
def test_limit_below_one_is_refused(value, photos, tmp_path, capsys):
    """--limit -1 used to align every image but the last."""
    assert prepare(photos, tmp_path / "aligned", "--limit", value) == 2
    assert f"--limit {value}: must be a whole number of images >= 1" in one_error(capsys, "prepare")
    assert not (tmp_path / "aligned").exists()


def test_a_destination_name_longer_than_the_file_system_allows(photos, tmp_path, capsys):
    dst = tmp_path / ("d" * 300)
    assert prepare(photos, dst) == 2
    assert "File name too long" in one_error(capsys, "prepare")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")
def test_a_destination_the_os_refuses_to_create(photos, capsys):
    """Under /sys mkdir fails with EPERM even for root, whom os.access lets through."""
    assert prepare(photos, "/sys/facekit_aligned") == 2
    assert "/sys/facekit_aligned" in one_error(capsys, "prepare")
    assert not Path("/sys/facekit_aligned").exists()


# --- prepare: source files and folders ------------------------------------------------------------------------
def test_a_symlinked_identity_folder_is_aligned_and_a_loop_refused(raw, tmp_path, capsys):
    """A linked identity folder used to be skipped without a word; it is followed. A link back to a folder
    already read (here the source itself) would align images twice or loop: refused, naming both paths."""
    src, elsewhere = tmp_path / "src", tmp_path / "elsewhere" / "Joe_Biden"
    (src / "Barack_Obama").mkdir(parents=True)
    elsewhere.mkdir(parents=True)
    shutil.copy(raw / "face_recognition" / "obama.jpg", src / "Barack_Obama" / "obama.jpg")
    shutil.copy(raw / "face_recognition" / "biden.jpg", elsewhere / "biden.jpg")
    (src / "Joe_Biden").symlink_to(elsewhere, target_is_directory=True)
    assert prepare(src, tmp_path / "aligned") == 0
    rows = read_manifest(tmp_path / "aligned" / "manifest.csv")
    assert sorted(rows) == ["Barack_Obama/obama.jpg", "Joe_Biden/biden.jpg"]
    assert rows["Joe_Biden/biden.jpg"]["status"] == "ok" and (tmp_path / "aligned" / "Joe_Biden" / "biden.jpg").is_file()
    capsys.readouterr()
    (src / "Barack_Obama" / "again").symlink_to(src, target_is_directory=True)
    assert prepare(src, tmp_path / "aligned2") == 2
    err = one_error(capsys, "prepare")
    assert f"{src} and {src / 'Barack_Obama' / 'again'} are the same folder" in err and "remove the link" in err


def test_a_photo_with_a_250_character_name_is_aligned(raw, tmp_path):
    """Its hidden temporary crop (18 characters longer) used to fail as "File name too long"."""
    name = "o" * 246 + ".jpg"
    (tmp_path / "src" / "Barack_Obama").mkdir(parents=True)
    shutil.copy(raw / "face_recognition" / "obama.jpg", tmp_path / "src" / "Barack_Obama" / name)
    assert prepare(tmp_path / "src", tmp_path / "aligned") == 0
    row = read_manifest(tmp_path / "aligned" / "manifest.csv")[f"Barack_Obama/{name}"]
    assert row["status"] == "ok", row
    crop = tmp_path / "aligned" / "Barack_Obama" / name
    assert Image.open(crop).size == (112, 112) and leftover_temps(crop) == []


def test_temporary_names_of_a_255_byte_name_fit_and_are_found(tmp_path):
    path = tmp_path / ("é" * 126 + "abc")  # 255 bytes in UTF-8, 129 characters
    assert len(os.fsencode(path.name)) == 255
    write_bytes_atomic(b"data", path)
    assert path.read_bytes() == b"data" and leftover_temps(path) == []
    spool = _temp_next_to(path, ".tmp.gif")  # what a killed writer leaves behind
    assert len(os.fsencode(spool.name)) <= 255 and spool.name.endswith(".tmp.gif")
    assert leftover_temps(path) == [spool]


@pytest.mark.slow  # aligns about 20 real photos twice with two worker processes
@pytest.mark.timeout(300)  # the bug was a hang: fail, not wait for ever
def test_a_killed_worker_fails_the_run_and_the_same_command_finishes_it(sample_data, tmp_path, capsys):
    """One worker killed with SIGKILL (as the out-of-memory killer does) mid-run: multiprocessing.Pool
    started another but never redid the dead one's images, and the run waited for ever. Now the run stops
    with a named error, keeps the finished rows, and the same command does the rest."""
    src = tmp_path / "src"
    ids = sample_data / "sample_identities"
    for name, n in (("Barack_Obama", 5), ("pyfeat_man", 8), ("pyfeat_woman", 8)):
        (src / name).mkdir(parents=True)
        for f in sorted((ids / name).glob("*.jpg"))[:n]:
            shutil.copy(f, src / name / f.name)
    dst = tmp_path / "aligned"
    manifest = dst / "manifest.csv"
    killed: list[int] = []

    def kill_a_worker_after_the_first_row() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            workers = multiprocessing.active_children()
            if workers and manifest.is_file() and manifest.read_text().count("\n") >= 2:  # header + one row
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_a_worker_after_the_first_row, daemon=True)
    watcher.start()
    command = [str(src), str(dst), "--workers", "2", "--no-progress"]
    assert prepare_main(command) == 2
    watcher.join()
    assert killed
    err = one_error(capsys, "prepare")
    assert "a worker process died (killed by SIGKILL; the out-of-memory killer sends it)" in err
    assert f"are in {manifest}: run the same command again to do the rest" in err
    finished = read_manifest(manifest)
    assert 1 <= len(finished) < 21 and all(r["status"] == "ok" for r in finished.values())
    assert prepare_main(command) == 0
    assert f"{len(finished)} already done" in capsys.readouterr().out
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len({r["source"] for r in rows}) == 21 and all(r["status"] == "ok" for r in rows)


# --- fetch ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["lfw", "fiw"])
def test_a_dest_under_a_file_is_named(dataset, photos, tmp_path, capsys):
    """It used to say "[Errno 17] File exists: '/dev/null'"."""
    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a folder\n")
    for under in (Path("/dev/null"), notes):
        assert fetch_main([dataset, "--from", str(photos), "--dest", str(under / dataset)]) == 2
        err = one_error(capsys, "fetch")
        assert f"--dest {under / dataset}: {under} is a file, not a folder" in err
    assert notes.read_text() == "a file, not a folder\n"


def test_built_celeba_subset_crops_are_checked_before_they_are_copied(obama, tmp_path):
    """A corrupt crop used to be copied as it was, and a second run then found the subset complete."""
    subset = tmp_path / "subset.csv"
    subset.write_text("identity,source_file,face_box_xyxy_in_source,status\n"
                      "id00000,000000.jpg,1 2 3 4,ok\nid00001,000001.jpg,1 2 3 4,ok\n")
    built = tmp_path / "built"
    for ident in ("id00000", "id00001"):
        (built / ident).mkdir(parents=True)
    Image.fromarray(obama).resize((250, 250)).save(built / "id00000" / "000000.jpg", quality=85)
    good = (built / "id00000" / "000000.jpg").read_bytes()
    (built / "id00001" / "000001.jpg").write_bytes(good[: len(good) // 2])  # cut short
    with pytest.raises(FetchError, match=r"000001.jpg: corrupt or truncated image data .*must be a readable image"):
        fetch_celeba_subset(tmp_path / "dest", built, subset)
    assert not (tmp_path / "dest" / "id00001").exists() or not any((tmp_path / "dest" / "id00001").iterdir())
    Image.fromarray(obama).save(built / "id00001" / "000001.jpg")  # decodes, but not a 250x250 crop
    with pytest.raises(FetchError, match=r"000001.jpg: 910x1137 pixels, not the subset's 250x250 crops"):
        fetch_celeba_subset(tmp_path / "dest", built, subset)
    shutil.copy(built / "id00000" / "000000.jpg", built / "id00001" / "000001.jpg")
    assert fetch_celeba_subset(tmp_path / "dest", built, subset) == 2
    assert (tmp_path / "dest" / "id00001" / "000001.jpg").read_bytes() == good


LFW = Path(__file__).resolve().parents[1] / "data" / "lfw"


@pytest.mark.parametrize("source", ["photos", "lfw"])
def test_fetch_lfw_never_deletes_a_users_dest(source, photos, tmp_path, capsys):
    """A DEST of the user's own files (here one that looks like a half-made LFW) is refused and left
    byte for byte as it was, whatever --from holds: a folder that is not LFW, or a complete LFW."""
    if source == "lfw" and not (LFW / "lfw-names.txt").is_file():
        pytest.skip("needs the complete LFW in data/lfw (make lfw)")
    dest = tmp_path / "lfw"
    (dest / "lfw-deepfunneled" / "Barack_Obama").mkdir(parents=True)
    shutil.copy(photos / "Barack_Obama" / "Barack_Obama_0001.jpg", dest / "lfw-deepfunneled" / "Barack_Obama")
    (dest / "pairs.txt").write_text("my own pairs\n")
    (dest / "notes.txt").write_text("mine\n")
    before = tree(dest)
    assert fetch_main(["lfw", "--from", str(photos if source == "photos" else LFW), "--dest", str(dest)]) == 2
    assert "holds files fetch did not put there (lfw-deepfunneled, notes.txt, pairs.txt)" in one_error(capsys, "fetch")
    assert tree(dest) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".lfw.")] == []  # no staging left behind


# --- sample_data, describe -------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["--data-dir", "--gallery-dir"])
def test_sample_data_folders_under_a_file_are_named_before_any_download(option, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    target = tmp_path / "notes.txt" / "data"
    assert sample_data_main([option, str(target)]) == 2
    assert f"{option} {target}: {tmp_path / 'notes.txt'} is a file, not a folder" in one_error(capsys, "sample_data")


@pytest.mark.parametrize("option, value", [("--max-classes", "0"), ("--min-images", "0"), ("--seed", "-1")])
def test_describe_names_the_option_at_fault(option, value, small_aligned, capsys):
    """--max-classes 0 used to be blamed on min_images_per_class."""
    assert describe_main([str(small_aligned), option, value]) == 2
    err = one_error(capsys, "describe")
    assert f"{option} {value}: must be a whole number" in err and "min_images_per_class" not in err
