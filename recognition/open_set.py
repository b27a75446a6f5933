"""The unknown-face threshold for a gallery size at a target FPIR (false-positive identification rate).

A search compares a face with every gallery image and takes the best score, so a stranger is misnamed when *any*
of the G comparisons passes the threshold. With a per-comparison false-match rate FMR at threshold t and the G
non-mated scores of a search taken as independent:

    FPIR(t) = P(max of G non-mated scores >= t) = 1 - (1 - FMR(t))^G,   so   FMR = 1 - (1 - FPIR)^(1/G).

E.g. FMR 1e-4 against G = 1,000 images gives FPIR 1 - (1 - 1e-4)^1000 = 0.0952: a false alarm for about one
search in ten. Images of one person are correlated, not independent, so taking G as the image count is on the
safe side (the FPIR reached is at most the target when the per-comparison rates are right).

The per-comparison FMR -> cosine relation comes from the model's threshold records
(``models_definition.thresholds``: one cosine per measured FPR, for the embedder's flip setting): the cosine is
interpolated linearly in log10(FPR) between measured points, and extrapolated from the two lowest ones below
them, at most ``MAX_EXTRAPOLATION_DECADES`` decades (the tail's shape beyond is a guess; a record measured at a
lower FPR, e.g. in the registry entry's ``thresholds``, removes the need). :func:`empirical_fpir_threshold` reads
the threshold off real non-mated searches instead (``id_rate.metrics.operating_point``, the evaluation's rule).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from facedata.errors import UsageError
from id_rate.metrics import operating_point

# How far below the lowest measured FPR the log-linear tail may be extrapolated: one decade (FPR 1e-3 records
# then cover galleries of about 1,000 images at FPIR 0.1). Two decades let the shipped model's records give
# 0.93 at 1,000 images, where LFW's real tail needs 0.74: beyond one decade the guess is worse than no answer.
MAX_EXTRAPOLATION_DECADES = 1.0


class FpirThresholdError(UsageError):
    """No threshold can be given for this FPIR and gallery size from what the model has measured."""


def per_comparison_fmr(fpir: float, gallery_size: int) -> float:
    """FMR = 1 - (1 - FPIR)^(1/G) (independent comparisons), computed without cancellation for small rates."""
    check_fpir(fpir)
    if gallery_size < 1:
        raise UsageError(f"gallery size {gallery_size}: a search needs at least one gallery image")
    return -math.expm1(math.log1p(-fpir) / gallery_size)


def fpir_of(fmr: float, gallery_size: int) -> float:
    """FPIR = 1 - (1 - FMR)^G: the share of non-mated searches with a false match, independent comparisons."""
    return -math.expm1(gallery_size * math.log1p(-fmr))


def check_fpir(fpir: float, what: str = "--target-fpir") -> float:
    """An FPIR, refused unless 0 < FPIR < 1."""
    if not (isinstance(fpir, (int, float)) and 0.0 < float(fpir) < 1.0):
        raise UsageError(f"{what} {fpir}: a false-positive identification rate must be a number in (0, 1), "
                         f"e.g. 0.01 (one stranger in 100 misnamed)")
    return float(fpir)


def fmr_table(records: Iterable[Mapping[str, Any]], flip: bool) -> list[tuple[float, float]]:
    """(FPR, cosine) points of the threshold records with this flip setting and a stated FPR, by FPR
    ascending; for an FPR given twice the first record (the highest precedence, ``entry_records``' order) wins."""
    seen: dict[float, float] = {}
    for r in records:
        if r.get("cos") is None or r.get("fpr") is None or bool(r.get("flip", False)) != flip:
            continue
        seen.setdefault(float(r["fpr"]), float(r["cos"]))
    return sorted((f, c) for f, c in seen.items() if 0 < f < 1)


@dataclass(frozen=True)
class FpirThreshold:
    """A threshold for a gallery size at a target FPIR, with how it was reached."""

    cos: float
    fpir: float
    gallery_size: int
    fmr: float  # the per-comparison false-match rate it stands for
    how: str  # "measured", "interpolated" or "extrapolated", with the FPRs it was read between

    def describe(self) -> str:
        return (f"threshold {self.cos:.4f} for FPIR {self.fpir:g} against {self.gallery_size} gallery images "
                f"(per-comparison FMR {self.fmr:.3g}, {self.how})")


def threshold_at_fmr(table: list[tuple[float, float]], fmr: float) -> tuple[float, str]:
    """(cosine, how) at per-comparison ``fmr`` from (FPR, cosine) points: linear in log10(FPR)."""
    if not table:
        raise FpirThresholdError("the model has no threshold measured at a stated FPR (with this flip setting); "
                                 "measure some with `python -m id_rate --models NAME --data <aligned folder> "
                                 "--write-thresholds 1e-3` (and 1e-2), or pass --threshold")
    for f, c in table:
        if math.isclose(f, fmr, rel_tol=1e-9):
            return c, f"measured at FPR {f:g}"
    if len(table) == 1:
        raise FpirThresholdError(f"per-comparison FMR {fmr:.3g}: the model has a threshold at FPR {table[0][0]:g} "
                                 "only, and one point gives no slope; measure a second with `python -m id_rate "
                                 "... --write-thresholds FPR`, or pass --threshold")
    x = math.log10(fmr)
    lo_f = table[0][0]
    if fmr < lo_f and math.log10(lo_f) - x > MAX_EXTRAPOLATION_DECADES:
        raise FpirThresholdError(
            f"per-comparison FMR {fmr:.3g} is more than {MAX_EXTRAPOLATION_DECADES:g} decades below the lowest FPR "
            f"the model was measured at ({lo_f:g}): a larger FPIR or a smaller gallery, a threshold record at a "
            f"lower FPR (the registry entry's 'thresholds'), or --threshold")
    # the segment holding fmr, or the end segment nearest it for extrapolation
    i = int(np.clip(np.searchsorted([f for f, _ in table], fmr), 1, len(table) - 1))
    (f0, c0), (f1, c1) = table[i - 1], table[i]
    x0, x1 = math.log10(f0), math.log10(f1)
    cos = c0 + (c1 - c0) * (x - x0) / (x1 - x0)
    how = "interpolated" if f0 <= fmr <= f1 else "extrapolated"
    if cos >= 1.0:  # no cosine reaches so low a rate: every face would be Unknown
        raise FpirThresholdError(f"per-comparison FMR {fmr:.3g}: the model's tail, {how} from FPR {f0:g} and {f1:g}, "
                                 f"reaches cosine 1 before it; a larger FPIR, a smaller gallery, or --threshold")
    return cos, f"{how} in log10(FPR) from FPR {f0:g} and {f1:g}"


def threshold_for_fpir(table: list[tuple[float, float]], fpir: float, gallery_size: int) -> FpirThreshold:
    """The threshold giving ``fpir`` against ``gallery_size`` images, from (FPR, cosine) points (:func:`fmr_table`)."""
    fmr = per_comparison_fmr(fpir, gallery_size)
    cos, how = threshold_at_fmr(table, fmr)
    return FpirThreshold(cos, fpir, gallery_size, fmr, how)


def model_fpir_threshold(embedder, entry: Mapping[str, Any], fpir: float, gallery_size: int) -> FpirThreshold:
    """:func:`threshold_for_fpir` from every threshold record the model has (``thresholds.entry_records``: the
    measured-thresholds file, its registry entry, its checkpoint), for its flip setting."""
    from models_definition.thresholds import entry_records, load_measured

    records = getattr(embedder, "records", ())  # load_model's, an ONNX file's metadata included
    if not records:
        file = entry.get("measured_thresholds")
        measured = load_measured(file).get(embedder.name, []) if file is not None else []
        records = entry_records(entry, embedder.spec, measured)
    table = fmr_table(records, embedder.flip_tta)
    return threshold_for_fpir(table, fpir, gallery_size)


def empirical_fpir_threshold(nonmated_top: np.ndarray, fpir: float,
                             mated_hits: np.ndarray | None = None) -> float | None:
    """The threshold at ``fpir`` read off real non-mated searches (their top scores), by the evaluation's rule
    (``operating_point``: at most int(FPIR x searches) accepted, ties rejected together; with ``mated_hits``, the
    rank-1 mates' scores, the lowest one above that boundary; without, the lowest score above it). None when
    FPIR < 1 / searches."""
    neg = np.sort(np.asarray(nonmated_top, np.float64))
    # no mates: one below every score, so operating_point takes its "no positive above the boundary" branch
    pos = np.sort(np.asarray(mated_hits, np.float64)) if mated_hits is not None and len(mated_hits) else np.array([-np.inf])
    return operating_point(pos, neg, len(neg), check_fpir(fpir, "FPIR")).threshold
