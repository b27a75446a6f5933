"""The README's results table: rows computed from small hand-made result files (the figures worked out by hand
below), and the README's own table equal to what the tracked records give, so nothing in it is typed."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from id_rate import results_table as rt

HEADER = "| " + " | ".join(rt.COLUMNS) + " |"


def pair(acc: float, std: float, tar: float, **more) -> dict:
    return {"n_pairs": 6000, "accuracy_mean": acc, "accuracy_std": std, "tar_at_far_1e3": tar, "auc": 0.99, **more}


def idrate(auc: float, ci: list[float] | None, tpr: float | None, **point) -> dict:
    cell = {"auc": auc, "points": [{"target_fpr": 0.01, "tpr": 0.95}, {"target_fpr": 0.001, "tpr": tpr, **point}]}
    if ci is not None:
        cell["bootstrap95_over_identities"] = {"auc": ci}
    return cell


def benchmark_results(date: str = "2026-12-01") -> dict:
    """What `python -m id_rate.benchmark` writes, cut to the keys the table reads (and one it does not)."""
    return {"meta": {"date": date, "sets": {"lfw": "...", "cfp-fp": "...", "celeba": "...", "composed": "..."}},
            "models": {
                "sface": {"lfw": pair(0.9951666, 0.0041130, 0.9906667),
                          "cfp-fp": pair(0.9561428, 0.0102430, 0.7922857),
                          "celeba": idrate(0.9728679, [0.9571977, 0.9846809], 0.8888889, fpr=0.00093),
                          "composed": idrate(0.9512345, [0.9398765, 0.9604321], 0.7654321, fpr=0.00099),
                          "agedb": pair(0.5, 0.1, 0.1)},  # a set without a column: ignored
                "mine": {"lfw": {"skipped": "trained on these people", "detail": "..."},
                         "celeba": idrate(0.61, None, None)}},
            "comparisons": []}


def write_results(folder: Path, results: dict, mtime: str = "2026-11-20") -> Path:
    folder.mkdir(parents=True)
    path = folder / "results.json"
    path.write_text(json.dumps(results))
    t = __import__("datetime").datetime.fromisoformat(mtime).timestamp()
    os.utime(path, (t, t))
    return folder


def test_cells_worked_out_by_hand():
    assert rt.pair_cell(pair(0.9951666, 0.0041130, 0.99)) == "99.52 ± 0.41"
    assert rt.pair_cell({"skipped": "trained on these people"}) == "skipped: trained on these people"
    assert rt.pair_cell(None) == "-"
    assert rt.tar_cell(pair(0.9, 0.01, 0.7922857)) == "0.792 (old rule)"  # no reached FAR: made before the tie rule
    assert rt.tar_cell(pair(0.9, 0.01, 0.7922857, achieved_far_1e3=0.00086)) == "0.792 (FAR 0.00086)"
    assert rt.auc_cell(idrate(0.9728679, [0.9571977, 0.9846809], 0.5)) == "0.973 (0.957-0.985)"
    assert rt.auc_cell(idrate(0.61, None, 0.5)) == "0.610"
    assert rt.rate_cell(idrate(0.9, None, 0.8888889)) == "0.889 (old rule)"
    assert rt.rate_cell(idrate(0.9, None, 0.8888889, fpr=0.00093)) == "0.889 (FPR 0.00093)"
    assert rt.rate_cell(idrate(0.9, None, None)) == "n/r"  # FPR below 1 / negatives: not resolvable
    assert rt.rate_cell({"points": [{"target_fpr": 0.01, "tpr": 0.9}]}) == "-"  # 1e-3 not computed


def test_records_give_one_row_per_model_with_its_command_and_date(tmp_path):
    records = tmp_path / "records"
    rt.record(write_results(tmp_path / "bench", benchmark_results()), "make benchmarks", folder=records)
    # an id_rate run on CelebA with LFW pairs: --set names the set its ID-rate figures are on
    id_rate_run = {"meta": {"protocol": "split"},
                   "models": {"dlib": {**idrate(0.9857, [0.976, 0.993], 0.8011), "bootstrap95": {"auc": [0.976, 0.993]},
                                       "lfw": pair(0.9896667, 0.0048, 0.954)}}}
    rt.record(write_results(tmp_path / "celeba", id_rate_run), "make celeba", set_name="celeba", folder=records)
    got = rt.render(rt.load_records(records)).splitlines()
    rows = [ln for ln in got if ln.startswith("| `")]
    assert got[2] == HEADER
    assert rows == [
        "| `sface` | 99.52 ± 0.41 | - | 95.61 ± 1.02 | 0.792 (old rule) | 0.973 (0.957-0.985) | 0.889 (FPR 0.00093) "
        "| 0.951 (0.940-0.960) | 0.765 (FPR 0.00099) | [1] | 2026-12-01 |",
        "| `mine` | skipped: trained on these people | - | - | - | 0.610 | n/r | - | - | [1] | 2026-12-01 |",
        # no meta.date in an id_rate file: the date its results.json was written
        "| `dlib` | 98.97 ± 0.48 | - | - | - | 0.986 (0.976-0.993) | 0.801 (old rule) | - | - | [2] | 2026-11-20 |",
    ]  # record names sort: "bench" before "celeba"
    assert "1. `make benchmarks` (2026-12-01; recorded in `docs/results/bench.json`)" in got
    assert "2. `make celeba` (2026-11-20; recorded in `docs/results/celeba.json`)" in got


def test_a_repeat_with_the_same_figures_is_not_shown_twice(tmp_path):
    records = tmp_path / "records"
    rt.record(write_results(tmp_path / "a", benchmark_results()), "run a", folder=records)
    again = benchmark_results("2026-12-02")
    del again["models"]["sface"]["lfw"]  # the same sface on fewer sets: nothing new
    again["models"]["mine"]["celeba"] = idrate(0.70, None, 0.1)  # other figures: a row of its own
    rt.record(write_results(tmp_path / "b", again), "run b", folder=records)
    rows = [ln for ln in rt.render(rt.load_records(records)).splitlines() if ln.startswith("| `")]
    assert [r.split(" | ")[0] for r in rows] == ["| `sface`", "| `mine`", "| `mine`"]
    assert rows[2].endswith("| 0.700 | 0.100 (old rule) | - | - | [2] | 2026-12-02 |")


def test_main_rewrites_only_the_block_and_check_says_when_it_is_stale(tmp_path, capsys):
    records = tmp_path / "records"
    assert rt.main(["record", str(write_results(tmp_path / "bench", benchmark_results())), "--command",
                    "make benchmarks", "--records", str(records)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{rt.BEGIN}\nold table\n{rt.END}\n\nafter\n")
    args = ["--records", str(records), "--readme", str(readme)]
    assert rt.main(args + ["--check"]) == 1
    assert rt.main(args) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n" + rt.BEGIN + "\n") and text.endswith(rt.END + "\n\nafter\n")
    assert "old table" not in text and "| `sface` | 99.52 ± 0.41 |" in text
    assert rt.main(args + ["--check"]) == 0
    assert rt.main(args) == 0 and readme.read_text() == text  # a second run changes nothing


@pytest.mark.parametrize("argv, words", [
    (["record", "X", "--command", "c", "--set", "agedb"], "--set 'agedb': the table has columns for lfw, cfp-ff, cfp-fp, celeba, composed"),
    (["record", "X"], "record needs the result folder and --command"),
])
def test_bad_record_arguments_are_named(tmp_path, capsys, argv, words):
    argv = [str(write_results(tmp_path / "r", benchmark_results())) if a == "X" else a for a in argv]
    assert rt.main(argv + ["--records", str(tmp_path / "records")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m id_rate.results_table: error: ") and words in err
    assert not (tmp_path / "records").exists()


def test_an_id_rate_file_without_its_set_and_a_readme_without_markers_are_refused(tmp_path, capsys):
    folder = write_results(tmp_path / "r", {"meta": {"protocol": "split"}, "models": {"m": idrate(0.6, None, 0.1)}})
    assert rt.main(["record", str(folder), "--command", "c", "--records", str(tmp_path / "rec")]) == 2
    assert "say which with --set" in capsys.readouterr().err
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert rt.main(["--records", str(tmp_path / "rec"), "--readme", str(readme)]) == 2
    assert rt.BEGIN in capsys.readouterr().err and readme.read_text() == "# no markers\n"


def test_the_readme_table_is_what_the_tracked_records_give():
    """Nothing in the README's table is typed by hand: it is the render of docs/results/*.json."""
    records = rt.load_records()
    assert records, "docs/results/ holds no record"
    assert rt.current_block(rt.README.read_text()) == rt.render(records), \
        "README.md's results table is stale or edited by hand: run `python -m id_rate.results_table`"


def test_a_malformed_record_is_refused_but_a_rendering_bug_is_not_hidden(tmp_path, capsys, monkeypatch):
    records = tmp_path / "records"
    records.mkdir()
    (records / "bad.json").write_text(json.dumps({"recorded": {"command": "c", "date": "2026-01-01"},
                                                  "results": {"models": ["sface"]}}))
    readme = tmp_path / "README.md"
    readme.write_text(f"{rt.BEGIN}\n{rt.END}\n")
    assert rt.main(["--records", str(records), "--readme", str(readme), "--check"]) == 2
    err = capsys.readouterr().err
    assert "bad.json: not a result record ('models' is not an object of one object per model)" in err
    (records / "bad.json").unlink()
    rt.record(write_results(tmp_path / "bench", benchmark_results()), "make benchmarks", folder=records)

    def broken(*args, **kwargs):
        raise KeyError("a bug in the table's code")
    monkeypatch.setattr(rt, "sets_of", broken)
    with pytest.raises(KeyError):  # a bug keeps its traceback: it is not reported as a bad record (exit 2)
        rt.load_records(records)


def test_only_the_keys_the_report_writes_are_read_for_the_rate_reached():
    assert rt.rate_cell(idrate(0.9, None, 0.8888889, achieved_fpr=0.00093)) == "0.889 (old rule)"  # not a key any report writes
    assert rt.tar_cell(pair(0.9, 0.01, 0.7922857, far_at_tar_1e3=0.00086)) == "0.792 (old rule)"
