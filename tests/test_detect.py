"""MTCNN detection on real photos and frames."""
from __future__ import annotations

import numpy as np
import pytest

from facedata.detect import DetectorConfig, FaceDetector, pick_main_face
from facedata.io import load_image
from facedata.sample_data import read_video_frames


def test_faces_have_typed_box_score_landmarks(detector, obama):
    faces = detector.detect(obama, color="RGB")
    main = faces[0]
    assert main.box.dtype == np.float32 and main.box.shape == (4,)
    assert main.landmarks.dtype == np.float32 and main.landmarks.shape == (5, 2)
    assert isinstance(main.score, np.float32) and main.score > 0.99
    x1, y1, x2, y2 = main.box
    # Landmarks lie inside the box, eyes above the nose above the mouth.
    assert np.all((main.landmarks[:, 0] > x1) & (main.landmarks[:, 0] < x2))
    assert main.landmarks[2, 1] > main.landmarks[:2, 1].max()
    assert main.landmarks[3:, 1].min() > main.landmarks[2, 1]


def test_no_face_gives_empty_list(raw, detector):
    frames = read_video_frames(raw / "pyfeat" / "no_face.mp4", [0, 40, 80])
    assert len(frames) == 3
    for _, rgb in frames:
        assert detector.detect_rgb(rgb) == []
    assert detector.detect_rgb(np.zeros((8, 8, 3), np.uint8)) == []  # smaller than MTCNN's window


def test_multi_face_photo_and_main_face(raw, detector):
    rgb = load_image(raw / "pyfeat" / "multi_face.jpg")
    faces = detector.detect_rgb(rgb)
    assert len(faces) >= 4
    main = pick_main_face(faces, rgb.shape)
    biggest = max(f.area for f in faces)
    assert main.area >= 0.5 * biggest


def test_pick_main_face_prefers_central_among_large():
    from facedata.detect import Face

    lm = np.zeros((5, 2), np.float32)
    corner = Face(np.array([0, 0, 100, 100], np.float32), np.float32(1), lm)
    centre = Face(np.array([450, 450, 540, 540], np.float32), np.float32(1), lm)  # 81% of the area
    small_centre = Face(np.array([480, 480, 520, 520], np.float32), np.float32(1), lm)
    assert pick_main_face([corner, centre, small_centre], (1000, 1000, 3)) is centre
    assert pick_main_face([corner, small_centre], (1000, 1000, 3)) is corner
    assert pick_main_face([], (10, 10, 3)) is None


def test_config_min_face_size_and_thresholds(obama):
    assert FaceDetector(min_face_size_px=2000).detect_rgb(obama) == []
    strict = FaceDetector(DetectorConfig(thresholds=(0.6, 0.7, 0.9)))
    assert len(strict.detect_rgb(obama)) >= 1


def test_downscaled_detection_maps_back(raw):
    rgb = load_image(raw / "face_recognition" / "obama3.jpg")  # 1434x2333
    full = FaceDetector(detect_max_side_px=None).detect_rgb(rgb)[0]
    small = FaceDetector(detect_max_side_px=800).detect_rgb(rgb)[0]
    side = full.box[2] - full.box[0]
    assert np.abs(full.box - small.box).max() < 0.08 * side
    assert np.abs(full.landmarks - small.landmarks).max() < 0.05 * side
    half = FaceDetector(detect_max_side_px=None, detect_scale=0.35).detect_rgb(rgb)[0]  # about 800 px too
    assert np.abs(full.box - half.box).max() < 0.08 * side
    assert np.abs(full.landmarks - half.landmarks).max() < 0.05 * side
    assert FaceDetector(detect_max_side_px=400, detect_scale=0.5)._scale(2333, 1434) == 400 / 2333  # the tighter wins
    with pytest.raises(ValueError, match="detect_scale must be in"):
        FaceDetector(detect_scale=0.0)


def test_batch_equals_single(raw, detector):
    frames = [f for _, f in read_video_frames(raw / "pyfeat" / "single_face.mp4", [0, 30, 60])]
    batch = detector.detect_batch(frames)
    for frame, faces in zip(frames, batch):
        single = detector.detect_rgb(frame)
        assert len(single) == len(faces) == 1
        np.testing.assert_allclose(single[0].box, faces[0].box, atol=1.0)


def test_padding_keeps_landmarks_right_on_tight_crops(detector, obama):
    """A photo cut tight around the face (as CFP's and FIW's are): MTCNN's landmarks drift when the face
    touches the frame; detecting on a padded copy (pad_frac) finds them where the full photo puts them."""
    full = detector.detect_rgb(obama)[0]
    x1, y1, x2, y2 = (int(v) for v in full.box)
    tight = np.ascontiguousarray(obama[y1 + (y2 - y1) // 8:y2, x1:x2])  # hairline and chin at the frame
    truth = full.landmarks - np.array([x1, y1 + (y2 - y1) // 8], np.float32)
    plain = detector.detect_rgb(tight)[0]
    padded = FaceDetector(pad_frac=0.3).detect_rgb(tight)[0]
    err = lambda f: float(np.linalg.norm(f.landmarks - truth, axis=1).mean())  # noqa: E731
    eye_gap = float(np.linalg.norm(truth[1] - truth[0]))
    assert err(padded) < 0.1 * eye_gap  # padded: within a tenth of the eye distance of the full photo's
    assert err(padded) < err(plain) / 3  # measured: 2.7 against 28.7 px, eyes 106 px apart
    assert np.all(padded.box[:2] > -0.6 * (x2 - x1))  # in the tight crop's coordinates, shifted back
    with pytest.raises(ValueError, match="pad_frac"):
        FaceDetector(pad_frac=1.5)
