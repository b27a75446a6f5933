"""Verification of two real photos with SFace: same person, different people, no face, bad file."""
from __future__ import annotations

import pytest

import config

from facedata.errors import ImageReadError
from recognition.verify import NoFaceError, verify


@pytest.fixture(scope="module")
def sface():
    from models_definition.zoo import load_model

    return load_model("sface", config.MODELS, device="cpu")


def test_same_and_different_people(raw, sface, detector):
    fr = raw / "face_recognition"
    same = verify(fr / "obama.jpg", fr / "obama2.jpg", embedder=sface, detector=detector)
    assert same.same_person and same.similarity > same.threshold == 0.363
    other = verify(fr / "obama.jpg", fr / "biden.jpg", embedder=sface, detector=detector)
    assert not other.same_person and other.similarity < 0.363


def test_no_face_and_bad_file(raw, sface, detector, tmp_path):
    import numpy as np
    from PIL import Image

    blank = tmp_path / "wall.jpg"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    with pytest.raises(NoFaceError, match="wall.jpg: no face found"):
        verify(blank, raw / "face_recognition" / "obama.jpg", embedder=sface, detector=detector)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        verify(broken, raw / "face_recognition" / "obama.jpg", embedder=sface, detector=detector)


def test_cli(raw, capsys):
    from recognition.verify import main

    fr = raw / "face_recognition"
    rc = main([str(fr / "obama.jpg"), str(fr / "obama3.jpg")])
    out = capsys.readouterr()
    assert rc == 0 and out.out.startswith("same person: cosine similarity"), out.out + out.err
    rc = main([str(fr / "obama.jpg"), str(fr / "biden.jpg")])  # "no" is exit 1, as diff / cmp: no traceback
    out = capsys.readouterr()
    assert rc == 1 and out.out.startswith("different people: cosine similarity") and out.err == "", out.out + out.err
    rc = main([str(fr / "obama.jpg"), str(fr / "biden.jpg"), "--model", "nope"])
    assert rc == 2 and "unknown model 'nope'" in capsys.readouterr().err
