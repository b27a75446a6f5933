"""The identity-overlap audit: is any training identity a person the models will be scored on?

Two checks, for every training identity against every evaluation set (:class:`EvalSet`):

* **by key**, where the training source and the evaluation set name people the same way: people's names
  (LFW, CFP; compared after :func:`normalise_name`) or CelebA identity numbers (the CelebA subset and the
  299 CelebA people reserved for evaluation);
* **by face**, where no key exists (FIW's families carry no names; a CelebA number says nothing about LFW):
  every training and evaluation face is embedded with a reference model, each identity becomes the
  normalised mean of its faces, and a training identity is flagged when its mean's cosine to an evaluation
  identity's mean reaches a threshold. The threshold is set from identities known to differ (every pair of
  differently keyed people within each evaluation set): the smallest cosine that at most
  ``max_false_flag_rate`` of those pairs reach. Reported with it: that rate within each set (populations
  differ), the rate measured across datasets on pairs it was not set on (differently named LFW x CFP
  people), and the recall on people known to be the same under two datasets' names (CFP people in LFW).

:func:`audit` returns an :class:`AuditReport`; ``write`` puts ``audit.json``, ``audit.md`` (the table per
source and evaluation set: identities checked, flagged by key, flagged by face, dropped), ``audit_flags.csv``
and ``audit_flags.png`` (a contact sheet of the face-flagged pairs, for a person to check) in a folder.
Training refuses a composed set whose audit misses an evaluation set or kept a flagged identity
(:func:`check_trainable`).
"""
from __future__ import annotations

import csv
import io
import json
import re
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from id_rate.scoring import l2_normalize, similarity_matrix  # numpy only: the project's one cosine scoring

from .errors import DatasetError
from .io import image_files, write_bytes_atomic

AUDIT_JSON = "audit.json"
DEFAULT_MAX_FALSE_FLAG_RATE = 1e-5  # per identity pair; about 0.06 false flags per training identity at 6k x 6k
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
CELEBA_EVALUATION_IDS = PACKAGE_DATA / "celeba_evaluation_identities.txt"
SHEET_LIMIT = 200  # face-flagged pairs drawn on the contact sheet (highest cosine first); the CSV lists all


class AuditError(DatasetError):
    """An audit that cannot run, or a composed set the audit does not clear for training."""


def normalise_name(name: str) -> str:
    """A person's name as a key: accents dropped, case folded, '_' and punctuation as spaces
    ("Arnold_Schwarzenegger" and "Arnold Schwarzenegger" match; so do "Jose" and "José")."""
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_.lower()).split())


def celeba_number(identity: str) -> str:
    """CelebA's identity number of a folder name ("id02880" or "2880" -> "2880"); anything else is an error
    (a key read wrongly would let a reserved person through unseen)."""
    m = re.fullmatch(r"(?:id)?0*(\d+)", identity.rsplit("/", 1)[-1])
    if m is None:
        raise AuditError(f"identity {identity!r} is not a CelebA identity number (expected id02880 or 2880); "
                         "give this source key=none if its folders are not CelebA numbers")
    return str(int(m.group(1)))


KEYERS: dict[str, Callable[[str], str]] = {"name": normalise_name, "celeba": celeba_number}


@dataclass
class EvalSet:
    """People the project reports on: their keys, and where their aligned faces are (if anywhere)."""

    name: str  # "lfw", "cfp", "celeba"
    key: str  # "name" or "celeba": what ``keys`` hold
    keys: dict[str, str]  # evaluation identity -> its key (already normalised)
    faces: dict[str, list[Path]] = field(default_factory=dict)  # evaluation identity -> aligned crops
    note: str = ""  # where the identities and faces came from

    @property
    def n_with_faces(self) -> int:
        return sum(1 for v in self.faces.values() if v)


# --- evaluation sets from the project's data ----------------------------------------------------------------
def lfw_set(lfw_root: Path, aligned: Path | None) -> EvalSet:
    """All 5,749 LFW names (lfw-names.txt); faces from the aligned LFW folder when it exists."""
    names_file = Path(lfw_root) / "lfw-names.txt"
    if not names_file.is_file():
        raise AuditError(f"{names_file} not found: the audit checks every LFW name; run `make lfw` (or "
                         "`python -m facedata.fetch lfw`) first")
    names = [ln.split()[0] for ln in names_file.read_text().splitlines() if ln.strip()]
    faces = _faces_by_first_part(aligned, names)
    return EvalSet("lfw", "name", {n: normalise_name(n) for n in names}, faces,
                   f"{len(names)} names of {names_file}; faces from {aligned}")


def cfp_set(cfp_root: Path, aligned: Path | None) -> EvalSet:
    """CFP's 500 people (Data/list_name.txt, person NNN = line NNN); faces: their aligned frontal crops (the
    profile crops would pull an identity's mean away from the mostly frontal training faces)."""
    names_file = Path(cfp_root) / "Data" / "list_name.txt"
    if not names_file.is_file():
        raise AuditError(f"{names_file} not found: the audit checks every CFP name; run `python -m facedata.fetch "
                         "cfp` first")
    names = [ln.strip() for ln in names_file.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    ids = [f"{i:03d}" for i in range(1, len(names) + 1)]
    faces = {}
    if aligned is not None and Path(aligned).is_dir():
        faces = {i: image_files(Path(aligned) / i / "frontal") for i in ids if (Path(aligned) / i / "frontal").is_dir()}
    return EvalSet("cfp", "name", {i: normalise_name(n) for i, n in zip(ids, names)}, faces,
                   f"{len(names)} names of {names_file}; frontal faces from {aligned}")


def celeba_set(reserved_file: Path = CELEBA_EVALUATION_IDS, subset_aligned: Path | None = None) -> EvalSet:
    """The 299 CelebA identity numbers reserved for evaluation (the CelebA subset's 239 and 60 more); faces
    from the aligned subset (``id0NNNN/``) when it exists."""
    if not Path(reserved_file).is_file():
        raise AuditError(f"{reserved_file} not found: the list of CelebA people reserved for evaluation")
    keys = {}
    for n, line in enumerate(Path(reserved_file).read_text().splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            if not line.strip().isdigit():
                raise AuditError(f"{reserved_file}:{n}: expected a CelebA identity number, got {line.strip()!r}")
            keys[f"id{int(line):05d}"] = str(int(line))  # named as the subset's folders
    faces: dict[str, list[Path]] = {}
    if subset_aligned is not None and Path(subset_aligned).is_dir():
        faces = {d.name: image_files(d) for d in Path(subset_aligned).iterdir() if d.is_dir() and d.name in keys}
    return EvalSet("celeba", "celeba", keys, faces,
                   f"{len(keys)} CelebA identity numbers of {reserved_file}; faces from {subset_aligned}")


def _faces_by_first_part(aligned: Path | None, identities: Sequence[str]) -> dict[str, list[Path]]:
    if aligned is None or not Path(aligned).is_dir():
        return {}
    return {i: image_files(Path(aligned) / i) for i in identities if (Path(aligned) / i).is_dir()}


def project_eval_sets(cfg: Any) -> list[EvalSet]:
    """Every evaluation set this project reports on, from a config module's roots (LFW, CFP, CelebA)."""
    return [lfw_set(cfg.LFW_ROOT, cfg.LFW_ALIGNED), cfp_set(cfg.CFP_ROOT, cfg.CFP_ALIGNED),
            celeba_set(CELEBA_EVALUATION_IDS, cfg.CELEBA_ALIGNED)]


# --- the audit -------------------------------------------------------------------------------------------------
@dataclass
class Flag:
    identity: str  # the training identity
    eval_set: str
    eval_identity: str
    by: str  # "key" or "face"
    cosine: float | None = None  # by face: the identity means' cosine


@dataclass
class AuditReport:
    sources: dict[str, str]  # source -> key kind
    eval_sets: list[dict]  # name, key, identities, with faces, note
    checked: dict[str, int]  # source -> training identities checked
    flags: list[Flag]
    threshold: dict[str, Any]  # cosine, max false-flag rate, measured rate, recall on known matches, ...
    reference: str
    seconds: float
    faces_embedded: int
    faces_of: dict[str, Path] = field(default_factory=dict, repr=False)  # identity -> one crop (contact sheet)

    def flagged_identities(self) -> set[str]:
        return {f.identity for f in self.flags}

    def table(self) -> list[dict[str, Any]]:
        """Per source and evaluation set: identities checked, flagged by key, by face, dropped (either)."""
        rows = []
        for src, n in self.checked.items():
            for es in self.eval_sets:
                mine = [f for f in self.flags if f.eval_set == es["name"] and f.identity.split("/", 1)[0] == src]
                key = {f.identity for f in mine if f.by == "key"}
                face = {f.identity for f in mine if f.by == "face"}
                rows.append({"source": src, "eval_set": es["name"], "identities_checked": n,
                             "by_key": "yes" if self.sources[src] == es["key"] else "no key",
                             "flagged_by_key": len(key), "flagged_by_face": len(face), "dropped": len(key | face)})
        return rows

    def summary(self, kept_flagged: bool = False) -> dict[str, Any]:
        """What checkpoints and training read: which sets were covered, what was flagged, and the rule."""
        return {"eval_sets": [e["name"] for e in self.eval_sets], "reference": self.reference,
                "threshold": self.threshold, "flagged_identities": len(self.flagged_identities()),
                "kept_flagged": sorted(self.flagged_identities()) if kept_flagged else [],
                "seconds": round(self.seconds, 1), "faces_embedded": self.faces_embedded}

    def markdown(self) -> str:
        t = self.threshold
        lines = ["| source | evaluation set | identities checked | by key | flagged by key | flagged by face | dropped |",
                 "|---|---|---|---|---|---|---|"]
        for r in self.table():
            lines.append(f"| {r['source']} | {r['eval_set']} | {r['identities_checked']:,} | {r['by_key']} | "
                         f"{r['flagged_by_key']} | {r['flagged_by_face']} | {r['dropped']} |")
        lines += ["", "Evaluation sets: " + "; ".join(
            f"{e['name']}: {e['identities']:,} identities, {e['with_faces']:,} with faces (the others are checked "
            "by key alone)" for e in self.eval_sets),
            "", f"Face rule: identity means of {self.reference} embeddings, flagged at cosine >= {t['cosine']:.4f}: "
            f"the smallest cosine that at most {t['max_false_flag_rate']:g} of {t['known_different_pairs']:,} "
            f"identity pairs known to differ reach (measured: {t['false_flag_rate']:.2g}; expected false flags "
            f"for this set: {t['expected_false_flags']:.1f})."
            + (f" Measured on {t['measured_on_pairs']:,} pairs of differently named people of two datasets, which "
               f"the threshold was not set on: {t['measured_false_flag_rate']:.2g}."
               if t.get("measured_on_pairs") else "")
            + (" Within each set: " + ", ".join(f"{k} {v:.2g}" for k, v in t["rate_by_set"].items()) + "."
               if t.get("rate_by_set") else "")
            + f" Recall on {t['known_same_pairs']} people known to be the same under two sets' names: "
            f"{t['recall_known_same'] or 'not measured (needs two named sets with faces)'}.",
            f"Face-flagged pairs: {sum(1 for f in self.flags if f.by == 'face')}; audit_flags.png shows the "
            f"{min(SHEET_LIMIT, sum(1 for f in self.flags if f.by == 'face'))} of highest cosine, audit_flags.csv "
            "lists all.",
            f"Audit time: {self.seconds:.0f} s for {self.faces_embedded:,} faces (embeddings read from the cache "
            "where an earlier run made them)."]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, remaining: set[str] | None = None) -> list[Path]:
        """audit.json, audit.md, audit_flags.csv and (if any face flag) audit_flags.png in ``folder``;
        ``remaining``: flagged identities the set keeps anyway (training refuses them unless told)."""
        folder = Path(folder)
        data = {**self.summary(), "kept_flagged": sorted(remaining or ()), "sources": self.sources,
                "eval_set_details": self.eval_sets, "table": self.table(), "flags": [f.__dict__ for f in self.flags]}
        write_bytes_atomic(json.dumps(data, indent=1).encode(), folder / AUDIT_JSON)
        write_bytes_atomic(self.markdown().encode(), folder / "audit.md")
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["identity", "eval_set", "eval_identity", "by", "cosine"])
        for f in self.flags:
            w.writerow([f.identity, f.eval_set, f.eval_identity, f.by, "" if f.cosine is None else f"{f.cosine:.4f}"])
        write_bytes_atomic(buf.getvalue().encode(), folder / "audit_flags.csv")
        out = [folder / AUDIT_JSON, folder / "audit.md", folder / "audit_flags.csv"]
        face_flags = [f for f in self.flags if f.by == "face"]
        if face_flags:
            out.append(contact_sheet(face_flags, self.faces_of, folder / "audit_flags.png"))
        return out


def identity_means(emb: np.ndarray, groups: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(identities in first-seen order, their L2-normalised mean embeddings)."""
    order: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        order[g].append(i)
    names = list(order)
    means = np.stack([emb[order[n]].mean(0) for n in names]) if names else np.zeros((0, emb.shape[1]), np.float32)
    return names, l2_normalize(means, "identity means")


def calibrate(different: Mapping[str, np.ndarray], same: Sequence[tuple[np.ndarray, np.ndarray]], max_rate: float,
              n_comparisons: int) -> dict[str, Any]:
    """The flag threshold from identity means known to differ: ``different`` maps each set to the means of its
    differently keyed identities, and every pair within a set counts. ``same``: pairs of means of one person
    under two sets' names (the recall). Returns the threshold record the report states, with each set's own
    share of known-different pairs at the threshold (``rate_by_set``: populations differ)."""
    scores = {name: similarity_matrix(m, m)[np.triu_indices(len(m), 1)] for name, m in different.items()}
    n_pairs = sum(len(v) for v in scores.values())
    if n_pairs == 0:
        raise AuditError("no identities known to differ to set the face threshold from (no evaluation faces)")
    allowed = int(np.floor(max_rate * n_pairs))  # pairs that may reach the threshold
    top = np.sort(np.concatenate([np.sort(v)[-(allowed + 1):] for v in scores.values()]))[::-1]
    # just above the (allowed + 1)-th highest score: at most `allowed` known-different pairs reach it
    cos = float(np.nextafter(np.float32(top[allowed]), np.float32(2))) if allowed < len(top) else float(top[-1])
    reached = {name: int((v >= cos).sum()) for name, v in scores.items()}
    recall = None
    if same:
        hits = [float(similarity_matrix(a, b)) >= cos for a, b in same]
        recall = f"{sum(hits)}/{len(hits)} ({sum(hits) / len(hits):.3f})"
    return {"cosine": cos, "max_false_flag_rate": max_rate, "known_different_pairs": n_pairs,
            "false_flag_rate": sum(reached.values()) / n_pairs,
            "expected_false_flags": sum(reached.values()) / n_pairs * n_comparisons,
            "known_same_pairs": len(same), "recall_known_same": recall,
            "rate_by_set": {name: reached[name] / len(v) for name, v in scores.items() if len(v)}}


def audit(items: Sequence[Any], source_keys: Mapping[str, str], eval_sets: Sequence[EvalSet], embedder: Any,
          cache_dir: Path | None = None, max_false_flag_rate: float = DEFAULT_MAX_FALSE_FLAG_RATE,
          progress: bool = True) -> AuditReport:
    """Check composed-set ``items`` (``.identity``, ``.source``, ``.original_identity``, ``.path``) against
    ``eval_sets``; ``source_keys`` maps each source to its key kind ("none", "name", "celeba");
    ``embedder`` a FaceEmbedder (the reference model of the face check)."""
    from id_rate.embeddings import embed_paths

    start = time.perf_counter()
    for es in eval_sets:  # a set no key can reach must be checked by face: its faces must be there
        keyless = sorted(src for src, k in source_keys.items() if k != es.key)
        if keyless and es.n_with_faces == 0:
            raise AuditError(f"evaluation set {es.name}: no aligned faces found ({es.note}), so sources "
                             f"{', '.join(keyless)} cannot be checked against it by face; align it first "
                             "(`make benchmarks` fetches and aligns LFW, CFP and the CelebA subset)")
    flags: list[Flag] = []
    per_identity: dict[str, list[Any]] = defaultdict(list)
    for it in items:
        per_identity[it.identity].append(it)
    # by key; a training identity found by key lends its faces to the evaluation person it is (the CelebA
    # people reserved for evaluation have photos in CelebA's aligned copy, and only there), so that sources
    # without that key are checked against those faces too
    lent: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for es in eval_sets:
        by_key: dict[str, list[str]] = defaultdict(list)
        for ident, k in es.keys.items():
            by_key[k].append(ident)
        keyer = KEYERS[es.key]
        for ident, its in per_identity.items():
            if source_keys.get(its[0].source) != es.key:
                continue
            for e in by_key.get(keyer(its[0].original_identity), []):
                flags.append(Flag(ident, es.name, e, "key"))
                lent[es.name][e] += [it.path for it in its]
    # by face: every training crop and every evaluation crop, embedded once; cached per evaluation set and per
    # source, so a second composition (other filters, another source) embeds only what is new
    def embed(paths: list[Path]) -> dict[Path, np.ndarray]:
        paths = sorted(set(paths))
        return dict(zip(paths, embed_paths(embedder, paths, cache_dir, progress=progress))) if paths else {}

    tr_paths = [(it.identity, it.path) for it in items]
    table: dict[Path, np.ndarray] = {}
    for src in sorted({it.source for it in items}):
        table.update(embed([it.path for it in items if it.source == src]))
    tr_names, tr_means = identity_means(np.stack([table[p] for _, p in tr_paths]) if tr_paths else
                                        np.zeros((0, embedder.embedding_size), np.float32), [i for i, _ in tr_paths])
    faces_of = {i: p for i, p in reversed(tr_paths)}
    ev_means: dict[str, tuple[list[str], np.ndarray]] = {}
    n_faces = len(table)
    faces_by_set = {es.name: {e: list(es.faces.get(e, [])) + lent[es.name].get(e, []) for e in es.keys}
                    for es in eval_sets}
    for es in eval_sets:
        mine = [(e, p) for e, ps in faces_by_set[es.name].items() for p in ps]
        if mine:
            got = embed([p for _, p in mine])
            n_faces += len(got)
            ev_means[es.name] = identity_means(np.stack([got[p] for _, p in mine]), [e for e, _ in mine])
            faces_of.update({f"{es.name}:{e}": p for e, p in reversed(mine)})
    # the threshold: identities known to differ (distinct keys within each set), and people known
    # to be the same under two sets' names
    different = {}
    for es in eval_sets:
        if es.name in ev_means:
            names, m = ev_means[es.name]
            seen, keep = set(), []
            for j, n in enumerate(names):  # one identity per key (LFW has none twice; be safe)
                if es.keys[n] not in seen:
                    seen.add(es.keys[n])
                    keep.append(j)
            different[es.name] = m[keep]
    same, cross_different = _across_named_sets(eval_sets, ev_means)
    n_cmp = len(tr_names) * sum(len(v[0]) for v in ev_means.values())
    threshold = calibrate(different, same, max_false_flag_rate, n_cmp)
    # the rate measured where the flags happen: across datasets, on pairs the threshold was not set on
    # (differently named people of two named sets, e.g. LFW x CFP)
    if len(cross_different):
        threshold["measured_false_flag_rate"] = float((cross_different >= threshold["cosine"]).mean())
        threshold["measured_on_pairs"] = int(len(cross_different))
    for es in eval_sets:
        if es.name not in ev_means or not len(tr_names):
            continue
        names, m = ev_means[es.name]
        sims = similarity_matrix(tr_means, m)
        by_key = {(f.identity, f.eval_identity) for f in flags if f.by == "key" and f.eval_set == es.name}
        for a, b in zip(*np.nonzero(sims >= threshold["cosine"])):
            if (tr_names[a], names[b]) not in by_key:  # found by key already (and matching its own lent faces)
                flags.append(Flag(tr_names[a], es.name, names[b], "face", float(sims[a, b])))
    flags.sort(key=lambda f: (f.by, -(f.cosine or 0.0), f.identity))
    checked = defaultdict(int)
    for ident, its in per_identity.items():
        checked[its[0].source] += 1
    with_faces = {es.name: sum(1 for v in faces_by_set[es.name].values() if v) for es in eval_sets}
    return AuditReport(dict(source_keys), [{"name": es.name, "key": es.key, "identities": len(es.keys),
                                            "with_faces": with_faces[es.name], "note": es.note} for es in eval_sets],
                       dict(checked), flags, threshold, embedder.name, time.perf_counter() - start, n_faces,
                       faces_of)


def _across_named_sets(eval_sets: Sequence[EvalSet], ev_means: Mapping[str, tuple[list[str], np.ndarray]]
                       ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Across every two named sets: the pairs of means of one person under both (CFP people who are in LFW,
    by name: the recall) and the cosines of every pair of differently named people (the false-flag rate)."""
    named = [es for es in eval_sets if es.key == "name" and es.name in ev_means]
    same, different = [], []
    for i, a in enumerate(named):
        for b in named[i + 1:]:
            na, ma = ev_means[a.name]
            nb, mb = ev_means[b.name]
            ka, kb = np.array([a.keys[n] for n in na]), np.array([b.keys[n] for n in nb])
            idx_b = {k: j for j, k in enumerate(kb)}
            same += [(ma[j], mb[idx_b[k]]) for j, k in enumerate(ka) if k in idx_b]
            sims = similarity_matrix(ma, mb)
            different.append(sims[ka[:, None] != kb[None, :]])
    return same, (np.concatenate(different) if different else np.zeros(0, np.float32))


def contact_sheet(flags: Sequence[Flag], faces_of: Mapping[str, Path], path: Path, per_row: int = 4,
                  limit: int = SHEET_LIMIT, tile: int = 112) -> Path:
    """A PNG of face-flagged pairs (training face | evaluation face, names and cosine), highest cosine first."""
    from PIL import Image, ImageDraw

    from .io import atomic_output, load_image

    shown = sorted(flags, key=lambda f: -(f.cosine or 0))[:limit]
    cap = 30
    cell_w, cell_h = 2 * tile + 8, tile + cap
    rows = (len(shown) + per_row - 1) // per_row
    sheet = Image.new("RGB", (per_row * cell_w, max(1, rows) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for k, f in enumerate(shown):
        x, y = (k % per_row) * cell_w, (k // per_row) * cell_h
        for j, key in enumerate((f.identity, f"{f.eval_set}:{f.eval_identity}")):
            p = faces_of.get(key)
            if p is not None:
                sheet.paste(Image.fromarray(load_image(p)).resize((tile, tile)), (x + j * tile, y))
        draw.text((x + 2, y + tile + 1), f.identity[-30:], fill="black")
        draw.text((x + 2, y + tile + 14), f"{f.eval_set}:{f.eval_identity}"[-26:] + f" {f.cosine:.2f}", fill="black")
    with atomic_output(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


# --- training's side ---------------------------------------------------------------------------------------------
def read_audit(data: Path) -> dict | None:
    """The audit stored with a composed set (None for a folder that is not one)."""
    from .compose import SPEC

    data = Path(data)
    folder = data.parent if data.suffix == ".rec" else data
    if not (folder / SPEC).is_file():
        return None
    audit_file = folder / AUDIT_JSON
    if not audit_file.is_file():
        return {"eval_sets": [], "kept_flagged": [], "missing": True}
    try:
        return json.loads(audit_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AuditError(f"{audit_file}: unreadable ({exc}); compose the set again") from None


def check_trainable(data: Path, required: Sequence[str], allow_overlap: bool = False) -> dict | None:
    """Refuse a composed set that was not audited against every ``required`` evaluation set or that kept
    flagged identities, naming them, unless ``allow_overlap``. Returns what the checkpoint records."""
    audit_ = read_audit(data)
    if audit_ is None:
        return None
    missing = [s for s in required if s not in audit_.get("eval_sets", [])]
    kept = audit_.get("kept_flagged", [])
    problems = ["it has no audit.json (never audited)"] if audit_.get("missing") else []
    if missing:
        problems.append(f"it was not audited against {', '.join(missing)}")
    if kept:
        problems.append(f"it keeps {len(kept)} identities the audit flagged ({', '.join(kept[:5])}"
                        f"{' ...' if len(kept) > 5 else ''})")
    record = {"eval_sets": audit_.get("eval_sets", []), "flagged_kept": len(kept), "missing": missing,
              "allow_overlap": allow_overlap}
    if problems and not allow_overlap:
        raise AuditError(f"{data}: refused for training: {'; '.join(problems)}. Compose it again without "
                         "--keep-flagged (and with every evaluation set aligned), or set allow_overlap=True to "
                         "train anyway (recorded in the checkpoint; its scores on those sets then mean seen people)")
    return record


def coverage_warning(spec: Mapping[str, Any], eval_set: str) -> str | None:
    """A warning when a checkpoint is scored on a set its training audit did not cover (None: covered, or not
    a checkpoint of ours)."""
    tc = spec.get("train_config") or {}
    if not tc:
        return None
    rec = spec.get("audit")
    if rec is None:
        return f"trained on {tc.get('data')}, which has no identity-overlap audit: {eval_set} may hold its people"
    if eval_set not in rec.get("eval_sets", []) or rec.get("flagged_kept"):
        return f"its training audit did not clear {eval_set} (allow_overlap={rec.get('allow_overlap')})"
    return None
