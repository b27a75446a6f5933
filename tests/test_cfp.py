"""CFP: the split parser on the real protocol files, fetch from a small fake copy (both layouts), face boxes
from the fiducials, and the FF / FP protocol for id_rate."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from facedata.cfp import (CFP_PEOPLE, FACE_BOXES, cfp_names, check_cfp, expected_images, fetch_cfp, parse_split,
                          write_face_boxes)
from facedata.fetch import FETCHED_MARK, FetchError, main
from facedata.io import save_image_atomic
from id_rate.evaluate import cfp_protocol
from id_rate.metrics import MetricError

# A real CFP copy (the official flat layout or split into train/test): FACEKIT_CFP_FROM, else data/cfp (make benchmarks).
REAL_CFP = Path(os.environ.get("FACEKIT_CFP_FROM", Path(__file__).resolve().parents[1] / "data" / "cfp"))
needs_real = pytest.mark.skipif(not (REAL_CFP / "Protocol" / "Split").is_dir(),
                                reason=f"needs a CFP copy: set FACEKIT_CFP_FROM (none at {REAL_CFP})")


@needs_real
def test_split_parser_on_the_real_protocol_files():
    ff, fp = parse_split(REAL_CFP, "FF"), parse_split(REAL_CFP, "FP")
    for pairs in (ff, fp):
        assert len(pairs) == 7000 and sum(p.same for p in pairs) == 3500
        assert np.bincount([p.fold for p in pairs]).tolist() == [700] * 10
        assert all(p.path1.split("/")[0] == p.path2.split("/")[0] for p in pairs if p.same)
        assert not any(p.path1.split("/")[0] == p.path2.split("/")[0] for p in pairs if not p.same)
    # FP/01/same.txt line 1 is "5,1": Pair_list_F line 5 and Pair_list_P line 1
    first_line = (REAL_CFP / "Protocol/Split/FP/01/same.txt").read_text().splitlines()[0]
    i, j = (int(v) for v in first_line.split(","))
    f_list = (REAL_CFP / "Protocol/Pair_list_F.txt").read_text().splitlines()
    p_list = (REAL_CFP / "Protocol/Pair_list_P.txt").read_text().splitlines()
    assert fp[0] == (0, f_list[i - 1].split("Data/Images/")[1], p_list[j - 1].split("Data/Images/")[1], True)
    assert all("/frontal/" in p.path1 and "/frontal/" in p.path2 for p in ff)
    assert all("/frontal/" in p.path1 and "/profile/" in p.path2 for p in fp)
    assert cfp_names(REAL_CFP)["001"] == "50 Cent" and len(cfp_names(REAL_CFP)) == 500
    counts = check_cfp(REAL_CFP)
    assert (counts["people"], counts["images"], counts["frontal"], counts["profile"]) == (500, 7000, 5000, 2000)


# --- a small fake copy: 500 people made of 3 real faces (hard links), valid protocol files ---------------------
def _fiducials(i: int) -> str:
    """30 points; image i's box is x 10..39, y 20..78 (x = 10 + k, y = 20 + 2k), one point off the image
    for image 0 (clipped)."""
    pts = [(10 + k, 20 + 2 * k) for k in range(30)]
    if i == 0:
        pts[0] = (-5.0, 20.0)
    return "\n".join(f"{x},{y}" for x, y in pts) + "\n"


def make_cfp(root: Path, faces: list[Path], split_layout: bool) -> Path:
    rels = expected_images()
    for n, rel in enumerate(rels):
        pid = rel[:3]
        sub = ("train" if int(pid) <= 450 else "test") if split_layout else ""
        target = root / "Data" / "Images" / sub / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(faces[n % len(faces)], target)
        fid = root / "Data" / "Fiducials" / rel[:-4]
        fid.parent.mkdir(parents=True, exist_ok=True)
        fid.with_suffix(".txt").write_text(_fiducials(n))
    (root / "Data" / "list_name.txt").write_text("".join(f"Person {k}\n" for k in range(1, CFP_PEOPLE + 1)))
    proto = root / "Protocol"
    (proto / "Split").mkdir(parents=True)
    frontal = [r for r in rels if "/frontal/" in r]
    profile = [r for r in rels if "/profile/" in r]
    for letter, lst in (("F", frontal), ("P", profile)):
        (proto / f"Pair_list_{letter}.txt").write_text(
            "".join(f"{k} ../Data/Images/{r}\n" for k, r in enumerate(lst, 1)))
    for kind in ("FF", "FP"):
        for fold in range(10):
            d = proto / "Split" / kind / f"{fold + 1:02d}"
            d.mkdir(parents=True)
            people = range(fold * 50, fold * 50 + 50)  # folds are identity-disjoint, as in CFP
            same, diff = [], []
            for k in range(350):
                p, q = people[k % 50], people[(k + 1) % 50]
                second = 4 if kind == "FP" else 10
                same.append(f"{p * 10 + 1 + k % 3},{p * second + 1 + (k // 50) % 3 + (kind == 'FF') * 5}")
                diff.append(f"{p * 10 + 1},{q * second + 1}")
            (d / "same.txt").write_text("\n".join(same) + "\n")
            (d / "diff.txt").write_text("\n".join(diff) + "\n")
    return root


@pytest.fixture(scope="module")
def faces(sample_data: Path, tmp_path_factory) -> list[Path]:
    """Three real faces, small (7,000 links of them make the fake copy)."""
    from facedata.io import load_image

    out = tmp_path_factory.mktemp("faces")
    src = sorted((sample_data / "sample_identities" / "Barack_Obama").glob("*.jpg"))[:3]
    paths = []
    for i, f in enumerate(src):
        img = load_image(f)[::4, ::4]  # a quarter of the side: small files
        save_image_atomic(np.ascontiguousarray(img), out / f"face{i}.jpg")
        paths.append(out / f"face{i}.jpg")
    return paths


@pytest.fixture(scope="module")
def fake_cfp(faces, tmp_path_factory) -> Path:
    return make_cfp(tmp_path_factory.mktemp("cfp_split") / "cfp-dataset", faces, split_layout=True)


def test_fetch_flattens_a_split_copy_writes_face_boxes_and_a_second_run_finds_it_done(fake_cfp, faces, tmp_path,
                                                                                         capsys):
    from PIL import Image

    dest = tmp_path / "cfp"
    assert main(["cfp", "--from", str(fake_cfp), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "CFP ready in" in out and "500 people, 7000 images (5000 frontal, 2000 profile)" in out
    assert (dest / "Data/Images/001/frontal/01.jpg").is_file() and (dest / "Data/Images/500/profile/04.jpg").is_file()
    assert not (dest / "Data/Images/train").exists() and (dest / FETCHED_MARK).is_file()
    assert len(parse_split(dest, "FP")) == 7000
    rows = (dest / FACE_BOXES).read_text().splitlines()
    assert rows[0] == "source,x1,y1,x2,y2,landmarks" and len(rows) == 7001
    w, h = Image.open(faces[1]).size
    assert rows[2].startswith(f"001/frontal/02.jpg,10.00,20.00,{min(39, w):.2f},{min(78, h):.2f},")  # x 10..39, y 20..78
    assert rows[1].startswith("001/frontal/01.jpg,0.00,20.00,")  # the point at x = -5 clipped to the image
    assert write_face_boxes(dest).read_text().splitlines() == rows  # the same boxes from the fetched copy
    inode = (dest / "Data/Images/001/frontal/01.jpg").stat().st_ino
    assert main(["cfp", "--from", str(fake_cfp), "--dest", str(dest)]) == 0
    assert "CFP already in" in capsys.readouterr().out
    assert (dest / "Data/Images/001/frontal/01.jpg").stat().st_ino == inode  # not rebuilt
    r = fetch_cfp(dest)  # no --from, no network needed: it is there
    assert r.already and r.counts["images"] == 7000


def test_a_copy_missing_an_image_or_a_split_file_is_named(fake_cfp, tmp_path, capsys):
    part = tmp_path / "part"
    shutil.copytree(fake_cfp, part, copy_function=os.link)
    (part / "Data/Images/test/499/profile/03.jpg").unlink()
    (part / "Protocol/Split/FP/07/diff.txt").unlink()
    dest = tmp_path / "cfp"
    assert main(["cfp", "--from", str(part), "--dest", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m facedata.fetch: error: ")
    assert "missing 1 images under Data/Images (499/profile/03.jpg)" in err
    assert "1 split files (Protocol/Split/FP/07/diff.txt)" in err
    assert "cfpw.io" in err and not dest.exists()  # what to do; nothing half-made in place
    with pytest.raises(FetchError, match=r"Split/FP/07/diff.txt"):
        parse_split(part, "FP")


def test_bad_protocol_lines_name_file_and_line(fake_cfp, tmp_path):
    part = tmp_path / "part"
    shutil.copytree(fake_cfp, part, copy_function=os.link)
    bad = part / "Protocol/Split/FF/02/same.txt"
    lines = bad.read_text().splitlines()
    bad.unlink()
    bad.write_text("\n".join(lines[:2] + ["12;3"] + lines[3:]) + "\n")
    with pytest.raises(FetchError, match=r"FF/02/same.txt:3: expected 'i,j'"):
        parse_split(part, "FF")
    bad.unlink()
    bad.write_text("\n".join(lines[:2] + ["12,5001"] + lines[3:]) + "\n")
    with pytest.raises(FetchError, match=r"FF/02/same.txt:3: image numbers 12,5001 outside Pair_list_F \(1-5000\)"):
        parse_split(part, "FF")
    bad.unlink()
    bad.write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(FetchError, match=r"FF/02/same.txt: 100 pairs, CFP's split files hold 350"):
        check_cfp(part)


def test_offline_without_from_names_the_archive_and_the_site(tmp_path):
    with pytest.raises(FetchError, match=r"cannot download CFP[\s\S]*cfp-dataset.zip[\s\S]*cfpw.io[\s\S]*--from"):
        fetch_cfp(tmp_path / "cfp", base_urls=("http://127.0.0.1:9/",))  # nothing listens on port 9
    assert not (tmp_path / "cfp").exists()


def test_dest_with_a_users_file_is_refused_and_the_file_survives(fake_cfp, tmp_path, capsys):
    dest = tmp_path / "cfp"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    assert main(["cfp", "--from", str(fake_cfp), "--dest", str(dest)]) == 2
    assert "holds files fetch did not put there (notes.txt)" in capsys.readouterr().err
    assert (dest / "notes.txt").read_text() == "mine" and sorted(p.name for p in dest.iterdir()) == ["notes.txt"]


# --- the protocol for id_rate ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flat_cfp(fake_cfp, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("flat") / "cfp"
    fetch_cfp(dest, fake_cfp)
    return dest


def test_cfp_protocol_pairs_folds_and_parts(flat_cfp, tmp_path):
    aligned = tmp_path / "aligned"
    shutil.copytree(flat_cfp / "Data/Images", aligned, copy_function=os.link)  # stands in for prepared crops
    p = cfp_protocol(flat_cfp, aligned, "FP")
    assert len(p.pairs.issame) == 7000 and p.pairs.issame.sum() == 3500 and p.pairs.n_missing == 0
    assert np.bincount(p.pairs.folds).tolist() == [700] * 10
    assert p.pairs.paths[0] == aligned / "001/frontal/01.jpg"
    assert len(p.pairs.paths) == 14000
    # 250 query people x (3 frontal + 3 profile); 250 distractor people x 14; gallery 250; searches: profiles
    assert (len(p.query), len(np.unique(p.query.labels)), len(p.distractor)) == (1500, 250, 3500)
    assert (len(p.gallery), len(p.mated), len(p.nonmated)) == (250, 1000, 1000)
    assert p.query.labels[0] == "Person_1" and not set(p.query.labels) & set(p.distractor.labels)
    ff = cfp_protocol(flat_cfp, aligned, "FF")
    assert all("/frontal/" in str(x) for x in ff.pairs.paths) and len(ff.distractor) == 2500
    # a missing aligned image: an error naming it, or its pairs counted wrong (never skipped)
    (aligned / "001/frontal/01.jpg").unlink()
    with pytest.raises(MetricError, match=r"1 image\(s\) of the CFP FP protocol are missing[\s\S]*001/frontal/01.jpg"):
        cfp_protocol(flat_cfp, aligned, "FP")
    p = cfp_protocol(flat_cfp, aligned, "FP", missing="wrong")
    gone = aligned / "001/frontal/01.jpg"
    uses = sum(gone in (a, b) for a, b in zip(p.pairs.paths[::2], p.pairs.paths[1::2]))
    assert len(p.pairs.issame) == 7000 and p.pairs.n_missing == uses > 0
    assert p.gallery.paths[0] == aligned / "001/frontal/02.jpg"  # enrolled with the first frontal image present
    with pytest.raises(MetricError, match=r"aligned CFP folder not found[\s\S]*facedata.prepare"):
        cfp_protocol(flat_cfp, tmp_path / "nowhere", "FF")
    with pytest.raises(MetricError, match=r"'PF' must be one of"):
        cfp_protocol(flat_cfp, aligned, "PF")


def test_hint_landmarks_by_hand():
    from facedata.cfp import HINT_LANDMARKS, hint_landmarks

    eye_left_of_nose = [(0.0, 0.0)] * 12 + [(10.0, 0.0)] * 6 + [(20.0, 0.0)] * 7 + [(0.0, 0.0)] * 5
    box = (100.0, 50.0, 200.0, 250.0)  # 100 wide, 200 high
    lm = hint_landmarks(eye_left_of_nose, box, "frontal")
    fx, fy = HINT_LANDMARKS["frontal"][0]
    assert lm[0] == pytest.approx((100 + 100 * fx, 50 + 200 * fy))
    # turned the other way: mirrored in the box, the image-left and image-right points swapped
    nose_left_of_eye = [(0.0, 0.0)] * 12 + [(20.0, 0.0)] * 6 + [(10.0, 0.0)] * 7 + [(0.0, 0.0)] * 5
    mirrored = hint_landmarks(nose_left_of_eye, box, "profile")
    fx1, fy1 = HINT_LANDMARKS["profile"][1]  # the image-right eye becomes the image-left one
    assert mirrored[0] == pytest.approx((100 + 100 * (1 - fx1), 50 + 200 * fy1))
    fx2, fy2 = HINT_LANDMARKS["profile"][2]
    assert mirrored[2] == pytest.approx((100 + 100 * (1 - fx2), 50 + 200 * fy2))
