"""Issue 12, the hostile new user, on the data and evaluation commands: ``python -m facedata.prepare``,
``python -m id_rate`` and ``python -m facedata.fetch``. Every bad input ends with exit code 2 and one
clear error line naming the file or value at fault, never a traceback, and outputs are checked before any
work. Each command's ``main(argv)`` runs in-process (through the runner, ``facedata.cli.command``); images
are the real sample faces (``sample_data``, ``raw``, ``small_aligned`` in conftest.py)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_error_line

MAINS = {"facedata.prepare": "facedata.prepare", "id_rate": "id_rate.__main__", "facedata.fetch": "facedata.fetch"}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def cli(capsys):
    """``cli("-m", MODULE, *ARGS)``: the command's ``main(ARGS)`` in-process, as ``python -m MODULE ARGS``."""
    import importlib

    def run(flag: str, module: str, *args: str | os.PathLike) -> Result:
        assert flag == "-m"
        capsys.readouterr()  # what came before is not this command's
        rc = importlib.import_module(MAINS[module]).main([str(a) for a in args])
        out = capsys.readouterr()
        return Result(rc, out.out, out.err)

    return run


def error_line(r: Result, *words: str, code: int = 2) -> str:
    """:func:`cli_checks.one_error_line` on a command's result."""
    return one_error_line(r.returncode, r.stderr, *words, code=code, stdout=r.stdout)


@pytest.fixture()
def no_embedding(monkeypatch):
    """Refused up front: any embedding pass fails the test (the runner re-raises it as a bug)."""
    def refuse(*a, **k):
        raise AssertionError("an embedding pass started: the bad input was not refused up front")

    monkeypatch.setattr("id_rate.embeddings.embed_paths", refuse)
    monkeypatch.setattr("id_rate.evaluate.embed_paths", refuse)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder with mode 0o500; skips the test where this user can write there anyway (root)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):
        folder.chmod(0o700)
        pytest.skip("this user (root?) can write in a 0o500 folder; nothing to refuse")
    return folder


@pytest.fixture()
def photos(raw, tmp_path) -> Path:
    """A small <identity>/<image> source folder of real photos."""
    src = tmp_path / "photos"
    (src / "Barack_Obama").mkdir(parents=True)
    (src / "Joe_Biden").mkdir()
    shutil.copy(raw / "face_recognition" / "obama.jpg", src / "Barack_Obama" / "Barack_Obama_0001.jpg")
    shutil.copy(raw / "face_recognition" / "biden.jpg", src / "Joe_Biden" / "Joe_Biden_0001.jpg")
    return src


@pytest.fixture(scope="module")
def embeddings():
    """Real embeddings would need a model pass; the checks are on the file's structure, so 40 rows of
    10 identities do (the loader must refuse before scoring)."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 16)).astype(np.float32), np.repeat(np.arange(10), 4)


def window(r: Result) -> str:
    return (r.stdout + r.stderr)[-3000:]


# --- 1. python -m facedata.prepare ---------------------------------------------------------------------


def test_prepare_destination_is_an_existing_file(photos, tmp_path, cli):
    dst = tmp_path / "aligned"
    dst.write_text("not a folder")
    r = cli("-m", "facedata.prepare", photos, dst, "--workers", "0", "--no-progress")
    error_line(r, str(dst), "is a file")
    assert dst.read_text() == "not a folder"


def test_prepare_destination_parent_not_writable(photos, tmp_path, cli):
    parent = unwritable_folder(tmp_path)
    try:
        r = cli("-m", "facedata.prepare", photos, parent / "aligned", "--workers", "0", "--no-progress")
        error_line(r, str(parent), "cannot write")
        assert not (parent / "aligned").exists()
    finally:
        parent.chmod(0o700)


def test_prepare_size_0_is_refused_before_any_image_is_read(photos, tmp_path, cli):
    dst = tmp_path / "aligned"
    r = cli("-m", "facedata.prepare", photos, dst, "--size", "0", "--workers", "0", "--no-progress")
    error_line(r, "size 0", "16..1024")
    assert not (dst / "manifest.csv").exists() and not dst.exists()


def test_prepare_second_run_on_a_locked_destination_names_the_holder(photos, tmp_path, cli):
    from facedata.io import folder_lock

    dst = tmp_path / "aligned"
    dst.mkdir()
    with folder_lock(dst):
        r = cli("-m", "facedata.prepare", photos, dst, "--workers", "0", "--no-progress")
    line = error_line(r, str(dst), "being prepared by another run", f"pid {os.getpid()}")
    assert "wait" in line
    assert not (dst / "manifest.csv").exists()


def test_prepare_file_name_with_a_newline_is_done_once(raw, tmp_path, cli):
    from facedata.prepare import read_manifest

    src, dst = tmp_path / "src", tmp_path / "aligned"
    (src / "Barack_Obama").mkdir(parents=True)
    odd = "Barack_Obama/Barack\nObama_0001.jpg"
    shutil.copy(raw / "face_recognition" / "obama.jpg", src / odd)
    shutil.copy(raw / "face_recognition" / "obama2.jpg", src / "Barack_Obama" / "Barack_Obama_0002.jpg")
    first = cli("-m", "facedata.prepare", src, dst, "--workers", "0", "--no-progress")
    assert first.returncode == 0 and "Traceback" not in first.stderr, window(first)
    second = cli("-m", "facedata.prepare", src, dst, "--workers", "0", "--no-progress")
    assert second.returncode == 0 and "Traceback" not in second.stderr, window(second)
    assert "nothing new" in second.stdout and "2 already done" in second.stdout, second.stdout
    rows = read_manifest(dst / "manifest.csv")
    assert sorted(rows) == sorted([odd, "Barack_Obama/Barack_Obama_0002.jpg"])
    assert rows[odd]["status"] == "ok" and (dst / rows[odd]["output"]).is_file()
    text = (dst / "manifest.csv").read_text(encoding="utf-8")
    assert text.count("Obama_0001.jpg") == 2  # its source and output columns of one row, not a second row


# --- 2. python -m id_rate -----------------------------------------------------------------------------


def test_id_rate_split_of_the_wrong_length(embeddings, tmp_path, cli):
    emb, labels = embeddings
    path = tmp_path / "mine.npz"
    np.savez(path, embeddings=emb, labels=labels, split=np.array(["query"] * 39))
    r = cli("-m", "id_rate", "--embeddings", path, "--out", tmp_path / "out")
    error_line(r, str(path), "'split'", "39", "40")
    assert not (tmp_path / "out").exists()


def test_id_rate_npz_with_a_pickled_object_array(embeddings, tmp_path, cli):
    emb, labels = embeddings
    path = tmp_path / "objects.npz"
    np.savez(path, embeddings=emb, labels=np.array([f"person {i}" for i in labels], dtype=object))
    r = cli("-m", "id_rate", "--embeddings", path, "--out", tmp_path / "out")
    line = error_line(r, str(path), "cannot read embeddings")
    assert "pickle" in line.lower() or "object" in line.lower(), line


def test_id_rate_text_file_named_npz(tmp_path, cli):
    path = tmp_path / "embeddings.npz"
    path.write_text("embedding,label\n0.1 0.2 0.3,Barack_Obama\n")
    r = cli("-m", "id_rate", "--embeddings", path, "--out", tmp_path / "out")
    line = error_line(r, str(path), "cannot read embeddings")
    # a text file holds no pickled objects: the message must say what the file is not, not blame pickles
    assert "not a NumPy .npz file" in line and "pickled" not in line, line


def test_id_rate_npy_renamed_npz(embeddings, tmp_path, cli):
    emb, _ = embeddings
    npy = tmp_path / "embeddings.npy"
    np.save(npy, emb)
    path = npy.rename(tmp_path / "embeddings.npz")
    r = cli("-m", "id_rate", "--embeddings", path, "--out", tmp_path / "out")
    error_line(r, str(path), ".npy", "np.savez")


def test_id_rate_split_values_in_the_wrong_case(embeddings, tmp_path, cli):
    emb, labels = embeddings
    path = tmp_path / "mine.npz"
    split = np.array(["Query"] * 8 + ["distractor"] * 32)
    np.savez(path, embeddings=emb, labels=labels, split=split)
    r = cli("-m", "id_rate", "--embeddings", path, "--out", tmp_path / "out")
    line = error_line(r, str(path), "'split'", "'query'", "'distractor'", "'unused'", "'Query'")
    assert "np.str_" not in line, f"the bad value is shown as a NumPy repr: {line}"


def test_id_rate_out_is_an_existing_file_refused_before_any_embedding(small_aligned, tmp_path, cli, no_embedding):
    out = tmp_path / "results"
    out.write_text("my notes")
    r = cli("-m", "id_rate", "--models", "sface", "--data", small_aligned, "--query-ids", "2",
            "--distractor-ids", "10", "--no-cache", "--out", out)
    error_line(r, "--out", str(out), "is a file")
    assert out.read_text() == "my notes"


def test_id_rate_out_under_an_unwritable_folder_refused_before_any_embedding(small_aligned, tmp_path, cli,
                                                                             no_embedding):
    parent = unwritable_folder(tmp_path)
    try:
        r = cli("-m", "id_rate", "--models", "sface", "--data", small_aligned, "--query-ids", "2",
                "--distractor-ids", "10", "--no-cache", "--out", parent / "results")
        error_line(r, "--out", str(parent), "cannot write")
    finally:
        parent.chmod(0o700)


def test_id_rate_missing_bin_refused_up_front(small_aligned, tmp_path, cli, no_embedding):
    missing = tmp_path / "lfw.bin"
    r = cli("-m", "id_rate", "--models", "sface", "--data", small_aligned, "--query-ids", "2",
            "--distractor-ids", "10", "--no-cache", "--bin", missing, "--out", tmp_path / "out")
    error_line(r, str(missing), "not found")
    assert not (tmp_path / "out").exists()


def test_id_rate_bin_of_random_bytes(small_aligned, tmp_path, cli, no_embedding):
    path = tmp_path / "lfw.bin"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    r = cli("-m", "id_rate", "--models", "sface", "--data", small_aligned, "--query-ids", "2",
            "--distractor-ids", "10", "--no-cache", "--bin", path, "--out", tmp_path / "out")
    error_line(r, str(path), "not a valid insightface verification file")


# --- 3. python -m facedata.fetch ----------------------------------------------------------------------


def test_fetch_lfw_from_a_folder_that_is_not_lfw(photos, tmp_path, cli):
    dest = tmp_path / "lfw"
    r = cli("-m", "facedata.fetch", "lfw", "--from", photos, "--dest", dest)
    error_line(r, str(photos), "not an LFW copy", "lfw-deepfunneled")
    assert not dest.exists()


def test_fetch_lfw_from_a_half_lfw_names_the_source_not_a_staging_folder(photos, tmp_path, cli):
    """A folder with lfw-deepfunneled/ but no protocol files: the error must name the folder the user
    passed (or its files), not the temporary staging folder that is deleted as the command exits."""
    src = tmp_path / "my_lfw"
    shutil.copytree(photos, src / "lfw-deepfunneled")
    (src / "pairs.txt").write_text("10\t300\n")
    dest = tmp_path / "data" / "lfw"
    r = cli("-m", "facedata.fetch", "lfw", "--from", src, "--dest", dest)
    line = error_line(r, "not an LFW copy", "people.txt")
    assert str(src) in line and ".lfw." not in line, line
    assert not dest.exists()


def test_fetch_celeba_subset_from_an_empty_folder_says_which_files_are_missing(tmp_path, cli):
    from facedata.fetch import read_subset

    empty = tmp_path / "img_celeba"
    empty.mkdir()
    dest = tmp_path / "celeba-subset"
    r = cli("-m", "facedata.fetch", "celeba-subset", "--from", empty, "--dest", dest)
    faces = read_subset()
    line = error_line(r, str(empty), f"{len(faces)} img_celeba photos", "missing", faces[0].source_file)
    assert not dest.exists(), line


# --- 4. python -m id_rate --benchmark lfw with a pairs file in the wrong format -------------------------


@pytest.mark.parametrize("pairs_text, line_no, words", [
    ("name1,n1,name2,n2\nBarack_Obama,1,Barack_Obama,2\n", 1, ["header must be"]),  # a CSV
    ("1\t1\npyfeat_man\t1\tpyfeat_woman\t1\nBarack_Obama\t1\tpyfeat_man\t2\n", 2, ["same-person"]),  # kinds swapped
], ids=["csv", "pair-kinds-swapped"])
def test_lfw_pairs_file_in_the_wrong_format_names_file_and_line(pairs_text, line_no, words, small_aligned, tmp_path,
                                                                cli, no_embedding):
    mini = tmp_path / "lfw_mini"
    shutil.copytree(small_aligned, mini)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(pairs_text)
    r = cli("-m", "id_rate", "--models", "sface", "--benchmark", "lfw", "--lfw-dir", mini,
            "--lfw-pairs", pairs, "--no-cache", "--out", tmp_path / "out")
    error_line(r, f"{pairs}:{line_no}:", *words)
