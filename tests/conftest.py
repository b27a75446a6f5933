"""Shared fixtures: the real sample faces (built by `make data`, or here when missing) and one detector."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facedata.sample_data import DEFAULT_DATA_DIR, prepare_sample_data

torch.set_num_threads(2)  # more threads than cores is slower on the 2-core CI machine


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The data/ folder with raw packages' faces and the identity set."""
    prepare_sample_data(DEFAULT_DATA_DIR, quiet=True)
    return DEFAULT_DATA_DIR


@pytest.fixture(scope="session")
def raw(sample_data: Path) -> Path:
    return sample_data / "raw"


@pytest.fixture(scope="session")
def detector():
    from facedata.detect import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def obama(raw: Path) -> np.ndarray:
    from facedata.io import load_image

    return load_image(raw / "face_recognition" / "obama.jpg")


@pytest.fixture(scope="session")
def small_aligned(sample_data: Path, tmp_path_factory) -> Path:
    """A small aligned set from the real sample faces: 8 frames of the man, 8 of the woman, Obama's 5
    photos and 16 one-portrait identities (about 35 crops, a few seconds to align)."""
    from facedata.prepare import prepare_folder

    ids = sample_data / "sample_identities"
    src = tmp_path_factory.mktemp("small_src")
    portraits = sorted(p for p in ids.iterdir() if p.is_dir() and not p.name.startswith(("pyfeat", "Barack")))[:16]
    for folder, n in [(ids / "pyfeat_man", 8), (ids / "pyfeat_woman", 8), (ids / "Barack_Obama", 5)] + [(p, 1) for p in portraits]:
        (src / folder.name).mkdir()
        files = sorted(folder.glob("*.jpg"))
        for f in files[:: max(1, len(files) // n)][:n]:
            (src / folder.name / f.name).write_bytes(f.read_bytes())
    dst = tmp_path_factory.mktemp("small_aligned")
    prepare_folder(src, dst, workers=0, progress=False)
    return dst
