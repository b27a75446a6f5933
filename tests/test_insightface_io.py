"""insightface .bin and RecordIO readers, on small files written here from real aligned faces."""
from __future__ import annotations

import pickle
import struct

import cv2
import numpy as np
import pytest

from facedata.errors import DatasetError
from facedata.insightface_io import (
    RECORDIO_MAGIC, InsightfacePack, RecordIOReader, load_verification_bin, pack_record, unpack_record,
    write_recordio,
)


@pytest.fixture(scope="module")
def jpegs(sample_data):
    """Four real face crops as JPEG bytes (what insightface packs hold)."""
    from facedata.align import align_face
    from facedata.detect import FaceDetector
    from facedata.io import load_image

    det = FaceDetector()
    out = []
    for rel in ["obama.jpg", "obama2.jpg", "biden.jpg", "obama3.jpg"]:
        rgb = load_image(sample_data / "raw" / "face_recognition" / rel)
        crop = align_face(rgb, det.detect_rgb(rgb)[0])
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        out.append(buf.tobytes())
    return out


@pytest.mark.parametrize("protocol", [2, 4])
def test_verification_bin(tmp_path, jpegs, protocol):
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps((jpegs, [True, False]), protocol=protocol))
    vs = load_verification_bin(path)
    assert len(vs) == 2 and vs.issame.tolist() == [True, False]
    img = vs.image(3)
    assert img.shape == (112, 112, 3) and img.dtype == np.uint8


def test_verification_bin_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([Evil()], [True])))
    with pytest.raises(DatasetError, match="refusing to load builtins.print"):
        load_verification_bin(path)


@pytest.mark.parametrize(
    "obj, message",
    [
        ([b"a"], "expected a pickled"),
        ((["x", "y"], [True]), "list of encoded image bytes"),
        (([b"a", b"b"], [1]), "list of booleans"),
        (([b"a", b"b", b"c"], [True]), "3 images for 1 pairs"),
    ],
)
def test_verification_bin_structure(tmp_path, obj, message):
    path = tmp_path / "bad.bin"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(DatasetError, match=message):
        load_verification_bin(path)


def test_record_header_roundtrip():
    rec = unpack_record(pack_record(7.0, b"IMG", id1=3))
    assert rec.flag == 0 and rec.label.tolist() == [7.0] and rec.id == 3 and rec.payload == b"IMG"
    multi = unpack_record(pack_record(np.array([5.0, 9.0]), b""))
    assert multi.flag == 2 and multi.label.tolist() == [5.0, 9.0] and multi.payload == b""


def test_insightface_pack(tmp_path, jpegs):
    # Record 0 is the header (label = first identity record, end); images are keys 1..4.
    records = [pack_record(np.array([5.0, 7.0]), b"")]
    records += [pack_record(float(lab), jpg, id1=i + 1) for i, (lab, jpg) in enumerate(zip([0, 0, 1, 0], jpegs))]
    records += [pack_record(np.array([1.0, 4.0]), b""), pack_record(np.array([4.0, 5.0]), b"")]  # identity ranges
    write_recordio(records, tmp_path / "train.rec", tmp_path / "train.idx")
    pack = InsightfacePack(tmp_path / "train.rec")
    assert len(pack) == 4
    img, label = pack[2]
    assert img.shape == (112, 112, 3) and label == 1
    assert [pack[i][1] for i in range(4)] == [0, 0, 1, 0]


def test_multipart_record_is_joined(tmp_path):
    # dmlc splits a payload at an embedded magic word: parts flagged 1 (start) and 3 (end).
    payload = b"abcd" + struct.pack("<I", RECORDIO_MAGIC) + b"efgh"
    part1, part2 = b"abcd", b"efgh"
    data = struct.pack("<II", RECORDIO_MAGIC, (1 << 29) | len(part1)) + part1
    data += struct.pack("<II", RECORDIO_MAGIC, (3 << 29) | len(part2)) + part2
    (tmp_path / "x.rec").write_bytes(data)
    (tmp_path / "x.idx").write_text("0\t0\n")
    with RecordIOReader(tmp_path / "x.rec") as reader:
        assert reader.read(0) == payload


def test_recordio_errors(tmp_path):
    with pytest.raises(DatasetError, match="needs both the .rec and the .idx"):
        RecordIOReader(tmp_path / "none.rec")
    (tmp_path / "bad.rec").write_bytes(b"\x00" * 16)
    (tmp_path / "bad.idx").write_text("0\t0\n")
    with RecordIOReader(tmp_path / "bad.rec") as reader:
        with pytest.raises(DatasetError, match="bad magic"):
            reader.read(0)
        with pytest.raises(KeyError, match="no record with key 5"):
            reader.read(5)
