"""insightface packs as training data: written here from real aligned faces, read without MXNet by the
same filters, splits and engine as a folder; bad packs refused with what to do."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facedata.datasets import FaceDataset, scan_face_folder
from facedata.errors import DatasetError
from facedata.insightface_io import InsightfacePack, scan_pack
from facedata.pack import main as pack_main, unpack, write_pack
from facedata.preprocess import get_preset
from training import Trainer, make_splits

from test_robustness import load_script
from test_training import tiny


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


def test_bad_packs(pack, tmp_path, capsys):
    lonely = tmp_path / "lonely.rec"
    shutil.copy(pack, lonely)  # no .idx beside it: refused, with the command that rebuilds one
    with pytest.raises(DatasetError, match=r"lonely.idx: not found .*python -m facedata.pack index .*lonely.rec"):
        scan_face_folder(lonely)
    assert pack_main(["index", str(lonely)]) == 0, capsys.readouterr().err
    assert (tmp_path / "lonely.idx").read_text() == pack.with_suffix(".idx").read_text()  # the same index back
    cut = tmp_path / "cut.rec"  # a download cut short: the last image records are incomplete
    data = pack.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    shutil.copy(pack.with_suffix(".idx"), cut.with_suffix(".idx"))
    with pytest.raises(DatasetError, match=r"cut.rec: truncated record at key \d+ .*cut short"):
        scan_face_folder(cut)
    capsys.readouterr()
    rc = load_script("train.py").main(["--recipe", "sample-ce", "--data", str(cut), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("train.py: error: ") and "truncated record" in err and err.count("\n") == 1, err
    junk = tmp_path / "junk.rec"
    junk.write_bytes(b"\x00" * 64)
    junk.with_suffix(".idx").write_text("0\t0\n")
    with pytest.raises(DatasetError, match="bad magic"):
        scan_face_folder(junk)


def test_evaluation_of_a_pack_says_unpack(pack, tmp_path, capsys):
    from id_rate.__main__ import main as id_rate_main

    rc = id_rate_main(["--models", "random-init", "--data", str(pack), "--query-ids", "1", "--distractor-ids", "3",
                       "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("python -m id_rate: error: ") and err.count("\n") == 1, err
    assert "evaluation reads aligned image folders, not packs" in err and "facedata.pack unpack" in err


# --- unpack: damaged packs and destinations (issue 19) -------------------------------------------------------
def _pack_copy(pack: Path, folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(pack, folder / "train.rec")
    shutil.copy(pack.with_suffix(".idx"), folder / "train.idx")
    return folder / "train.rec"


def test_unpack_of_a_damaged_index_or_label_is_one_error(pack, tmp_path, capsys):
    """A non-integer .idx line and a NaN label used to end in a ValueError traceback."""
    import struct

    bad_idx = _pack_copy(pack, tmp_path / "idx")
    lines = bad_idx.with_suffix(".idx").read_text().splitlines()
    lines[2] = "2\tabc"
    bad_idx.with_suffix(".idx").write_text("\n".join(lines) + "\n")
    assert pack_main(["unpack", str(bad_idx), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m facedata.pack: error: {bad_idx.with_suffix('.idx')}:3: expected 'key<TAB>offset' "
                          "(two whole numbers), got '2\\tabc'") and err.count("\n") == 1, err
    nan_label = _pack_copy(pack, tmp_path / "nan")
    data = bytearray(nan_label.read_bytes())
    offset = int(lines[1].split()[1])  # image record 1: magic, length, flag, then its label
    data[offset + 12: offset + 16] = struct.pack("<f", float("nan"))
    nan_label.write_bytes(bytes(data))
    assert pack_main(["unpack", str(nan_label), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"python -m facedata.pack: error: {nan_label}: record 1 has label nan, not a class number (0, 1, "
                   "...): the pack is damaged or not an insightface training pack\n")
    assert not (tmp_path / "out").exists()


def test_unpack_never_mixes_two_packs_in_one_folder(pack, small_aligned, tmp_path, capsys):
    """A second pack unpacked into the first one's folder used to leave a mix of both; a folder of other
    files is refused too. The same pack's own earlier unpack resumes."""
    two = tmp_path / "two"
    for ident in sorted(d for d in small_aligned.iterdir() if d.is_dir())[:2]:
        shutil.copytree(ident, two / ident.name)
    other = tmp_path / "other.rec"
    write_pack(two, other)
    out = tmp_path / "out"
    assert pack_main(["unpack", str(pack), str(out)]) == 0
    capsys.readouterr()
    first = sorted(p.relative_to(out) for p in out.rglob("*.jpg"))
    (out / first[-1]).unlink()  # an interrupted unpack: the same command finishes it
    assert pack_main(["unpack", str(pack), str(out)]) == 0
    assert sorted(p.relative_to(out) for p in out.rglob("*.jpg")) == first
    capsys.readouterr()
    assert pack_main(["unpack", str(other), str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"python -m facedata.pack: error: unpack folder {out}: already holds the unpack of {pack}, not an "
                   f"earlier unpack of {other}; unpack into a new or empty folder (nothing there was changed)\n")
    assert sorted(p.relative_to(out) for p in out.rglob("*.jpg")) == first
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert pack_main(["unpack", str(other), str(mine)]) == 2
    assert "already holds files that are not an unpacked pack" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
