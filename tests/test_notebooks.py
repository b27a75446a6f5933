"""Every notebook runs top to bottom on the sample data, and stays thin (no function or class defined)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbconvert.preprocessors import ExecutePreprocessor

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in ROOT.glob("**/*.ipynb") if ".venv" not in p.parts and ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_and_is_thin(path, sample_data, small_aligned, monkeypatch):
    # Training notebooks run a few steps on a small aligned set (their full setting takes minutes).
    monkeypatch.setenv("FACEKIT_SMOKE", "1")
    monkeypatch.setenv("FACEKIT_DATA", str(small_aligned))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    smoke_runs = ROOT / "runs" / "notebook-smoke"
    if smoke_runs.exists():
        import shutil

        shutil.rmtree(smoke_runs)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source and "class " not in cell.source, f"{path}: logic belongs in the package"
    ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})


def test_draw_faces_marks_box_and_landmarks(obama, detector):
    import numpy as np

    from facedata.draw import draw_faces, image_grid

    face = detector.detect_rgb(obama)[0]
    out = draw_faces(obama, [face], labels=["Barack_Obama"])
    assert out.shape == obama.shape and not np.array_equal(out, obama)
    x1, y1 = (int(round(float(v))) for v in face.box[:2])
    y_mid = int(face.box[3] + face.box[1]) // 2
    assert tuple(out[y_mid, x1]) == (0, 200, 0)  # the box's left edge
    lx, ly = (int(round(float(v))) for v in face.landmarks[0])
    assert tuple(out[ly, lx]) == (255, 0, 0)  # first landmark dot
    grid = image_grid([obama[:10, :10]] * 3, cols=2, pad=1)
    assert grid.shape == (23, 23, 3)
