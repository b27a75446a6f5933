"""The identity-overlap audit on the real evaluation sets: LFW, CFP and the CelebA people reserved for evaluation.

Needs local copies fetched and aligned into data/ (`make benchmarks` and `make compose`); each test skips
without them, naming what is missing. To keep a test to seconds, the evaluation sets keep every key (every
LFW name, every CFP name, all 299 reserved CelebA numbers) but only a few hundred identities' faces.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from facedata.audit import EvalSet, audit, celeba_set, cfp_set, lfw_set, normalise_name
from facedata.compose import Source, compose

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def need(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"needs the local copies {', '.join(missing)} (fetch and align them as the README says)")


def few_faces(es: EvalSet, keep: set[str], others: int) -> EvalSet:
    """The same keys, faces of ``keep`` and of the first ``others`` other identities that have faces."""
    rest = [i for i in sorted(es.faces) if i not in keep and es.faces[i]][:others]
    es.faces = {i: es.faces[i] for i in sorted(keep) + rest if i in es.faces}
    return es


def source_from(tmp: Path, folders: dict[str, list[Path]]) -> Path:
    """An aligned source (crops and a prepare-style manifest) from existing crops."""
    from facedata.prepare import MANIFEST_FIELDS

    rows = []
    for ident, crops in folders.items():
        for c in crops:
            (tmp / ident).mkdir(parents=True, exist_ok=True)
            shutil.copy(c, tmp / ident / c.name)
            rows.append({**{k: "" for k in MANIFEST_FIELDS}, "source": f"{ident}/{c.name}", "output": f"{ident}/{c.name}",
                         "status": "ok", "method": "mtcnn"})
    with open(tmp / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return tmp


@pytest.fixture(scope="module")
def sface():
    import config
    from models_definition.zoo import load_model

    return load_model("sface", config.MODELS, device="cpu")


def test_celeba_aligned_files_of_reserved_people_are_flagged_by_number(sface, tmp_path):
    aligned = DATA / "celeba-img-align_aligned"
    need(aligned, DATA / "celeba_aligned")
    es = celeba_set(subset_aligned=DATA / "celeba_aligned")
    reserved = set(es.keys.values())
    folders = sorted(d for d in aligned.iterdir() if d.is_dir())
    hit = [d for d in folders if str(int(d.name[2:])) in reserved][:3]
    miss = [d for d in folders if str(int(d.name[2:])) not in reserved][:3]
    assert len(hit) == 3, "the aligned CelebA files 1-10,000 hold photos of 167 reserved people"
    src = source_from(tmp_path / "src", {d.name: sorted(d.glob("*.jpg")) for d in hit + miss})
    items = compose([Source("celeba", src, key="celeba", min_images=1)]).items
    report = audit(items, {"celeba": "celeba"}, [few_faces(es, set(), 40)], sface, progress=False)
    by_key = {f.identity for f in report.flags if f.by == "key"}
    assert by_key == {f"celeba/{d.name}" for d in hit}


def test_cfp_people_who_are_lfw_people_are_flagged_by_name_and_by_face(sface, tmp_path):
    need(DATA / "lfw" / "lfw-names.txt", DATA / "lfw_aligned", DATA / "cfp" / "Data" / "list_name.txt",
         DATA / "cfp_aligned")
    lfw = lfw_set(DATA / "lfw", DATA / "lfw_aligned")
    cfp = cfp_set(DATA / "cfp", DATA / "cfp_aligned")
    by_name = {k: i for i, k in lfw.keys.items()}
    both = [(n, cfp.keys[n]) for n in sorted(cfp.keys) if cfp.keys[n] in by_name and len(lfw.faces[by_name[cfp.keys[n]]]) >= 3]
    assert len(both) >= 5
    only_cfp = [n for n in sorted(cfp.keys) if cfp.keys[n] not in by_name][:3]
    # CFP people under their names (a named source): the LFW people among them match by name
    named = {cfp.keys[n].replace(" ", "_"): cfp.faces[n][:4] for n, _ in both[:3]}
    named.update({cfp.keys[n].replace(" ", "_"): cfp.faces[n][:4] for n in only_cfp})
    # ... and two more LFW people's CFP photos under no name (as FIW holds public figures): found by face alone
    unnamed = {f"F9{k:03d}/MID1": cfp.faces[n][:4] for k, (n, _) in enumerate(both[3:5])}
    sources = [Source("cfpnamed", source_from(tmp_path / "named", named), key="name", min_images=1),
               Source("nokey", source_from(tmp_path / "nokey", unnamed), key="none", min_images=1)]
    items = compose(sources).items
    keep = {by_name[k] for _, k in both[:5]}
    cfp_keep = {n for n, _ in both[:5]} | set(only_cfp)
    # about 52,000 known-different pairs here: a rate of 1e-3 lets about 50 reach the threshold, as 1e-5 does on
    # the full sets' 16.7 million (at 1e-5 here the threshold would be the single highest pair)
    report = audit(items, {"cfpnamed": "name", "nokey": "none"},
                   [few_faces(lfw, keep, 300), few_faces(cfp, cfp_keep, 100)], sface, progress=False,
                   max_false_flag_rate=1e-3)
    t = report.threshold  # across LFW x CFP: the rate on pairs the threshold was not set on, and the recall
    assert t["measured_on_pairs"] > 10_000 and t["measured_false_flag_rate"] < 3e-3
    hits, n = (int(v) for v in t["recall_known_same"].split()[0].split("/"))
    assert n == t["known_same_pairs"] >= 5 and hits >= 0.8 * n
    by_key = {f.identity for f in report.flags if f.by == "key" and f.eval_set == "lfw"}
    by_face = {f.identity for f in report.flags if f.by == "face" and f.eval_set == "lfw"}
    assert by_key == {f"cfpnamed/{normalise_name(k).replace(' ', '_')}" for _, k in both[:3]}
    assert {"nokey/F9000/MID1", "nokey/F9001/MID1"} <= by_face
    assert not {f"cfpnamed/{cfp.keys[n].replace(' ', '_')}" for n in only_cfp} & (by_key | by_face)
    for f in report.flags:  # a face flag names the right LFW person
        if f.identity.startswith("nokey/") and f.eval_set == "lfw":
            k = int(f.identity.split("/")[1][2:])
            assert f.eval_identity == by_name[both[3 + k][1]]


def test_the_cfp_split_files_parse_as_published():
    need(DATA / "cfp" / "Protocol" / "Split")
    from facedata.cfp import parse_split

    for kind in ("FF", "FP"):
        pairs = parse_split(DATA / "cfp", kind)
        assert len(pairs) == 7000
        assert sum(1 for p in pairs if p[3]) == 3500
