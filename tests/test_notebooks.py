"""Every notebook runs top to bottom on real faces, with small settings injected the way papermill does (a cell
tagged "injected-parameters" after the one tagged "parameters", which every notebook has), and stays thin: no function or class, no
environment switches."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from nbconvert.preprocessors import ExecutePreprocessor

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in ROOT.glob("**/*.ipynb") if ".venv" not in p.parts and ".ipynb_checkpoints" not in p.parts)
TRAINING = {"notebooks/train-cross-entropy.ipynb": "sample-ce", "notebooks/train-arcface.ipynb": "sample-arcface",
            "notebooks/train-triplet.ipynb": "sample-triplet", "notebooks/train-siamese.ipynb": "sample-siamese"}
# A few steps on the small aligned set: 2 query and 6 distractor identities held out, the other 11 train.
SMALL_TRAINING = dict(batches_per_epoch=2, batch_size=8, pk_k=2, open_set_query=2, open_set_distractor=6,
                      max_train_classes=None, workers=0)


def parameters_cell(nb) -> int:
    """The index of the one cell tagged "parameters"."""
    found = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", ())]
    assert len(found) == 1, f"{len(found)} cells tagged 'parameters'"
    return found[0]


def inject(nb, params: dict) -> None:
    """papermill's injection: the values as a code cell tagged "injected-parameters" after the parameters
    cell; a name the parameters cell does not set is refused (the notebook would ignore it)."""
    i = parameters_cell(nb)
    declared = {t.id for node in ast.parse(nb.cells[i].source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert set(params) <= declared, f"not parameters of the notebook: {sorted(set(params) - declared)}"
    source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


def small_parameters(rel: str, data: Path, small_aligned: Path, out: Path) -> dict:
    if rel in TRAINING:
        return dict(DATA=str(small_aligned), EPOCHS=1, SETTINGS=SMALL_TRAINING, OUT=str(out), BOOTSTRAP=20)
    if rel == "id_rate/id-rate.ipynb":
        return dict(MODELS=["random-init", "sface"], DATA=str(small_aligned), N_DISTRACTOR=10, BOOTSTRAP=20, OUT=str(out))
    assert rel == "notebooks/face-detection-and-alignment.ipynb", f"{rel}: say which small settings it runs with"
    # a photo of one face instead of the group photo, and two people to align
    return dict(PHOTO=str(data / "raw" / "pyfeat" / "single_face.jpg"),
                PEOPLE=["Joe_Biden/Joe_Biden_0001.jpg", "pyfeat_woman/pyfeat_woman_0003.jpg"])


def outputs_text(nb) -> str:
    return "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_and_is_thin(path, sample_data, small_aligned, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    rel = str(path.relative_to(ROOT))
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source and "class " not in cell.source, f"{rel}: logic belongs in the package"
            assert "environ" not in cell.source, f"{rel}: settings are parameters, not environment switches"
    parameters_cell(nb)  # every notebook has one: its settings can be changed without editing it
    params = small_parameters(rel, sample_data, small_aligned, tmp_path / "out")
    inject(nb, params)
    ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})
    shown = outputs_text(nb)
    if rel in TRAINING:  # trained in the folder given, then scored beside the baseline on its held-out people
        out = tmp_path / "out"
        assert (out / "best.pt").is_file() and (out / "log.csv").is_file()
        for name in ("table.md", "similarity.png", "tpr_at_fpr.png", "roc.png"):
            assert (out / "id_rate" / name).stat().st_size > 500, name
        assert f"| {TRAINING[rel]} |" in shown and "| random-init |" in shown
    elif rel == "id_rate/id-rate.ipynb":
        assert "| random-init |" in shown and "| sface |" in shown
        assert (tmp_path / "out" / "tpr_at_fpr.png").stat().st_size > 1000
    else:  # the injected photo and people were used, not the defaults (the group photo has 5 faces)
        assert "1 faces, scores [1.0]" in shown and "2 people, columns:" in shown


def test_training_notebooks_differ_only_in_their_objective():
    """One notebook per objective, the same cells: each names its own recipe in its parameters."""
    code = {}
    for rel, recipe in TRAINING.items():
        nb = nbformat.read(ROOT / rel, as_version=4)
        src = nb.cells[parameters_cell(nb)].source
        assert src.startswith(f"RECIPE = '{recipe}'"), rel
        code[rel] = [c.source.replace(recipe, "RECIPE") for c in nb.cells if c.cell_type == "code"]
    assert len({tuple(v) for v in code.values()}) == 1


def test_inject_refuses_an_unknown_parameter():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("EPOCHS = None", metadata={"tags": ["parameters"]})])
    inject(nb, {"EPOCHS": 1})
    assert nb.cells[1].source == "EPOCHS = 1" and nb.cells[1].metadata["tags"] == ["injected-parameters"]
    with pytest.raises(AssertionError, match="EPOCH"):
        inject(nb, {"EPOCH": 1})


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
