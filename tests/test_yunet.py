"""YuNet, the faster detector option, on real faces: the same five landmarks in MTCNN's order, crops that the
shipped model embeds like MTCNN's, and the detector named in every setting that caches on it."""
from __future__ import annotations

import json
import numpy as np
import pytest

from facedata.detect import DETECTORS, DetectorConfig, FaceDetector, UnknownDetectorError, pick_main_face
from facedata.io import load_image
from facedata.sample_data import read_video_frames


@pytest.fixture(scope="module")
def yunet():
    return FaceDetector(backend="yunet")


@pytest.fixture(scope="module")
def frames(sample_data):
    # the sample video: frames 0-71 the man, 72-143 the woman, 144-215 both
    return [f for _, f in read_video_frames(sample_data / "sample_video.mp4", [10, 100, 180])]


@pytest.fixture(scope="module")
def both(raw, frames, yunet, detector):
    """(image, YuNet's face, MTCNN's face) of a photo and three video frames: the face pick_main_face keeps."""
    photos = [load_image(raw / "face_recognition" / "obama.jpg")] + frames
    return [(rgb, pick_main_face(yunet.detect_rgb(rgb), rgb.shape), pick_main_face(detector.detect_rgb(rgb), rgb.shape))
            for rgb in photos]


def test_landmarks_are_mtcnns_points_in_mtcnns_order(both):
    """Each of YuNet's five points lies nearest MTCNN's point of the same index (image-left eye first), every one
    within a fifth of the eye distance and on average within an eighth (the two detectors' own disagreement,
    measured on these photos: 0.01-0.17 of it a point, 0.05-0.10 on average; neither is ground truth)."""
    for _, ours, theirs in both:
        assert ours is not None and theirs is not None
        assert ours.box.dtype == ours.landmarks.dtype == np.float32 and ours.landmarks.shape == (5, 2)
        assert isinstance(ours.score, np.float32) and 0.6 <= ours.score <= 1.0  # YuNet's own scale (0.85-0.95 here)
        eyes = float(np.linalg.norm(theirs.landmarks[1] - theirs.landmarks[0]))
        dist = np.linalg.norm(ours.landmarks[:, None] - theirs.landmarks[None], axis=2)  # ours x theirs
        assert (dist.argmin(axis=1) == np.arange(5)).all()
        assert dist.diagonal().max() < eyes / 5 and dist.diagonal().mean() < eyes / 8
        assert ours.landmarks[0, 0] < ours.landmarks[1, 0]  # the image-left eye first, as MTCNN gives it
        # the box overlaps MTCNN's: the area and centre rules of pick_main_face read them alike
        inter = np.clip(np.minimum(ours.box[2:], theirs.box[2:]) - np.maximum(ours.box[:2], theirs.box[:2]), 0, None)
        assert inter.prod() > 0.6 * max(ours.area, theirs.area)


def test_two_faces_and_no_face(raw, frames, yunet):
    assert len(yunet.detect_rgb(frames[2])) == 2  # the man and the woman
    no_face = [f for _, f in read_video_frames(raw / "pyfeat" / "no_face.mp4", [0, 40, 80])]
    assert all(yunet.detect_rgb(f) == [] for f in no_face)
    assert yunet.detect_rgb(np.zeros((8, 8, 3), np.uint8)) == []


def test_settings_apply_as_for_mtcnn(frames, yunet):
    """detect_batch, detect_scale (mapped back to the frame) and min_face_size_px work for YuNet too."""
    batch = yunet.detect_batch(frames)
    for frame, faces in zip(frames, batch):
        single = yunet.detect_rgb(frame)
        assert len(single) == len(faces) >= 1
        np.testing.assert_allclose(single[0].box, faces[0].box, atol=1e-3)
    full = yunet.detect_rgb(frames[0])[0]
    half = FaceDetector(backend="yunet", detect_scale=0.5).detect_rgb(frames[0])[0]
    side = full.box[2] - full.box[0]
    assert np.abs(full.landmarks - half.landmarks).max() < 0.05 * side
    assert FaceDetector(backend="yunet", min_face_size_px=400).detect_rgb(frames[0]) == []  # the face is ~180 px


def test_yunet_crops_embed_like_mtcnns(both, yunet, detector):
    """The shipped model's embedding of the YuNet-aligned crop is the MTCNN-aligned one's (cosine > 0.9); a
    gallery enrolled through one detector is cached apart from the other's."""
    import config
    from models_definition.zoo import load_model
    from recognition.embed import embed_faces
    from recognition.gallery import model_key

    model = load_model(config.DEFAULT_MODEL, config.MODELS, device="cpu")
    assert model_key(model, yunet) != model_key(model, detector)
    for rgb, ours, theirs in both:
        a, b = embed_faces(rgb, [theirs], model)[0], embed_faces(rgb, [ours], model)[0]
        assert float(a @ b) > 0.9


def test_unknown_detector_lists_the_valid_ones(tmp_path, capsys):
    from facedata.errors import FaceKitError
    from facedata.prepare import main as prepare_main

    with pytest.raises(UnknownDetectorError, match="unknown detector 'retina'; valid: mtcnn, yunet") as err:
        FaceDetector(backend="retina")
    assert isinstance(err.value, FaceKitError) and sorted(DETECTORS) == ["mtcnn", "yunet"]
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "x.jpg").write_bytes(b"")
    assert prepare_main([str(tmp_path / "src"), str(tmp_path / "dst"), "--detector", "retina"]) == 2
    assert "unknown detector 'retina'; valid: mtcnn, yunet" in capsys.readouterr().err
    assert not (tmp_path / "dst").exists()  # refused before the output folder is made


def test_prepare_records_the_detector(raw, tmp_path):
    """An aligned folder says which detector placed its crops (manifest method, prepare.json); the same folder
    is not topped up through the other detector."""
    from facedata.errors import DatasetError
    from facedata.prepare import PrepareConfig, prepare_folder

    src = tmp_path / "src" / "obama"
    src.mkdir(parents=True)
    src.joinpath("obama.jpg").write_bytes((raw / "face_recognition" / "obama.jpg").read_bytes())
    dst = tmp_path / "dst"
    result = prepare_folder(tmp_path / "src", dst, PrepareConfig(detector=DetectorConfig(backend="yunet")),
                            workers=0, progress=False)
    assert result.counts == {"ok": 1} and result.methods == {"yunet": 1}
    assert json.loads((dst / "prepare.json").read_text())["detector"]["backend"] == "yunet"
    assert load_image(dst / "obama" / "obama.jpg").shape == (112, 112, 3)
    with pytest.raises(DatasetError, match="prepared with other settings"):
        prepare_folder(tmp_path / "src", dst, PrepareConfig(), workers=0, progress=False)
    with pytest.raises(DatasetError, match="detector 'retina' must be one of mtcnn, yunet"):
        PrepareConfig(detector=DetectorConfig(backend="retina"))


def test_live_script_refuses_an_unknown_detector(capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("rtr", Path(__file__).resolve().parents[1] / "real-time-recognition.py")
    rtr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rtr)
    assert rtr.main(["--detector", "retina", "-cam", "nothing.mp4", "-output_path", "none", "--no-display"]) == 2
    assert "unknown detector 'retina'; valid: mtcnn, yunet" in capsys.readouterr().err
    assert rtr.parse_args([]).detector is None and rtr.parse_args(["--detector", "yunet"]).detector == "yunet"
