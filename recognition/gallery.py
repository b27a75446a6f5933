"""The gallery of known people (``people_faces/``): enrolment, its on-disk cache, and matching.

``people_faces/`` holds ``<name>.jpg`` files and ``<name>/*.jpg`` folders (any image extension). Every
image goes through the live path (detector -> alignment -> the model's preprocessing -> embedding), so
gallery and live faces cannot be processed differently. A person keeps all their images; a live face
takes the best similarity over each person's images.

Embeddings are cached per gallery folder and model (the model's fingerprint: weights or checkpoint content,
seed, preprocessing, flip TTA, ...; and the detector settings) in one JSON file, and only new or changed images
are embedded again. Images that cannot be read, show no face or
show several faces are reported and skipped; they are remembered too, so they are not retried until
they change.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facedata.detect import Face, FaceDetector, faces_near_largest, pick_main_face
from facedata.errors import FaceDataError, ImageReadError, ImageTooLargeError
from facedata.io import (
    DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, image_files, is_image_file, load_image, write_bytes_atomic,
)
from id_rate.scoring import similarity_matrix
from models_definition.fingerprint import model_fingerprint
from models_definition.zoo import FaceEmbedder

from .embed import embed_faces
from .index import GalleryIndex, GalleryIndexCorruptError, IndexPolicy, row_ids

UNKNOWN = "Unknown"
# A second face smaller than this share of the largest one's area (a face in the background) does not
# make a portrait ambiguous; a larger one does, and the image is skipped.
SECOND_FACE_AREA_SHARE = 0.3
CACHE_VERSION = 1


class GalleryError(FaceDataError):
    """The gallery folder is missing, empty, or none of its images could be enrolled."""


@dataclass(frozen=True)
class Skipped:
    """A gallery image that was not enrolled, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Match:
    """The best gallery person for one face. ``name`` is UNKNOWN below the threshold; ``similarity`` is
    the best cosine similarity either way (``best`` names that person), -inf for an empty gallery."""

    name: str
    similarity: float
    best: str | None


@dataclass
class Gallery:
    """Enrolled embeddings: row i of ``embeddings`` is an image of ``names[i]`` (file ``files[i]``)."""

    names: list[str]
    embeddings: np.ndarray  # (N, D) float32, L2-normalised
    files: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    from_cache: int = 0  # images whose embedding came from the cache
    # A FAISS index over ``embeddings`` (recognition.index) and the row of each of its vectors: when set, match()
    # searches it for each face's top-1 image (the best image is the best person's best image).
    index: GalleryIndex | None = field(default=None, repr=False)
    index_rows: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Columns grouped by person once, so that matching a frame is one matmul and one reduceat.
        self._people = sorted(set(self.names))
        person_of = np.searchsorted(np.array(self._people), np.array(self.names)) if self.names else np.zeros(0, int)
        self._order = np.argsort(person_of, kind="stable")
        self._starts = np.flatnonzero(np.r_[True, np.diff(person_of[self._order]) != 0]) if self.names else None

    @property
    def people(self) -> list[str]:
        return list(self._people)

    def __len__(self) -> int:
        return len(self.names)

    def summary(self) -> str:
        per = {p: self.names.count(p) for p in self.people}
        people = ", ".join(f"{p} ({n})" if n > 1 else p for p, n in per.items()) or "nobody"
        text = f"gallery: {len(self.people)} people from {len(self)} images ({self.from_cache} cached): {people}"
        for s in self.skipped:
            text += f"\n  skipped {s.path}: {s.reason}"
        return text

    def match(self, embeddings: np.ndarray, threshold: float) -> list[Match]:
        """The best person for each row of ``embeddings`` (L2-normalised), UNKNOWN below ``threshold``."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        if len(self) == 0:
            return [Match(UNKNOWN, float("-inf"), None) for _ in range(len(embeddings))]
        if self.index is not None and self.index_rows is not None and len(self.index) == len(self):
            scores, rows = self.index.search(embeddings, 1)
            # a row of -1: an approximate index found no vector near enough to look at (an empty IVF list)
            return [Match(self.names[r] if float(s) >= threshold else UNKNOWN, float(s), self.names[r]) if i >= 0
                    else Match(UNKNOWN, float("-inf"), None)
                    for s, i, r in zip(scores[:, 0], rows[:, 0], self.index_rows[rows[:, 0]])]
        sims = similarity_matrix(embeddings, self.embeddings)  # (M, N)
        best_per_person = np.maximum.reduceat(sims[:, self._order], self._starts, axis=1)  # (M, people)
        people = self._people
        top = best_per_person.argmax(axis=1)
        out = []
        for row, p in enumerate(top):
            sim = float(best_per_person[row, p])
            out.append(Match(people[p] if sim >= threshold else UNKNOWN, sim, people[p]))
        return out


def scan_gallery(folder: str | Path) -> list[tuple[str, Path]]:
    """(person, image path) for ``<name>.<ext>`` files and ``<name>/*.<ext>`` folders, sorted; hidden
    files and folders and non-image files (a README) are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GalleryError(f"{folder}: gallery folder not found. Create it with one <name>.jpg per person (or "
                           f"<name>/ folders of photos), pass another with -people_faces, or run without a "
                           f"gallery (--allow-empty-gallery: every face is '{UNKNOWN}')")
    items = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            items += [(entry.name, p) for p in image_files(entry)]
        elif is_image_file(entry):
            items.append((entry.stem, entry))
    return items


def model_key(embedder: FaceEmbedder, detector: FaceDetector) -> str:
    """What the cached embeddings depend on besides the images: the model's fingerprint (the same key as the
    evaluation's embedding cache) and the detector's settings (they place the landmarks the crop is aligned on)."""
    parts = [model_fingerprint(embedder), asdict(detector.config)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _main_face(faces: Sequence[Face], image_shape: tuple[int, ...]) -> tuple[Face | None, str]:
    """The photo's face (``pick_main_face``), or None and why: no face, or a second face too large to be
    background (a portrait of two people is ambiguous)."""
    if not faces:
        return None, "no face found (use a photo where the face is visible and at least 20 px wide)"
    big = faces_near_largest(faces, SECOND_FACE_AREA_SHARE)
    if len(big) > 1:
        return None, f"{len(big)} faces found; a gallery image must show one person (crop it)"
    return pick_main_face(faces, image_shape), ""


def enrol(folder: str | Path, embedder: FaceEmbedder, detector: FaceDetector, cache_dir: str | Path | None = None,
          allow_empty: bool = False, say: Callable[[str], None] | None = None,
          max_pixels: int | None = DEFAULT_MAX_PIXELS, index_policy: IndexPolicy | None = None) -> Gallery:
    """Detect, align and embed every gallery image (new or changed ones only, when cached); images above
    ``max_pixels`` are skipped with the reason (``--max-megapixels``). With ``index_policy`` (e.g.
    ``IndexPolicy(**config.GALLERY_INDEX)``) a gallery of at least its ``min_faces`` images is matched through a
    FAISS index, kept beside the cache (``<cache>.faiss``) and updated with the new images only."""
    folder = Path(folder)
    items = scan_gallery(folder)
    if not items and not allow_empty:
        raise GalleryError(f"{folder}: no images in the gallery. Add <name>.jpg files or <name>/ folders of "
                           f"photos (extensions {', '.join(IMAGE_EXTENSIONS)}), or run with --allow-empty-gallery")
    cache_path = None
    cache: dict = {}
    if cache_dir is not None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedder.name)
        # One file per (gallery folder, model): two galleries never overwrite each other's cache.
        where = hashlib.sha256(f"{folder.resolve()}\0{model_key(embedder, detector)}".encode()).hexdigest()[:16]
        cache_path = Path(cache_dir) / f"gallery-{safe}-{where}.json"
        if cache_path.is_file():
            try:
                data = json.loads(cache_path.read_text())
                cache = data["images"] if data.get("version") == CACHE_VERSION else {}
            except (ValueError, KeyError, TypeError):
                cache = {}  # a damaged cache is rebuilt, never trusted
    names, embs, files, skipped = [], [], [], []
    new_cache: dict = {}
    hits = 0
    for person, path in items:
        try:
            key = str(path.resolve())
            st = path.stat()
            stamp = [st.st_size, st.st_mtime_ns]
        except (OSError, RuntimeError):  # a broken link or a link loop: never cached; the reader says what is wrong
            key, stamp = str(path.absolute()), None
        rec = cache.get(key)
        # An image refused as too large is tried again: --max-megapixels may have been raised since.
        if (stamp is None or rec is None or rec.get("too_large") or rec.get("stamp") != stamp
                or rec.get("person") != person):
            rec = {"stamp": stamp, "person": person, **_enrol_one(path, embedder, detector, max_pixels)}
        else:
            hits += 1
        new_cache[key] = rec
        if rec.get("embedding") is not None:
            names.append(person)
            embs.append(np.asarray(rec["embedding"], np.float32))
            files.append(str(path))
        else:
            skipped.append(Skipped(str(path), rec["reason"]))
            if say:
                say(f"gallery: skipped {path}: {rec['reason']}")
    if cache_path is not None and new_cache != cache:
        write_bytes_atomic(json.dumps({"version": CACHE_VERSION, "model": embedder.name, "images": new_cache}).encode(),
                           cache_path)
    if not names and items and not allow_empty:
        raise GalleryError(f"{folder}: none of its {len(items)} images could be enrolled: "
                           + "; ".join(f"{s.path}: {s.reason}" for s in skipped))
    emb = np.stack(embs) if embs else np.zeros((0, embedder.embedding_size), np.float32)
    gallery = Gallery(names, emb, files, skipped, hits)
    if index_policy is not None and len(gallery) and len(gallery) >= index_policy.min_faces:
        key = model_key(embedder, detector)
        where = None if cache_path is None else cache_path.with_suffix(".faiss")
        gallery.index, gallery.index_rows = gallery_index(emb, files, index_policy, key, embedder.name, where, say)
    return gallery


def gallery_index(emb: np.ndarray, files: list[str], policy: IndexPolicy, key: str, model_name: str = "",
                  path: Path | None = None, say: Callable[[str], None] | None = None) -> tuple[GalleryIndex, np.ndarray]:
    """(index, gallery row of each of its vectors) for gallery rows ``emb`` (images ``files``): the index saved at
    ``path`` with the rows it lacks added, or a new one when there is none, when it holds a row the gallery no
    longer has (an image removed or changed: a rebuild is simpler than a removal every index kind supports) or
    when it is damaged (said, like a damaged embedding cache). An index of another model is refused."""
    ids = row_ids(files, emb)
    index = None
    if path is not None and path.is_file():
        try:
            index = GalleryIndex.load(path, key, policy)
        except GalleryIndexCorruptError as exc:
            if say:
                say(f"gallery: {exc}: rebuilt")
    pos = {int(i): r for r, i in enumerate(ids)}
    if index is not None and not all(int(i) in pos for i in index.ids):
        index = None  # an image removed or changed since
    before = -1 if index is None else len(index)
    if index is None:
        index = GalleryIndex(emb.shape[1], policy, key, model_name)
    held = {int(i) for i in index.ids}
    new = np.array([r for r, i in enumerate(ids) if int(i) not in held], np.int64)
    index.add(emb[new], ids[new])
    if path is not None and len(index) != before:
        index.save(path)
    for line in index.log:
        if say:
            say(f"gallery: {line}")
    return index, np.array([pos[int(i)] for i in index.ids], np.int64)


def _enrol_one(path: Path, embedder: FaceEmbedder, detector: FaceDetector,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """{"embedding": list} or {"embedding": None, "reason": why} for one gallery image."""
    try:
        rgb = load_image(path, max_pixels=max_pixels)
    except ImageReadError as exc:
        return {"embedding": None, "reason": f"cannot read the image: {exc.detail}",
                "too_large": isinstance(exc, ImageTooLargeError)}
    face, why = _main_face(detector.detect_rgb(rgb), rgb.shape)
    if face is None:
        return {"embedding": None, "reason": why}
    return {"embedding": embed_faces(rgb, [face], embedder)[0].tolist()}
