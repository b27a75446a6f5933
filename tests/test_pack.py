"""insightface packs as training data: written here from real aligned faces, read without MXNet by the
same filters, splits and engine as a folder; bad packs refused with what to do."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facedata.datasets import FaceDataset, scan_face_folder
from facedata.errors import DatasetError
from facedata.insightface_io import InsightfacePack, scan_pack
from facedata.pack import unpack, write_pack
from facedata.preprocess import get_preset
from training import Trainer, make_splits

from test_training import tiny

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pack(small_aligned, tmp_path_factory) -> Path:
    rec = tmp_path_factory.mktemp("pack") / "train.rec"
    write_pack(small_aligned, rec)
    return rec


def test_pack_holds_the_folder(small_aligned, pack):
    folder, packed = scan_face_folder(small_aligned), scan_face_folder(pack)
    assert len(packed) == len(folder) and len(packed.classes) == len(folder.classes)
    assert packed.pack == pack and list(packed.counts().values()) == list(folder.counts().values())
    # the same pixels, image for image (the record holds the file's bytes)
    for i in (0, len(folder) // 2, len(folder) - 1):
        assert np.array_equal(packed.read(i), folder.read(i))
    # insightface's layout: header record, images 1..N, one record per identity; InsightfacePack agrees
    assert len(InsightfacePack(pack)) == len(folder)
    assert scan_pack(pack).labels.tolist() == folder.labels.tolist()


def test_pack_filters_and_splits_like_the_folder(small_aligned, pack):
    for kw in (dict(min_images_per_class=5), dict(max_classes=3)):
        f, p = scan_face_folder(small_aligned, **kw), scan_face_folder(pack, **kw)
        assert list(f.counts().values()) == list(p.counts().values()) and len(p.classes) == len(f.classes)
    sf, sp = make_splits(tiny(small_aligned)), make_splits(tiny(pack))
    for a, b in ((sf.train, sp.train), (sf.query, sp.query), (sf.distractor, sp.distractor)):
        assert a.labels.tolist() == b.labels.tolist() and len(a) == len(b)
    assert b.keys is not None and b.pack == pack  # subsets keep reading from the pack


def test_pack_trains_like_the_folder_and_resumes_exactly(small_aligned, pack, tmp_path):
    on_folder = Trainer(tiny(small_aligned), tmp_path / "folder")
    on_folder.fit()
    straight = Trainer(tiny(pack), tmp_path / "a")
    straight.fit()
    first = Trainer(tiny(pack, workers=2), tmp_path / "b")  # worker processes open their own handles
    first.fit(max_epochs=1)
    resumed = Trainer(tiny(pack, workers=2), tmp_path / "b", resume=True)
    resumed.fit()
    for key in ("train_loss", "val_auc"):
        assert [r[key] for r in straight.history] == pytest.approx([r[key] for r in on_folder.history], rel=1e-5)
        assert [r[key] for r in resumed.history] == pytest.approx([r[key] for r in straight.history], rel=1e-5)


def test_unpacked_pack_is_the_same_dataset(pack, tmp_path):
    assert unpack(pack, tmp_path / "u") == len(scan_face_folder(pack))
    u, p = scan_face_folder(tmp_path / "u"), scan_face_folder(pack)
    assert u.classes == p.classes and u.labels.tolist() == p.labels.tolist()
    ds_u, ds_p = FaceDataset(u, get_preset("arcface112")), FaceDataset(p, get_preset("arcface112"))
    assert np.array_equal(ds_u[3][0], ds_p[3][0])


def test_bad_packs(pack, tmp_path):
    lonely = tmp_path / "lonely.rec"
    shutil.copy(pack, lonely)  # no .idx beside it: refused, with the command that rebuilds one
    with pytest.raises(DatasetError, match=r"lonely.idx: not found .*python -m facedata.pack index .*lonely.rec"):
        scan_face_folder(lonely)
    r = subprocess.run([sys.executable, "-m", "facedata.pack", "index", str(lonely)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lonely.idx").read_text() == pack.with_suffix(".idx").read_text()  # the same index back
    cut = tmp_path / "cut.rec"  # a download cut short: the last image records are incomplete
    data = pack.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    shutil.copy(pack.with_suffix(".idx"), cut.with_suffix(".idx"))
    with pytest.raises(DatasetError, match=r"cut.rec: truncated record at key \d+ .*cut short"):
        scan_face_folder(cut)
    r = subprocess.run([sys.executable, "train.py", "--recipe", "sample-ce", "--data", str(cut), "--out",
                        str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "truncated record" in r.stderr and "Traceback" not in r.stderr
    junk = tmp_path / "junk.rec"
    junk.write_bytes(b"\x00" * 64)
    junk.with_suffix(".idx").write_text("0\t0\n")
    with pytest.raises(DatasetError, match="bad magic"):
        scan_face_folder(junk)


def test_evaluation_of_a_pack_says_unpack(pack, tmp_path):
    r = subprocess.run([sys.executable, "-m", "id_rate", "--models", "random-init", "--data", str(pack),
                        "--query-ids", "1", "--distractor-ids", "3", "--out", str(tmp_path / "out")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "evaluation reads aligned image folders, not packs" in r.stderr and "facedata.pack unpack" in r.stderr
