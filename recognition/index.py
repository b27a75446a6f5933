"""A FAISS index over a gallery's embeddings: exact search while it pays, an approximate one beyond.

Up to ``IndexPolicy.exact_max_faces`` vectors the index is exact (``IndexFlatIP``: the inner product of unit
vectors is the cosine similarity, so its top-1 is the brute-force top-1); above it, the policy's approximate kind,
IVF-Flat (``"ivf"``: k-means lists, ``nprobe`` of them searched) or HNSW (``"hnsw"``: a graph). Adding vectors
updates the index in place; it is rebuilt when the size crosses the exact / approximate boundary, and an IVF index
is trained again when it has grown ``rebuild_growth`` times past the size its lists were trained on (its lists
grow long and its centroids describe a smaller gallery). An HNSW graph takes additions without retraining.

The file (``save`` / ``load``) is one blob written atomically: a magic line, a JSON header (format version,
model key, model name, dimension, count, kind, the size it was built at, the search settings and the SHA-256 of
the rest), the row ids (uint64, one per vector: callers use them to know which rows an index already holds)
and the FAISS index. An index of another model is a :class:`GalleryIndexModelError`; a damaged file a
:class:`GalleryIndexCorruptError`. faiss-cpu is imported when an index is first built or read.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facedata.errors import FaceDataError
from facedata.io import atomic_output
from id_rate.scoring import l2_normalize

MAGIC = b"FACEKIT-GALLERY-INDEX\n"
FORMAT_VERSION = 1
FEW_QUERIES = 8  # at most this many queries search on one FAISS thread (see GalleryIndex.search)
# k-means needs about this many training points a list (FAISS warns below 39): the list count is capped by it.
MIN_POINTS_PER_LIST = 39


class GalleryIndexError(FaceDataError):
    """A gallery index that cannot be built, read or used."""


class FaissMissingError(GalleryIndexError):
    """faiss-cpu is not installed."""


class GalleryIndexModelError(GalleryIndexError):
    """An index file built from another model's embeddings (or of another dimension)."""


class GalleryIndexCorruptError(GalleryIndexError):
    """An index file cut short, altered, or not an index file of ours."""


def _faiss():
    """The faiss module, or a named error saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise FaissMissingError("gallery index: the faiss package is not installed; install it with "
                                "`pip install faiss-cpu` (requirements.txt pins it)") from None
    return faiss


@dataclass(frozen=True)
class IndexPolicy:
    """Which index a gallery of a given size gets, and its settings (values: ``config.GALLERY_INDEX``)."""

    exact_max_faces: int  # IndexFlatIP up to this many vectors
    approx: str  # "ivf" or "hnsw" above it
    rebuild_growth: float  # retrain an IVF index once it holds this many times the vectors it was trained on
    ivf_lists_per_sqrt: float  # IVF lists = this x sqrt(vectors), at most vectors / MIN_POINTS_PER_LIST
    ivf_nprobe: int  # IVF lists searched a query
    hnsw_m: int  # HNSW links a node
    hnsw_ef_construction: int  # HNSW candidate list while building
    hnsw_ef_search: int  # HNSW candidate list while searching
    min_faces: int = 0  # below this, callers (the gallery) match by brute force and build no index

    def __post_init__(self) -> None:
        if self.approx not in APPROX_KINDS:
            raise GalleryIndexError(f"index policy: approx={self.approx!r} is not an approximate index kind; "
                                    f"valid: {', '.join(APPROX_KINDS)}")
        if self.exact_max_faces < 0 or self.rebuild_growth <= 1 or self.ivf_nprobe < 1 or self.hnsw_m < 2:
            raise GalleryIndexError(f"index policy: exact_max_faces >= 0, rebuild_growth > 1, ivf_nprobe >= 1 and "
                                    f"hnsw_m >= 2 are needed, got {self}")

    def kind_for(self, n: int) -> str:
        """The index kind for ``n`` vectors."""
        return "flat" if n <= self.exact_max_faces else self.approx

    def ivf_lists(self, n: int) -> int:
        """IVF list count for ``n`` training vectors."""
        return max(1, min(round(self.ivf_lists_per_sqrt * math.sqrt(n)), n // MIN_POINTS_PER_LIST))


def _new_flat(dim: int, policy: IndexPolicy, vectors: np.ndarray):
    return _faiss().IndexFlatIP(dim)


def _new_ivf(dim: int, policy: IndexPolicy, vectors: np.ndarray):
    faiss = _faiss()
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, policy.ivf_lists(len(vectors)), faiss.METRIC_INNER_PRODUCT)
    # Training subsamples 256 points a list (FAISS's default); a fixed seed makes the same gallery the same index.
    index.cp.seed = 1234
    index.train(vectors)
    return index


def _new_hnsw(dim: int, policy: IndexPolicy, vectors: np.ndarray):
    faiss = _faiss()
    index = faiss.IndexHNSWFlat(dim, policy.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = policy.hnsw_ef_construction
    return index


# kind -> maker of an empty (trained) index for these vectors; a plain registry, "flat" exact, the rest approximate.
INDEX_KINDS = {"flat": _new_flat, "ivf": _new_ivf, "hnsw": _new_hnsw}
APPROX_KINDS = ("ivf", "hnsw")


def _set_search_params(index, kind: str, policy: IndexPolicy) -> None:
    if kind == "ivf":
        index.nprobe = policy.ivf_nprobe
    elif kind == "hnsw":
        index.hnsw.efSearch = policy.hnsw_ef_search


def row_ids(keys: list[str], embeddings: np.ndarray) -> np.ndarray:
    """One uint64 id a row, from its key (e.g. the image's path) and its embedding's bytes: a changed image
    (another embedding) gets another id, so an index never keeps a stale vector under a known id."""
    emb = np.ascontiguousarray(embeddings, np.float32)
    return np.array([int.from_bytes(hashlib.blake2b(k.encode() + e.tobytes(), digest_size=8).digest(), "little")
                     for k, e in zip(keys, emb)], np.uint64)


class GalleryIndex:
    """Unit-length float32 embeddings searchable by inner product; ``ids[i]`` names the i-th vector added."""

    def __init__(self, dim: int, policy: IndexPolicy, model_key: str, model_name: str = "") -> None:
        self.dim, self.policy, self.model_key, self.model_name = int(dim), policy, model_key, model_name
        self.kind = "flat"
        self.index = _new_flat(self.dim, policy, np.zeros((0, self.dim), np.float32))
        self.ids = np.zeros(0, np.uint64)
        self.built_at = 0  # vectors the current index was built (IVF: trained) with
        self.log: list[str] = []  # what add() did, for the caller to report

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, embeddings: np.ndarray, policy: IndexPolicy, model_key: str, model_name: str = "",
              ids: np.ndarray | None = None) -> "GalleryIndex":
        """An index of ``embeddings`` (rows of unit length), of the kind the policy gives for their count."""
        out = cls(np.shape(embeddings)[1], policy, model_key, model_name)
        out.add(embeddings, ids)
        return out

    def _vectors(self, what: str, embeddings: np.ndarray) -> np.ndarray:
        emb = l2_normalize(np.atleast_2d(np.asarray(embeddings, np.float32)), what)
        if emb.shape[1] != self.dim:
            raise GalleryIndexModelError(f"gallery index of model {self.model_name or self.model_key!r}: {what} have "
                                         f"{emb.shape[1]} dimensions, the index {self.dim}; use one model throughout")
        return np.ascontiguousarray(emb, np.float32)

    def all_vectors(self) -> np.ndarray:
        """Every stored vector, in id order (IVF keeps a direct map for this)."""
        return self.index.reconstruct_n(0, len(self)) if len(self) else np.zeros((0, self.dim), np.float32)

    def _rebuild(self, vectors: np.ndarray, why: str) -> None:
        kind = self.policy.kind_for(len(vectors))
        index = INDEX_KINDS[kind](self.dim, self.policy, vectors)
        if kind == "ivf":
            index.make_direct_map()  # reconstruct_n, for the next rebuild, without a second copy of the vectors
        _set_search_params(index, kind, self.policy)
        index.add(vectors)
        self.index, self.kind, self.built_at = index, kind, len(vectors)
        self.log.append(f"{kind} index built on {len(vectors)} vectors ({why})")

    def add(self, embeddings: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Add rows (ids default to their positions); rebuilds when the policy asks (see the module doc)."""
        emb = self._vectors("added embeddings", embeddings)
        new_ids = (np.arange(len(self), len(self) + len(emb), dtype=np.uint64) if ids is None
                   else np.asarray(ids, np.uint64).reshape(-1))
        if len(new_ids) != len(emb):
            raise GalleryIndexError(f"gallery index: {len(emb)} embeddings but {len(new_ids)} ids")
        if not len(emb):
            return
        n = len(self) + len(emb)
        kind = self.policy.kind_for(n)
        if kind != self.kind:
            self._rebuild(np.concatenate([self.all_vectors(), emb]), f"{n} vectors: {kind} above "
                          f"{self.policy.exact_max_faces}" if kind != "flat" else f"{n} vectors")
        elif kind == "ivf" and n > self.policy.rebuild_growth * self.built_at:
            self._rebuild(np.concatenate([self.all_vectors(), emb]),
                          f"grew from {self.built_at} to {n}, past {self.policy.rebuild_growth:g}x: lists retrained")
        else:
            self.index.add(emb)
        self.ids = np.concatenate([self.ids, new_ids])

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (M, k), best first; rows are positions in the order added (-1: fewer than k)."""
        q = self._vectors("query embeddings", queries)
        if not len(self):
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        if len(q) > FEW_QUERIES:
            return self.index.search(q, k)
        # A few queries (a live frame's faces) on one thread: FAISS's OpenMP threads waiting on each other made one
        # search 10-100x slower with 2 threads on a loaded 2-core machine (benchmarks/README.md, issue 21).
        faiss = _faiss()
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self.index.search(q, k)
        finally:
            faiss.omp_set_num_threads(threads)

    def memory_bytes(self) -> int:
        """The serialised index's size: its vectors, lists or graph (about what it holds in memory)."""
        return int(_faiss().serialize_index(self.index).nbytes)

    # --- the file ---------------------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "model_key": self.model_key, "model": self.model_name, "dim": self.dim,
                "count": len(self), "kind": self.kind, "built_at": self.built_at, "policy": asdict(self.policy)}

    def save(self, path: str | Path) -> Path:
        """Write the index to ``path`` atomically (a crash leaves the old file or none, never half of one)."""
        path = Path(path)
        blob = _faiss().serialize_index(self.index)
        ids = np.ascontiguousarray(self.ids, "<u8")
        digest = hashlib.sha256(ids.tobytes())
        digest.update(memoryview(blob))
        head = json.dumps(dict(self.header(), sha256=digest.hexdigest(), ids_bytes=ids.nbytes)).encode()
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(head)) + head)
            f.write(ids.tobytes())
            f.write(memoryview(blob))
        return path

    @classmethod
    def load(cls, path: str | Path, model_key: str | None = None, policy: IndexPolicy | None = None) -> "GalleryIndex":
        """The index saved at ``path``; ``model_key`` (when given) must be the one it was built with.
        ``policy`` (default: the one saved) sets its search settings and later rebuilds."""
        path = Path(path)
        remedy = "delete it: the gallery builds it again from its embedding cache"

        def corrupt(why: str) -> GalleryIndexCorruptError:
            return GalleryIndexCorruptError(f"{path}: not a readable gallery index ({why}); {remedy}")

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GalleryIndexError(f"{path}: cannot read the gallery index ({exc.strerror or exc})") from None
        if not data.startswith(MAGIC):
            raise corrupt("it does not start as one")
        start = len(MAGIC) + 8
        if len(data) < start:
            raise corrupt("cut short in its header")
        (head_len,) = struct.unpack("<Q", data[len(MAGIC):start])
        try:
            head = json.loads(data[start:start + head_len])
            ids_bytes, kind, dim, count = int(head["ids_bytes"]), head["kind"], int(head["dim"]), int(head["count"])
            saved_policy = IndexPolicy(**head["policy"])
        except (ValueError, KeyError, TypeError, GalleryIndexError) as exc:
            raise corrupt(f"its header cannot be read: {exc}") from None
        if head.get("version") != FORMAT_VERSION:
            raise corrupt(f"format version {head.get('version')!r}, this code reads {FORMAT_VERSION}")
        if model_key is not None and head.get("model_key") != model_key:
            raise GalleryIndexModelError(
                f"{path}: this gallery index was built with model {head.get('model') or '?'!r} (key "
                f"{head.get('model_key')}), not the model in use (key {model_key}); delete it and the gallery "
                f"builds it again with this model, or use the model that built it")
        body = memoryview(data)[start + head_len:]
        if len(body) < ids_bytes or hashlib.sha256(body).hexdigest() != head.get("sha256"):
            raise corrupt("its contents do not match the checksum in its header: cut short or altered")
        try:
            index = _faiss().deserialize_index(np.frombuffer(body[ids_bytes:], np.uint8))
        except RuntimeError as exc:
            raise corrupt(f"FAISS cannot read it: {str(exc).splitlines()[0] if str(exc) else exc}") from None
        ids = np.frombuffer(body[:ids_bytes], "<u8").astype(np.uint64)
        if index.d != dim or index.ntotal != count or len(ids) != count or kind not in INDEX_KINDS:
            raise corrupt(f"its header says {count} {kind} vectors of {dim} dimensions, it holds {index.ntotal} "
                          f"of {index.d} and {len(ids)} ids")
        out = cls(dim, policy or saved_policy, head["model_key"], head.get("model", ""))
        _set_search_params(index, kind, out.policy)
        out.index, out.kind, out.ids, out.built_at = index, kind, ids, int(head.get("built_at", count))
        return out
