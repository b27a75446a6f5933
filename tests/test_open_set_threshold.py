"""The open-set threshold for a gallery size at a target FPIR: hand-computed cases, the model's records, the
empirical rule, and the live script's --target-fpir."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

import config
from cli_checks import one_error_line
from recognition.open_set import (
    FpirThresholdError, empirical_fpir_threshold, fmr_table, fpir_of, model_fpir_threshold, per_comparison_fmr,
    threshold_at_fmr, threshold_for_fpir,
)

ROOT = Path(__file__).resolve().parents[1]
TABLE = [(1e-3, 0.74), (1e-2, 0.54)]  # cosine at per-comparison FPR: 0.2 a decade


def test_fmr_1e4_against_1000_images_is_about_one_search_in_ten():
    # 1 - (1 - 1e-4)^1000 = 1 - exp(1000 ln(0.9999)) = 1 - exp(-0.100005) = 0.095167
    assert fpir_of(1e-4, 1000) == pytest.approx(0.0951671, abs=1e-7)
    assert per_comparison_fmr(fpir_of(1e-4, 1000), 1000) == pytest.approx(1e-4, rel=1e-9)
    assert per_comparison_fmr(0.01, 1) == pytest.approx(0.01)  # one image: the FPIR is the FMR
    assert per_comparison_fmr(1e-3, 10**6) == pytest.approx(1.0005e-9, rel=1e-4)  # no cancellation at 1e6


def test_threshold_interpolates_and_extrapolates_in_log_fpr():
    # FMR 10^-2.5 lies halfway between the records in log10: (0.74 + 0.54) / 2
    cos, how = threshold_at_fmr(TABLE, 10 ** -2.5)
    assert cos == pytest.approx(0.64) and how.startswith("interpolated")
    assert threshold_at_fmr(TABLE, 1e-3) == (0.74, "measured at FPR 0.001")
    # a gallery of G images at the FPIR that makes FMR 10^-2.5
    g = 50
    t = threshold_for_fpir(TABLE, fpir_of(10 ** -2.5, g), g)
    assert t.cos == pytest.approx(0.64) and t.gallery_size == g and t.fmr == pytest.approx(10 ** -2.5)
    # one decade below the lowest record: 0.74 + 0.2
    cos, how = threshold_at_fmr(TABLE, 1e-4)
    assert cos == pytest.approx(0.94) and how.startswith("extrapolated")
    with pytest.raises(FpirThresholdError, match="cosine 1"):  # 0.74 + 0.2 x 1.5 > 1
        threshold_at_fmr([(1e-4, 0.94), (1e-3, 0.74), (1e-2, 0.54)], 10 ** -4.5)
    with pytest.raises(FpirThresholdError, match="more than 1 decades below"):  # beyond one decade: refused
        threshold_at_fmr(TABLE, 10 ** -4.5)
    with pytest.raises(FpirThresholdError, match="decades below"):
        threshold_at_fmr([(1e-3, 0.3), (1e-2, 0.29)], 1e-6)
    with pytest.raises(FpirThresholdError, match="no threshold measured"):
        threshold_at_fmr([], 1e-3)
    with pytest.raises(FpirThresholdError, match="one point"):
        threshold_at_fmr([(1e-3, 0.7)], 1e-4)


def test_fmr_table_keeps_the_flip_setting_and_the_first_record_of_an_fpr():
    records = [{"cos": 0.8, "fpr": 1e-3, "flip": False}, {"cos": 0.7, "fpr": 1e-3, "flip": False},
               {"cos": 0.6, "fpr": 1e-2}, {"cos": 0.9, "fpr": 1e-3, "flip": True}, {"cos": 0.363, "fpr": None}]
    assert fmr_table(records, flip=False) == [(1e-3, 0.8), (1e-2, 0.6)]
    assert fmr_table(records, flip=True) == [(1e-3, 0.9)]


def test_empirical_threshold_by_the_evaluation_rule():
    nonmated = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    # FPIR 0.2 of 10 searches: 2 may pass, so only scores above the 3rd largest (0.8) may be accepted
    assert empirical_fpir_threshold(nonmated, 0.2) == pytest.approx(np.nextafter(0.8, 1))
    assert empirical_fpir_threshold(nonmated, 0.2, np.array([0.5, 0.85, 0.99])) == 0.85  # the lowest mate above
    assert empirical_fpir_threshold(nonmated, 0.05) is None  # under 1 search in 10: not resolvable


def test_the_shipped_models_records_give_the_threshold():
    from models_definition.zoo import load_model

    embedder = load_model(config.DEFAULT_MODEL, config.MODELS, device="cpu")
    entry = config.MODELS[config.DEFAULT_MODEL]
    one = model_fpir_threshold(embedder, entry, 1e-3, 1)  # one image at FPIR 1e-3: the model's own threshold
    assert one.cos == pytest.approx(embedder.threshold) and one.how.startswith("measured")
    three = model_fpir_threshold(embedder, entry, 0.01, 3)
    lo, hi = (embedder.spec["metrics"]["thresholds"][i]["cos"] for i in (0, 1))  # FPR 1e-3 and 1e-2, no flip
    fmr = 1 - 0.99 ** (1 / 3)  # 0.0033445
    assert three.cos == pytest.approx(lo + (hi - lo) * (math.log10(fmr) + 3))


def live_main():
    spec = importlib.util.spec_from_file_location("real_time_recognition", ROOT / "real-time-recognition.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.mark.parametrize("argv, words", [
    (["--target-fpir", "0.01", "--threshold", "0.5"], ["--threshold and --target-fpir", "give one"]),
    (["--target-fpir", "1.5"], ["--target-fpir 1.5", "(0, 1)"]),
    (["--target-fpir", "0"], ["--target-fpir 0.0", "(0, 1)"]),
])
def test_live_target_fpir_refusals(argv, words, capsys, tmp_path, sample_data):
    rc = live_main()([f"-cam={sample_data / 'sample_video.mp4'}", f"-output_path={tmp_path / 'o.gif'}",
                      "--no-display", "--gallery-cache", "none", *argv])
    out = capsys.readouterr()
    one_error_line(rc, out.err, *words, stdout=out.out)


def test_live_run_uses_the_threshold_for_its_gallery_size(capsys, tmp_path, sample_data):
    rc = live_main()([f"-cam={sample_data / 'sample_video.mp4'}", "-output_path=none", "--no-display",
                      "--gallery-cache", str(tmp_path / "cache"), "--max-frames", "1", "--target-fpir", "0.01",
                      "--summary", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert rc == 0, err
    summary = json.loads((tmp_path / "s.json").read_text())
    from models_definition.zoo import load_model

    embedder = load_model(config.DEFAULT_MODEL, config.MODELS, device="cpu")
    images = len(list(p for p in config.PEOPLE_FACES.iterdir() if p.suffix == ".jpg"))
    want = model_fpir_threshold(embedder, config.MODELS[config.DEFAULT_MODEL], 0.01, images)
    assert summary["threshold"] == pytest.approx(want.cos) and f"against {images} gallery images" in err
