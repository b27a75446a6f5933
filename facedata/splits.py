"""The split settings of a training run, in one typed place (torch-free: evaluation and scripts read it).

``DEFAULT_SPLIT_SEED`` is the one default of every seeded split (training's hold-out and closed-set split,
evaluation's rebuilt hold-out). :class:`SplitSpec` is what a run's split depends on; it is stored in every
checkpoint (``spec["split"]``) and read back with :meth:`SplitSpec.from_checkpoint`, which also reads a
checkpoint written before it existed (the split fields of ``spec["train_config"]``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

# The seed project's split seed; fixed so that every model of a comparison is trained and scored on the
# same identities (config.SPLIT_SEED refers to it).
DEFAULT_SPLIT_SEED = 42


@dataclass(frozen=True)
class SplitSpec:
    """Which images a run trains, validates and holds out on: the identity filter, the open-set hold-out
    (identity-disjoint query / distractor identities) and the closed-set split of the rest."""

    data: str = "data/sample_aligned"  # aligned crops, <identity>/<image>, or an insightface train.rec
    min_images_per_class: int = 1
    max_classes: int | None = None
    open_set_query: int = 0  # held-out identities with >= 2 images: same-identity pairs for open-set metrics
    open_set_distractor: int = 0  # held-out identities used as negatives only
    open_set_query_images: int | None = None  # caps per identity (seed protocol: 6 and 60)
    open_set_distractor_images: int | None = None
    max_train_classes: int | None = None  # after the hold-out: train on this many identities (seeded choice)
    val_fraction: float = 0.1  # closed-set validation: this share of each training identity's images
    split_seed: int = DEFAULT_SPLIT_SEED
    # identities held out before everything else, for the benchmark alone (id_rate.benchmark's "composed" set):
    # never trained on and never used to choose an epoch (the open-set hold-out above does that). Query
    # identities give benchmark_query_images each, distractors every image they have.
    benchmark_query: int = 0
    benchmark_distractor: int = 0
    benchmark_query_images: int = 6

    @property
    def benchmark_holds_out(self) -> bool:
        """Whether identities were set aside for the benchmark (before the open-set hold-out)."""
        return bool(self.benchmark_query or self.benchmark_distractor)

    @property
    def holds_out(self) -> bool:
        """Whether the run held out identities for open-set figures."""
        return bool(self.open_set_query or self.open_set_distractor)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SplitSpec":
        """From a stored split, or any dict holding its fields (a run's ``train_config``: the other keys are
        not the split's and are ignored); a field missing from an older dict reads as its default."""
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    @classmethod
    def from_checkpoint(cls, spec: Mapping[str, Any]) -> "SplitSpec":
        """The split of the run that wrote a checkpoint's ``spec``: ``spec["split"]``, or, in a checkpoint
        older than it, the split fields of ``spec["train_config"]``."""
        return cls.from_dict(spec.get("split") or spec.get("train_config") or {})
