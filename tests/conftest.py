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


class CountingEmbedder:
    """An embedder wrapper counting the crops it embeds (a cache hit embeds none)."""

    def __init__(self, inner) -> None:
        self.inner, self.crops = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, crops):
        self.crops += len(crops)
        return self.inner(crops)


@pytest.fixture(scope="session")
def counting() -> type:
    """:class:`CountingEmbedder`, to wrap a model and see what a cache saved."""
    return CountingEmbedder


# --- test tiers -----------------------------------------------------------------------------------------
# `make test` runs everything; `make test-fast` (pytest -m "not slow") the tests that took under SLOW_S seconds
# in the recorded run (tests/durations.json, rewritten by `make test-durations`), plus any marked slow by hand
# is left out. A test not yet recorded counts as fast until the next recording.
DURATIONS = Path(__file__).with_name("durations.json")
SLOW_S = 3.0  # setup + call + teardown; keeps the fast tier near 3 minutes on 2 cores (tests/durations.json)


def pytest_addoption(parser) -> None:
    parser.addoption("--record-durations", action="store_true",
                     help=f"write each test's seconds to {DURATIONS.name} (the tiers read it)")


def pytest_collection_modifyitems(config, items) -> None:
    import json

    recorded = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    for item in items:
        if recorded.get(item.nodeid, 0.0) >= SLOW_S:
            item.add_marker(pytest.mark.slow)


_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus) -> None:
    if session.config.getoption("--record-durations") and _seconds:
        import json

        from facedata.io import write_bytes_atomic

        # merged into the earlier record: a partial run (one file, the fast tier) updates only what it ran
        recorded = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
        recorded.update({k: round(v, 2) for k, v in _seconds.items()})
        root = Path(__file__).resolve().parent.parent
        recorded = {k: v for k, v in sorted(recorded.items()) if (root / k.split("::")[0]).is_file()}
        write_bytes_atomic((json.dumps(recorded, indent=0) + "\n").encode(), DURATIONS)
