"""config: plain settings, torch-free, an installed module; its models come from the recipes, not retyped."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import config
from facedata.errors import FaceKitError

# Every checkpoint model config.MODELS had before recipes produced them (the names users and the README type):
# (name, checkpoint under config.CHECKPOINTS, recipe), each measured at FPR 1e-3 with no threshold of its own.
SEED_CHECKPOINT_MODELS = [
    ("ce-efficientnet", "ce-efficientnet/best.pt", "ce-efficientnet"),
    ("ce-inceptionresnetv1-1292", "ce-inceptionresnetv1-1292/best.pt", "ce-inceptionresnetv1-1292"),
    ("arcface-efficientnet", "arcface-efficientnet/best.pt", "arcface-efficientnet"),
    ("triplet-efficientnet-min-val-loss", "triplet-efficientnet/best.pt", "triplet-efficientnet"),
    ("triplet-efficientnet-last-epoch", "triplet-efficientnet/last.pt", "triplet-efficientnet"),
    ("siamese-resnet18", "siamese-resnet18/best.pt", "siamese-resnet18"),
    ("sample-ce", "sample-ce/best.pt", "sample-ce"),
    ("sample-arcface", "sample-arcface/best.pt", "sample-arcface"),
    ("sample-triplet", "sample-triplet/best.pt", "sample-triplet"),
    ("sample-siamese", "sample-siamese/best.pt", "sample-siamese"),
    ("sample-sface-finetune", "sample-sface-finetune/best.pt", "sample-sface-finetune"),
    ("celeba-ce", "celeba-ce/best.pt", "celeba-ce"),
    ("celeba-arcface", "celeba-arcface/best.pt", "celeba-arcface"),
    ("celeba-triplet", "celeba-triplet/best.pt", "celeba-triplet"),
    ("celeba-siamese", "celeba-siamese/best.pt", "celeba-siamese"),
    ("celeba-sface-finetune", "celeba-sface-finetune/best.pt", "celeba-sface-finetune"),
    ("celeba-distill-sface", "celeba-distill-sface/best.pt", "celeba-distill-sface"),
    ("celeba-distill-sface-labels", "celeba-distill-sface-labels/best.pt", "celeba-distill-sface-labels"),
    ("celeba-distill-sface-views", "celeba-distill-sface-views/best.pt", "celeba-distill-sface-views"),
    ("celeba-triplet-semihard", "celeba-triplet-semihard/best.pt", "celeba-triplet-semihard"),
    ("celeba-sface-finetune-anchored", "celeba-sface-finetune-anchored/best.pt", "celeba-sface-finetune-anchored"),
    ("celeba-arcface-r18", "celeba-arcface-r18/best.pt", "celeba-arcface-r18"),
    ("celeba-siamese-r18", "celeba-siamese-r18/best.pt", "celeba-siamese-r18"),
    ("celeba-triplet-r18", "celeba-triplet-r18/best.pt", "celeba-triplet-r18"),
    ("celeba-distill-sface-views-labels", "celeba-distill-sface-views-labels/best.pt",
     "celeba-distill-sface-views-labels"),
    ("celeba-distill-sface-64", "celeba-distill-sface-64/best.pt", "celeba-distill-sface-64"),
    ("sample-sface-finetune-last-epoch", "sample-sface-finetune/last.pt", "sample-sface-finetune"),
]
# ... and every other model it had, entry for entry.
SEED_OTHER_MODELS = {
    "sface": {"reference": "sface", "threshold_cos": 0.363, "threshold_fpr": None},
    "dlib": {"reference": "dlib", "threshold_cos": None, "threshold_fpr": None},
    "dlib-jitter100": {"reference": "dlib", "num_jitters": 100, "threshold_cos": None, "threshold_fpr": None},
    "sface-torch": {"pretrained_backbone": "sface_mobilefacenet", "pretrained": "sface", "embedding_size": 128,
                    "preprocess": "sface112", "threshold_cos": None, "threshold_fpr": None},
    "random-init": {"random_init": "efficientnet_b0", "seed": 0},
    "random-init-r18-64": {"random_init": "resnet18", "seed": 0, "preprocess": "arcface64", "embedding_size": 128},
}


def without_file(entry: dict) -> dict:
    """The entry without the files merged_models adds to every entry (thresholds file, ONNX export)."""
    return {k: v for k, v in entry.items() if k not in ("measured_thresholds", "onnx")}


@pytest.mark.parametrize("name, checkpoint, recipe", SEED_CHECKPOINT_MODELS)
def test_every_seed_checkpoint_name_resolves_as_before(name, checkpoint, recipe):
    assert without_file(config.MODELS[name]) == dict(checkpoint=config.CHECKPOINTS / checkpoint, recipe=recipe,
                                                     threshold_cos=None, threshold_fpr=1e-3)
    assert config.MODELS[name]["measured_thresholds"] == config.MEASURED_THRESHOLDS


def test_every_other_seed_model_is_unchanged():
    for name, entry in SEED_OTHER_MODELS.items():
        assert without_file(config.MODELS[name]) == entry, name
        assert config.MODELS[name]["measured_thresholds"] == config.MEASURED_THRESHOLDS, name


def test_each_recipe_gives_its_best_and_last_checkpoint():
    models = config.recipe_models(["a", "b-c"], Path("/ck"), 1e-2)
    assert models == {
        "a": dict(checkpoint=Path("/ck/a/best.pt"), recipe="a", threshold_cos=None, threshold_fpr=1e-2),
        "a-last-epoch": dict(checkpoint=Path("/ck/a/last.pt"), recipe="a", threshold_cos=None, threshold_fpr=1e-2),
        "b-c": dict(checkpoint=Path("/ck/b-c/best.pt"), recipe="b-c", threshold_cos=None, threshold_fpr=1e-2),
        "b-c-last-epoch": dict(checkpoint=Path("/ck/b-c/last.pt"), recipe="b-c", threshold_cos=None,
                               threshold_fpr=1e-2),
    }
    for recipe in config.TRAIN_RECIPES:  # so a new recipe is a model by name with nothing retyped
        assert config.MODELS[recipe]["checkpoint"] == config.CHECKPOINTS / recipe / "best.pt"
        assert config.MODELS[f"{recipe}-last-epoch"]["checkpoint"] == config.CHECKPOINTS / recipe / "last.pt"


def test_a_model_name_given_twice_is_refused():
    with pytest.raises(FaceKitError, match="config.MODELS: model name 'x' given twice"):
        config.merged_models({"x": {"reference": "sface"}}, {"x": {"reference": "dlib"}}, measured_thresholds=Path("t"),
                              onnx_dir=Path("o"))


def test_measured_thresholds_live_outside_the_packages():
    # evaluation writes the file: never into a source folder, and git-ignored with the checkpoints it describes
    assert config.MEASURED_THRESHOLDS.parent == config.CHECKPOINTS
    assert "checkpoints/" in (config.ROOT / ".gitignore").read_text().split()


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the install provides
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


def test_importing_config_imports_no_torch_from_any_folder(tmp_path):
    """An installed module (the editable install), so a command line imports it with no sys.path edits, and
    settings only: torch loads when a model does."""
    done = run_python("import config, sys; assert 'torch' not in sys.modules, 'torch imported'; "
                      "print(config.ROOT)", tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == config.ROOT


def test_models_with_a_network_know_where_their_onnx_export_goes():
    assert config.MODELS["small-r18h-distill"]["onnx"] == config.ONNX_DIR / "small-r18h-distill.onnx"
    assert config.MODELS["random-init"]["onnx"] == config.ONNX_DIR / "random-init.onnx"
    assert "onnx" not in config.MODELS["sface"] and "onnx" not in config.MODELS["dlib"]
    # the int8 entry names its own file, written by exporting its source with --int8
    int8 = config.MODELS["small-r18h-distill-int8"]
    assert int8["backend"] == "onnx" and int8["onnx"] == config.ONNX_DIR / "small-r18h-distill-int8.onnx"
