"""Image loading: every mode reaches the detector as RGB uint8, and bad files get clear errors."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
from PIL import Image

from facedata.errors import ImageReadError
from facedata.io import load_image, save_image_atomic


def _one_face(detector, rgb: np.ndarray) -> None:
    faces = detector.detect_rgb(rgb)
    assert faces, "no face found"
    assert faces[0].score > 0.95


def test_grayscale_jpeg(raw, tmp_path, obama, detector):
    path = raw / "pyfeat" / "BWPictureHuman.jpg"  # a real grayscale photo (a profile: no frontal face)
    assert Image.open(path).mode == "L"
    rgb = load_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (1912, 2560, 3)
    assert np.array_equal(rgb[..., 0], rgb[..., 1])
    gray = tmp_path / "gray.jpg"
    Image.fromarray(obama).convert("L").save(gray)
    assert Image.open(gray).mode == "L"
    _one_face(detector, load_image(gray))


def test_rgba_png_composited_on_white(raw, detector):
    path = raw / "face_recognition" / "32bit.png"
    assert Image.open(path).mode == "RGBA"
    rgb = load_image(path)
    assert rgb.shape[2] == 3
    _one_face(detector, rgb)


def test_palette_16bit_and_cmyk(tmp_path, obama, detector):
    pil = Image.fromarray(obama)
    pal = tmp_path / "palette.png"
    pil.convert("P", palette=Image.ADAPTIVE, colors=256).save(pal)
    assert Image.open(pal).mode == "P"
    _one_face(detector, load_image(pal))

    gray8 = np.asarray(pil.convert("L"))
    sixteen = tmp_path / "gray16.png"
    Image.fromarray(gray8.astype(np.uint16) * 257).save(sixteen)  # full 16-bit range
    assert Image.open(sixteen).mode.startswith("I")
    got = load_image(sixteen)
    assert np.abs(got[..., 0].astype(int) - gray8).max() <= 1  # 16-bit scaled back, not clipped to white
    _one_face(detector, got)

    cmyk = tmp_path / "cmyk.jpg"
    pil.convert("CMYK").save(cmyk, quality=95)
    assert Image.open(cmyk).mode == "CMYK"
    got = load_image(cmyk)
    assert np.abs(got.astype(int) - obama.astype(int)).mean() < 12
    _one_face(detector, got)


def test_exif_orientation_is_applied(tmp_path, obama, detector):
    # Store the picture rotated on disk with EXIF orientation 6 ("rotate 90 CW to view"), as phones do.
    stored = Image.fromarray(obama).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    rgb = load_image(path)
    assert rgb.shape[:2] == obama.shape[:2]  # upright again
    face = detector.detect_rgb(rgb)[0]
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    assert rx - lx > 3 * abs(ry - ly)  # eyes side by side: the face is upright


def test_numpy_colour_order_must_be_stated(raw, detector):
    bgr = cv2.imread(str(raw / "face_recognition" / "obama.jpg"))
    with pytest.raises(ImageReadError, match="colour order must be stated"):
        load_image(bgr)
    from_bgr = load_image(bgr, color="BGR")
    assert np.array_equal(from_bgr, load_image(raw / "face_recognition" / "obama.jpg"))
    a = detector.detect(bgr, color="BGR")[0]
    b = detector.detect(from_bgr, color="RGB")[0]
    np.testing.assert_allclose(a.box, b.box, atol=1e-3)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is a text file, not a JPEG\n"), "not an image file"),
    ],
    ids=["missing", "zero-byte", "text-named-jpg"],
)
def test_bad_files_name_the_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(ImageReadError, match=reason) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg(tmp_path, raw):
    data = (raw / "face_recognition" / "obama.jpg").read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="corrupt or truncated") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_huge_image_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (8000, 8000)).save(path)
    with pytest.raises(ImageReadError, match=r"8000x8000 = 64\.0 MP, above the limit") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert load_image(path, max_pixels=None).shape == (8000, 8000, 3)  # readable when asked for


def test_save_image_atomic_leaves_no_temp(tmp_path, obama):
    dest = tmp_path / "sub" / "x.jpg"
    save_image_atomic(obama, dest)
    assert dest.exists() and [p.name for p in dest.parent.iterdir()] == ["x.jpg"]
    assert load_image(dest).shape == obama.shape
