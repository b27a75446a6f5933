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
