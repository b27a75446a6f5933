"""fetch fiw / celeba-aligned from small fake copies of real faces, and what every fetch shares: a DEST
holding a user's files is refused (LFW too), a fetched DEST may be replaced, archives are read."""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from facedata.celeba_aligned import IDENTITY_FILE, check_celeba_aligned, fetch_celeba_aligned
from facedata.fetch import FETCHED_MARK, FetchError, fetch_lfw, main, place
from facedata.fiw import check_fiw, fetch_fiw


@pytest.fixture(scope="module")
def faces(sample_data: Path) -> list[Path]:
    """Five different real face photos."""
    return sorted((sample_data / "sample_identities" / "Barack_Obama").glob("*.jpg"))[:5]


# --- FIW ----------------------------------------------------------------------------------------------------
def make_fiw(root: Path, faces: list[Path], relationships: bool = True) -> Path:
    """2 families, 3 people, 4 images (one a byte-identical copy of another), 2 kin pairs of which one names
    a person without a folder."""
    layout = {"F0001/MID1": [faces[0], faces[1]], "F0001/MID2": [faces[2]], "F0002/MID1": [faces[0]]}
    for person, files in layout.items():
        (root / "train" / person).mkdir(parents=True)
        for i, f in enumerate(files):
            shutil.copy(f, root / "train" / person / f"P{i:05d}_face{i}.jpg")
    if relationships:
        (root / "train_relationships.csv").write_text("p1,p2\nF0001/MID1,F0001/MID2\nF0002/MID1,F0002/MID3\n")
    (root / "test").mkdir()  # the competition's test faces: not part of the copy
    return root


def test_fiw_counts_by_hand_and_a_second_run_finds_it_done(faces, tmp_path, capsys):
    src = make_fiw(tmp_path / "kaggle", faces)
    dest = tmp_path / "fiw"
    assert main(["fiw", "--from", str(src), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "FIW ready in" in out
    assert "2 families, 3 people, 4 images; 1 people with >= 2 images, 0 with >= 5" in out
    assert "2 kin pairs in train_relationships.csv (1 people named there have no folder)" in out
    assert "1 images are byte-identical copies of another" in out
    assert (dest / "train/F0001/MID1/P00001_face1.jpg").is_file() and not (dest / "test").exists()
    assert main(["fiw", "--dest", str(dest)]) == 0  # no --from needed once it is there
    assert "FIW already in" in capsys.readouterr().out


def test_fiw_from_the_kaggle_zip_with_train_zip_inside(faces, tmp_path):
    src = make_fiw(tmp_path / "kaggle", faces)
    with zipfile.ZipFile(tmp_path / "kaggle" / "train.zip", "w") as z:
        for f in sorted((src / "train").rglob("*.jpg")):
            z.write(f, f.relative_to(src / "train"))  # Kaggle's train.zip: F####/... at the top
    shutil.rmtree(src / "train")
    outer = tmp_path / "recognizing-faces-in-the-wild.zip"
    with zipfile.ZipFile(outer, "w") as z:
        for f in (src / "train.zip", src / "train_relationships.csv"):
            z.write(f, f.name)
    r = fetch_fiw(tmp_path / "fiw", outer)
    assert not r.already and (r.counts["families"], r.counts["people"], r.counts["images"]) == (2, 3, 4)
    assert check_fiw(tmp_path / "fiw")["duplicate_images"] == 1


def test_fiw_errors_name_what_is_wrong(faces, tmp_path, capsys):
    src = make_fiw(tmp_path / "kaggle", faces, relationships=False)
    assert main(["fiw", "--from", str(src), "--dest", str(tmp_path / "fiw")]) == 2
    err = capsys.readouterr().err
    assert "train_relationships.csv: not found" in err and str(src) in err and not (tmp_path / "fiw").exists()
    (src / "train_relationships.csv").write_text("p1,p2\nF0001/MID1;F0001/MID2\n")
    with pytest.raises(FetchError, match=r"train_relationships.csv:2: expected 'F####/MID#,F####/MID#'"):
        check_fiw(src)
    (src / "train_relationships.csv").write_text("p1,p2\n")
    (src / "train" / "family3").mkdir()
    with pytest.raises(FetchError, match=r"1 entries are not family folders F#### \(family3\)"):
        check_fiw(src)
    # offline, no --from: where to get it
    assert main(["fiw", "--dest", str(tmp_path / "fiw")]) == 2
    err = capsys.readouterr().err
    assert "recognizing-faces-in-the-wild" in err and "RFIW" in err and "--from" in err


# --- CelebA aligned ----------------------------------------------------------------------------------------
def make_celeba(root: Path, faces: list[Path], identity_lines: list[str] | None = None) -> Path:
    """img_align_celeba/000001..000004.jpg and, beside it, identity_CelebA.txt (with a header, CRLF)."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    for i, f in enumerate(faces[:4], 1):
        shutil.copy(f, images / f"{i:06d}.jpg")
    lines = identity_lines or ["img label", "000001.jpg 2880", "000002.jpg 2937", "000003.jpg 2880", "000004.jpg 7",
                               "000005.jpg 7"]
    (root / IDENTITY_FILE).write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return root


def test_celeba_aligned_grouped_by_identity_partial_reported(faces, tmp_path, capsys):
    src = make_celeba(tmp_path / "CelebA", faces)
    dest = tmp_path / "celeba"
    assert main(["celeba-aligned", "--from", str(src / "img_align_celeba"), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "4 images of 3 identities (partial copy: 4 of 202599 published images)" in out
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.jpg")) == [
        "id00007/000004.jpg", "id02880/000001.jpg", "id02880/000003.jpg", "id02937/000002.jpg"]
    assert (dest / IDENTITY_FILE).read_bytes() == (src / IDENTITY_FILE).read_bytes()
    assert check_celeba_aligned(dest)["partial"] == 1
    assert main(["celeba-aligned", "--from", str(src), "--dest", str(dest)]) == 0
    assert "CelebA aligned already in" in capsys.readouterr().out
    # a fuller copy replaces the partial one fetch made
    shutil.copy(faces[4], src / "img_align_celeba" / "000005.jpg")
    r = fetch_celeba_aligned(dest, src)
    assert not r.already and r.counts["images"] == 5 and (dest / "id00007" / "000005.jpg").is_file()


def test_celeba_identity_file_must_cover_every_image(faces, tmp_path, capsys):
    src = make_celeba(tmp_path / "CelebA", faces, ["000001.jpg 2880", "000003.jpg 2880"])
    assert main(["celeba-aligned", "--from", str(src), "--identities", str(src / IDENTITY_FILE),
                 "--dest", str(tmp_path / "celeba")]) == 2
    err = capsys.readouterr().err
    assert "2 images of" in err and "have no line in it (000002.jpg, 000004.jpg)" in err and "--identities" in err
    assert not (tmp_path / "celeba").exists()
    (src / IDENTITY_FILE).write_text("000001.jpg 2880\n000002.jpg x\n")
    with pytest.raises(FetchError, match=r"identity_CelebA.txt:2: expected 'NNNNNN.jpg IDENTITY'"):
        fetch_celeba_aligned(tmp_path / "celeba", src)
    assert main(["celeba-aligned", "--dest", str(tmp_path / "celeba")]) == 2
    err = capsys.readouterr().err
    assert "img_align_celeba.zip" in err and "Anno/identity_CelebA.txt" in err and "--from" in err


def test_celeba_from_a_zip(faces, tmp_path):
    src = make_celeba(tmp_path / "CelebA", faces)
    archive = tmp_path / "img_align_celeba.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((src / "img_align_celeba").iterdir()):
            z.write(f, f"img_align_celeba/{f.name}")
    r = fetch_celeba_aligned(tmp_path / "celeba", archive, src / IDENTITY_FILE)
    assert r.counts["images"] == 4 and r.counts["identities"] == 3
    # a partial copy fetch made gives way to a fuller archive (counted from its listing)
    smaller = tmp_path / "three.zip"
    with zipfile.ZipFile(smaller, "w") as z:
        for f in sorted((src / "img_align_celeba").iterdir())[:3]:
            z.write(f, f"img_align_celeba/{f.name}")
    part = fetch_celeba_aligned(tmp_path / "part", smaller, src / IDENTITY_FILE)
    assert part.counts["images"] == 3 and part.counts["partial"]
    again = fetch_celeba_aligned(tmp_path / "part", archive, src / IDENTITY_FILE)
    assert not again.already and again.counts["images"] == 4
    assert fetch_celeba_aligned(tmp_path / "part", smaller, src / IDENTITY_FILE).already  # never a smaller one


# --- what every fetch shares ---------------------------------------------------------------------------------
def test_a_dest_with_a_users_files_is_never_replaced(faces, tmp_path, capsys):
    src = make_celeba(tmp_path / "CelebA", faces)
    for dataset, source in (("celeba-aligned", src), ("fiw", make_fiw(tmp_path / "kaggle", faces))):
        dest = tmp_path / dataset
        dest.mkdir()
        (dest / "mine.txt").write_text("keep me")
        assert main([dataset, "--from", str(source), "--dest", str(dest)]) == 2
        err = capsys.readouterr().err
        assert f"{dest}: exists and holds files fetch did not put there (mine.txt)" in err
        assert [p.name for p in dest.iterdir()] == ["mine.txt"] and (dest / "mine.txt").read_text() == "keep me"
    # LFW: an incomplete DEST that fetch did not make is refused, not deleted (it used to be)
    lfw = tmp_path / "lfw"
    (lfw / "lfw-deepfunneled" / "Someone").mkdir(parents=True)
    (lfw / "pairs.txt").write_text("my own pairs\n")
    with pytest.raises(FetchError, match=r"holds files fetch did not put there \(lfw-deepfunneled, pairs.txt\)"):
        fetch_lfw(lfw, tmp_path / "nowhere")
    assert (lfw / "pairs.txt").read_text() == "my own pairs\n"
    # an empty DEST is fine
    (tmp_path / "empty").mkdir()
    assert fetch_celeba_aligned(tmp_path / "empty", src).counts["images"] == 4


def test_place_replaces_only_what_fetch_made(tmp_path):
    dest = tmp_path / "dest"
    for n, content in enumerate(("first", "second")):
        staged = tmp_path / f"staging{n}" / "new"
        staged.mkdir(parents=True)
        (staged / "data.txt").write_text(content)
        place(staged, dest, {"dataset": "test"})
        assert (dest / "data.txt").read_text() == content and (dest / FETCHED_MARK).is_file()
    (dest / "sub").mkdir()
    (dest / "sub" / "my_notes.txt").write_text("mine")  # a user's file inside a fetched folder: never replaced
    staged = tmp_path / "staging3" / "new"
    staged.mkdir(parents=True)
    with pytest.raises(FetchError, match=r"holds 1 files fetch did not put there \(sub/my_notes.txt\)"):
        place(staged, dest, {"dataset": "test"})
    assert (dest / "sub" / "my_notes.txt").read_text() == "mine"
    (dest / "sub" / "my_notes.txt").unlink()
    (dest / FETCHED_MARK).unlink()  # no longer known as fetch's
    staged = tmp_path / "staging2" / "new"
    staged.mkdir(parents=True)
    with pytest.raises(FetchError, match="did not put there"):
        place(staged, dest, {"dataset": "test"})
    assert (dest / "data.txt").read_text() == "second"


def test_bad_command_lines_exit_2(tmp_path, capsys):
    assert main(["cfp", "--identities", "x.txt", "--dest", str(tmp_path / "cfp")]) == 2
    assert "fetch: error: --identities goes with celeba-aligned" in capsys.readouterr().err
    assert main(["fiw", "--from", str(tmp_path / "nowhere"), "--dest", str(tmp_path / "fiw")]) == 2
    assert "nowhere: not found" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not an archive")
    assert main(["celeba-aligned", "--from", str(tmp_path / "notes.txt"), "--dest", str(tmp_path / "c")]) == 2
    assert "neither a folder nor a .zip / .tar archive" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "c")
