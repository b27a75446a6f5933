"""Unknown-face thresholds: one record per (model, FPR, flip setting), never mixed across flip settings.

A record is a plain dict ``{"cos": 0.41, "fpr": 1e-3, "flip": False, ...}`` plus where it was measured.
Flip test-time augmentation (an embedding summed with its mirror's) changes the score distribution, so a
flip-TTA embedder only ever uses a threshold measured with flip, and the reverse. Records come from three
places, in this order of precedence: ``id_rate --write-thresholds`` (the measured-thresholds file a
registry entry names as ``measured_thresholds``, read when the model loads), the registry entry (a published
value such as SFace's 0.363), and the checkpoint's own validation (``spec["metrics"]["thresholds"]``, measured
on the run's held-out identities).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from facedata.errors import FaceKitError

REMAKE = "delete it or re-create it with `python -m id_rate ... --write-thresholds FPR`"


class ThresholdsFileError(FaceKitError, ValueError):
    """A measured-thresholds file that cannot be read: cut short, not JSON, or not name -> records."""


def record(cos: float, fpr: float | None, flip: bool, **info: Any) -> dict[str, Any]:
    """A threshold record: cosine similarity ``cos`` measured at ``fpr`` with or without flip TTA."""
    return {"cos": float(cos), "fpr": None if fpr is None else float(fpr), "flip": bool(flip), **info}


def pick_threshold(records: Iterable[Mapping[str, Any]], flip: bool, fpr: float | None = None) -> Mapping[str, Any] | None:
    """The first record with this flip setting (and this FPR when one is asked for); None if there is none."""
    for r in records:
        if r.get("cos") is None or bool(r.get("flip", False)) != flip:
            continue
        if fpr is None or (r.get("fpr") is not None and abs(float(r["fpr"]) - fpr) <= 1e-12):
            return r
    return None


def entry_records(entry: Mapping[str, Any], spec: Mapping[str, Any] | None = None,
                  measured: Iterable[Mapping[str, Any]] = ()) -> list[Mapping[str, Any]]:
    """Every threshold a model has, in precedence order: ``measured`` on data (``load_measured``), the registry
    entry's (its ``thresholds`` records, then ``threshold_cos``), the checkpoint's."""
    out: list[Mapping[str, Any]] = list(measured) + list(entry.get("thresholds", ()))
    if entry.get("threshold_cos") is not None:
        out.append(record(entry["threshold_cos"], entry.get("threshold_fpr"), entry.get("threshold_flip", False),
                          source="registry entry"))
    metrics = (spec or {}).get("metrics") or {}
    out += [dict(r, source=r.get("source", "training validation")) for r in metrics.get("thresholds") or ()]
    legacy = metrics.get("threshold_cos@fpr=1e-3")  # checkpoints written before per-flip thresholds
    if legacy is not None and not metrics.get("thresholds"):
        out.append(record(legacy, 1e-3, False, source="training validation"))
    return out


def load_measured(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """A measured-thresholds file: model name -> records; a file not there is no records. The older
    one-record-per-model form (without a flip setting: it was always measured without flip) reads as a
    flip=False record. A file cut short, not JSON or of another shape is a :class:`ThresholdsFileError`."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError: a file cut short ends here
        raise ThresholdsFileError(f"{path}: not a thresholds file ({exc}); {REMAKE}") from None
    if not isinstance(raw, dict):
        raise ThresholdsFileError(f"{path}: not a thresholds file (a JSON {type(raw).__name__}, not an object of "
                                  f"model name -> records); {REMAKE}")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, value in raw.items():
        if isinstance(value, dict) and "threshold_cos" in value:
            info = {k: v for k, v in value.items() if k not in ("threshold_cos", "threshold_fpr")}
            value = [record(value["threshold_cos"], value.get("threshold_fpr"), False, **info)]
        if not isinstance(value, list) or not all(isinstance(r, dict) and "cos" in r for r in value):
            raise ThresholdsFileError(f"{path}: model {name!r} has no list of threshold records (each with 'cos'); "
                                      f"{REMAKE}")
        out[name] = [dict(r) for r in value]
    return out


def upsert(records: list[Mapping[str, Any]], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``records`` with ``new`` replacing the one of the same (FPR, flip), new first."""
    same = lambda r: bool(r.get("flip")) == bool(new["flip"]) and r.get("fpr") == new["fpr"]  # noqa: E731
    return [dict(new)] + [dict(r) for r in records if not same(r)]
