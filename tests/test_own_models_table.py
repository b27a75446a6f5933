"""The own-models table's aim check: a random-init row is "clear" only when its AUC interval lies wholly
above its own backbone's untrained interval (hand-made intervals)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("own_models_table",
                                              Path(__file__).parents[1] / "benchmarks" / "own_models_table.py")
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)


def ci(low: float, high: float) -> dict:
    return {"bootstrap95": {"auc": [low, high]}}


def test_clear_of_untrained_compares_bounds_of_the_same_backbone():
    results = {"random-init": ci(0.60, 0.67), "random-init-r18-64": ci(0.55, 0.58),
               "a": ci(0.68, 0.75), "b": ci(0.666, 0.75)}
    assert table.clear_of_untrained(results, "a", "EfficientNet-B0") == "yes (+0.010)"
    assert table.clear_of_untrained(results, "b", "EfficientNet-B0") == "no (-0.004)"
    assert table.clear_of_untrained(results, "b", "ResNet-18 at 64 px (128-D)") == "yes (+0.086)"  # its own baseline
    assert table.clear_of_untrained(results, "random-init", "EfficientNet-B0") == "-"  # the baseline itself
    assert table.clear_of_untrained(results, "a", "MobileFaceNet (SFace)") == "-"  # not from random init
    assert table.clear_of_untrained({"a": ci(0.7, 0.8)}, "a", "EfficientNet-B0") == "-"  # baseline not scored
    assert table.clear_of_untrained({**results, "a": ci(None, None)}, "a", "EfficientNet-B0") == "-"  # no interval
