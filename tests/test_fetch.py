"""Benchmark data: LFW copies checked before use, the CelebA subset rebuilt from photos, clear errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facedata.fetch import FetchError, check_lfw, fetch_celeba_subset, fetch_lfw, main, read_subset
from facedata.io import load_image

SHARED_LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"


def test_a_folder_that_is_not_lfw_is_named(tmp_path, capsys):
    (tmp_path / "src" / "lfw-deepfunneled" / "Someone").mkdir(parents=True)
    (tmp_path / "src" / "pairs.txt").write_text("10 300\n")
    with pytest.raises(FetchError, match=r"not an LFW copy: missing people.txt, pairsDevTrain.txt"):
        check_lfw(tmp_path / "src")
    assert main(["lfw", "--from", str(tmp_path / "nowhere"), "--dest", str(tmp_path / "lfw")]) == 2
    assert "nowhere: not found" in capsys.readouterr().err
    assert main(["lfw", "--from", str(tmp_path), "--dest", str(tmp_path / "lfw")]) == 2
    assert "neither lfw-deepfunneled/ nor lfw-deepfunneled.tgz" in capsys.readouterr().err
    assert not (tmp_path / "lfw").exists()  # nothing half-made is left in place


def test_offline_download_says_what_to_fetch(tmp_path):
    with pytest.raises(FetchError, match=r"cannot download LFW[\s\S]*--from THAT_FOLDER"):
        fetch_lfw(tmp_path / "lfw", base_urls=("http://127.0.0.1:9/",))  # nothing listens on port 9


@pytest.mark.skipif(not SHARED_LFW.is_dir(), reason="needs LFW at ../shared/data/lfw")
def test_lfw_copy_is_checked_and_an_incomplete_one_refused(tmp_path):
    counts = check_lfw(SHARED_LFW)
    assert counts == {"people": 5749, "images": 13233}
    # an incomplete copy (one image gone) is named, not used
    part = tmp_path / "part"
    shutil.copytree(SHARED_LFW, part, copy_function=lambda s, d: Path(d).hardlink_to(s))
    (part / "lfw-deepfunneled" / "Marilyn_Monroe" / "Marilyn_Monroe_0001.jpg").unlink()
    with pytest.raises(FetchError, match=r"1 people do not have the images lfw-names.txt lists \(Marilyn_Monroe: 1 of 2\)"):
        check_lfw(part)


def test_celeba_subset_rebuilt_from_real_photos(sample_data, detector, tmp_path):
    """The crop of a photo's face box grown 2.2x: 250 px, the face re-detected at its centre."""
    raw = sample_data / "raw" / "face_recognition"
    rows = ["identity,source_file,face_box_xyxy_in_source,status"]
    img_celeba = tmp_path / "img_celeba"
    img_celeba.mkdir()
    for i, name in enumerate(("obama.jpg", "biden.jpg")):
        box = detector.detect(str(raw / name))[0].box
        shutil.copy(raw / name, img_celeba / f"00000{i}.jpg")
        rows.append(f"id0000{i},00000{i}.jpg,{' '.join(f'{v:.1f}' for v in box)},ok")
    rows.append("id00009,000009.jpg,,no_face")  # listed without a crop: never asked for
    subset = tmp_path / "subset.csv"
    subset.write_text("\n".join(rows) + "\n")
    assert len(read_subset(subset)) == 2
    assert fetch_celeba_subset(tmp_path / "out", img_celeba, subset) == 2
    crop = load_image(tmp_path / "out" / "id00000" / "000000.jpg")
    assert crop.shape == (250, 250, 3)
    face = detector.detect_rgb(crop)[0]
    centre = (face.box[:2] + face.box[2:]) / 2
    assert np.abs(centre - 125).max() < 20  # the face sits at the centre, as in LFW
    side = max(face.box[2] - face.box[0], face.box[3] - face.box[1])
    assert 250 / 2.2 * 0.7 < side < 250 / 2.2 * 1.3  # and fills about 1 / 2.2 of the crop
    # a copy missing photos of the subset: how many and which
    (img_celeba / "000001.jpg").unlink()
    with pytest.raises(FetchError, match=r"1 img_celeba photos of the CelebA subset are missing \(000001.jpg\)"):
        fetch_celeba_subset(tmp_path / "out2", img_celeba, subset)


def test_celeba_subset_definition_ships_with_the_package():
    faces = read_subset()
    assert len({f.identity for f in faces}) == 239 and len(faces) > 4000
