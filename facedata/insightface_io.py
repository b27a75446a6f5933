"""Readers for insightface's data files, without MXNet.

* Verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``): a pickle of (list of encoded image
  bytes, list of is-same booleans), pairs consecutive. Unpickled with a restricted unpickler that
  accepts only builtin containers, bytes and booleans: no class is ever imported (the one callable
  allowed is ``codecs.encode``, which protocol-2 pickles use for bytes).
* Training packs ``train.rec`` / ``train.idx``: MXNet RecordIO. Each record is a 4-byte magic, a 4-byte
  length word (top 3 bits: continuation flag), the payload padded to 4 bytes. An image payload starts
  with the header struct ``IfQQ`` (flag, label, id, id2); flag > 0 means ``flag`` float labels follow.
  Record 0 of insightface packs is a header whose label holds (first identity record, end), and
  images are keys 1 .. label[0] - 1.
"""
from __future__ import annotations

import codecs
import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetError, VerificationFileError

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_IR_FORMAT = "<IfQQ"  # little-endian, as MXNet writes it
_IR_SIZE = struct.calcsize(_IR_FORMAT)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        if (module, name) == ("_codecs", "encode"):
            # Python 3 writes bytes at pickle protocol 2 as _codecs.encode(str, "latin1"): data only.
            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: verification files hold only bytes, lists and booleans")


def _decode(buf: bytes, where: str, error: type[DatasetError] = DatasetError) -> np.ndarray:
    try:  # OpenCV raises cv2.error on some damaged streams and returns None on others
        img = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise error(f"{where}: image bytes cannot be decoded ({str(exc).strip().splitlines()[-1]})") from None
    if img is None:
        raise error(f"{where}: image bytes cannot be decoded (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class VerificationSet:
    """Pairs ``(images[2i], images[2i+1])`` with ``issame[i]``; images stay encoded until asked for."""

    path: Path
    images: list[bytes]
    issame: np.ndarray

    def __len__(self) -> int:
        return len(self.issame)

    def image(self, i: int) -> np.ndarray:
        """Decoded RGB uint8 image ``i`` (0 .. 2 * len - 1)."""
        return _decode(self.images[i], f"{self.path}[{i}]", VerificationFileError)


def load_verification_bin(path: str | os.PathLike) -> VerificationSet:
    """Read an insightface ``.bin`` verification file safely. Whatever is wrong with the file (truncated,
    fuzzed, not a pickle, code instead of data), the error is one :class:`VerificationFileError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise VerificationFileError(f"{path}: verification file not found")
    try:
        with open(path, "rb") as fh:
            obj = _SafeUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - a damaged pickle fails in many ways: LookupError from
        # codecs.encode, MemoryError from a huge length field, RecursionError, IndexError on the stack...
        raise VerificationFileError(f"{path}: not a valid insightface verification file ({type(exc).__name__}: "
                                    f"{str(exc)[:200]}); re-download it") from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise VerificationFileError(f"{path}: expected a pickled (images, issame) pair, got {type(obj).__name__}")
    images, issame = obj
    if not isinstance(images, list) or not all(isinstance(b, (bytes, bytearray)) for b in images):
        raise VerificationFileError(f"{path}: first element must be a list of encoded image bytes")
    if not isinstance(issame, list) or not all(isinstance(b, bool) for b in issame):
        raise VerificationFileError(f"{path}: second element must be a list of booleans")
    if not issame:
        raise VerificationFileError(f"{path}: holds no pairs (an empty (images, issame) pair); re-download it or "
                                    "re-create it from a pairs list")
    if len(images) != 2 * len(issame):
        raise VerificationFileError(f"{path}: {len(images)} images for {len(issame)} pairs; expected exactly two per "
                                    "pair")
    return VerificationSet(path, [bytes(b) for b in images], np.asarray(issame, dtype=bool))


@dataclass(frozen=True)
class Record:
    flag: int
    label: np.ndarray  # float32, shape (max(flag, 1),)
    id: int
    id2: int
    payload: bytes  # encoded image (empty for header records)


def unpack_record(data: bytes) -> Record:
    """Split an image-record payload into its IRHeader and image bytes."""
    if len(data) < _IR_SIZE:
        raise DatasetError(f"record of {len(data)} bytes is shorter than its {_IR_SIZE}-byte header")
    flag, label, id1, id2 = struct.unpack(_IR_FORMAT, data[:_IR_SIZE])
    rest = data[_IR_SIZE:]
    if flag > 0:
        labels = np.frombuffer(rest[: 4 * flag], dtype=np.float32).copy()
        rest = rest[4 * flag:]
    else:
        labels = np.asarray([label], dtype=np.float32)
    return Record(flag, labels, id1, id2, rest)


def pack_record(label: float | np.ndarray, image_bytes: bytes, id1: int = 0, id2: int = 0) -> bytes:
    """Inverse of :func:`unpack_record` (used to write packs and test files)."""
    labels = np.atleast_1d(np.asarray(label, dtype=np.float32))
    if labels.size == 1:
        return struct.pack(_IR_FORMAT, 0, float(labels[0]), id1, id2) + image_bytes
    return struct.pack(_IR_FORMAT, labels.size, 0.0, id1, id2) + labels.tobytes() + image_bytes


def _frame(head: bytes, path: Path, where: str) -> tuple[int, int]:
    """(continuation flag, payload length) of a RecordIO frame header (its first 8 bytes); a wrong magic
    word is refused, ``where`` saying at which record or byte."""
    magic, lrec = struct.unpack("<II", head[:8])
    if magic != RECORDIO_MAGIC:
        raise DatasetError(f"{path}: bad magic {magic:#x} at {where}")
    return lrec >> 29, lrec & ((1 << 29) - 1)


class RecordIOReader:
    """Random access to an MXNet ``.rec`` file through its ``.idx`` (``key<TAB>offset`` lines)."""

    def __init__(self, rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None) -> None:
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.rec_path.with_suffix(".idx")
        for p in (self.rec_path, self.idx_path):
            if not p.is_file():
                hint = (f"; `python -m facedata.pack index {self.rec_path}` rebuilds the index by scanning the .rec"
                        if p == self.idx_path and self.rec_path.is_file() else "")
                raise DatasetError(f"{p}: not found (a RecordIO pack needs both the .rec and the .idx file{hint})")
        self.offsets: dict[int, int] = {}
        for n, line in enumerate(self.idx_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise DatasetError(f"{self.idx_path}:{n}: expected 'key<TAB>offset' (two whole numbers), got {line!r}; "
                                   f"`python -m facedata.pack index {self.rec_path}` rebuilds the index")
            self.offsets[int(parts[0])] = int(parts[1])
        self._fh = open(self.rec_path, "rb")

    def keys(self) -> list[int]:
        return sorted(self.offsets)

    def read(self, key: int) -> bytes:
        """Raw payload of record ``key`` (multi-part records joined as MXNet does)."""
        if key not in self.offsets:
            raise KeyError(f"{self.rec_path}: no record with key {key}")
        self._fh.seek(self.offsets[key])
        chunks = []
        while True:
            head = self._fh.read(8)
            if len(head) < 8:
                raise DatasetError(f"{self.rec_path}: truncated record at key {key}")
            cflag, length = _frame(head, self.rec_path, f"key {key} (offset {self.offsets[key]})")
            data = self._fh.read(length)
            if len(data) < length:
                raise DatasetError(f"{self.rec_path}: truncated record at key {key} ({len(data)} of {length} bytes; "
                                   "the file was cut short: download or copy it again)")
            self._fh.read((4 - length % 4) % 4)
            chunks.append(data)
            if cflag in (0, 3):
                break
            chunks.append(_MAGIC_BYTES)  # dmlc splits records at magic words it then drops
        return b"".join(chunks)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "RecordIOReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InsightfacePack:
    """An insightface ``train.rec`` / ``train.idx`` pack: ``pack[i]`` -> (RGB image, int label)."""

    def __init__(self, rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None) -> None:
        self.reader = RecordIOReader(rec_path, idx_path)
        first = unpack_record(self.reader.read(self.reader.keys()[0]))
        if first.flag > 0:  # insightface header record: images are keys 1 .. label[0] - 1
            self.image_keys = list(range(1, int(first.label[0])))
        else:
            self.image_keys = self.reader.keys()

    def __len__(self) -> int:
        return len(self.image_keys)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        key = self.image_keys[i]
        rec = unpack_record(self.reader.read(key))
        return _decode(rec.payload, f"{self.reader.rec_path}[key {key}]"), int(rec.label[0])


def write_recordio(records: list[bytes], rec_path: str | os.PathLike, idx_path: str | os.PathLike) -> None:
    """Write payloads as single-part RecordIO records with an index (keys 0..N-1)."""
    buf, idx = io.BytesIO(), []
    for key, data in enumerate(records):
        idx.append(f"{key}\t{buf.tell()}")
        buf.write(struct.pack("<II", RECORDIO_MAGIC, len(data)))
        buf.write(data)
        buf.write(b"\0" * ((4 - len(data) % 4) % 4))
    Path(rec_path).write_bytes(buf.getvalue())
    Path(idx_path).write_text("\n".join(idx) + "\n")


# --- packs as training data -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PackIndex:
    """The images of a pack: record ``keys[i]`` holds an image of class ``labels[i]`` (int)."""

    rec_path: Path
    idx_path: Path
    keys: np.ndarray  # int64
    labels: np.ndarray  # int64


def scan_pack(rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None) -> PackIndex:
    """Every image record's key and label, read from the record headers alone (no image is decoded). Each
    record is checked to lie whole inside the file, so a truncated pack is refused before training starts."""
    reader = RecordIOReader(rec_path, idx_path)
    try:
        keys_all = reader.keys()
        if not keys_all:
            raise DatasetError(f"{reader.rec_path}: the index {reader.idx_path} lists no records")
        first = unpack_record(reader.read(keys_all[0]))
        keys = list(range(1, int(first.label[0]))) if first.flag > 0 else keys_all
        size = reader.rec_path.stat().st_size
        labels = np.empty(len(keys), np.int64)
        fh = reader._fh
        for i, key in enumerate(keys):
            off = reader.offsets.get(key)
            if off is None:
                raise DatasetError(f"{reader.idx_path}: no entry for image record {key} (the header record says "
                                   f"images are keys 1..{len(keys)}); the index does not belong to this .rec")
            fh.seek(off)
            head = fh.read(8 + _IR_SIZE)
            if len(head) < 8 + _IR_SIZE:
                raise DatasetError(f"{reader.rec_path}: truncated record at key {key} (offset {off} of a {size}-byte "
                                   "file): the file was cut short; download or copy it again")
            _, length = _frame(head, reader.rec_path, f"key {key} (offset {off}): not an MXNet RecordIO file, or "
                               "the .idx belongs to another .rec")
            if off + 8 + length > size:
                raise DatasetError(f"{reader.rec_path}: truncated record at key {key} (needs {off + 8 + length} bytes, "
                                   f"the file has {size}): the file was cut short; download or copy it again")
            flag, label = struct.unpack("<If", head[8:16])
            if flag > 0:  # the class label is the first of the float labels after the header
                fh.seek(off + 8 + _IR_SIZE)
                label = struct.unpack("<f", fh.read(4))[0]
            if not (np.isfinite(label) and label >= 0 and label == int(label)):  # int(NaN) would raise
                raise DatasetError(f"{reader.rec_path}: record {key} has label {label}, not a class number (0, 1, ...): "
                                   "the pack is damaged or not an insightface training pack")
            labels[i] = int(label)
    finally:
        reader.close()
    return PackIndex(reader.rec_path, reader.idx_path, np.asarray(keys, np.int64), labels)


_OPEN_READERS: dict[tuple[Path, int], RecordIOReader] = {}


def read_pack_image(rec_path: Path, key: int) -> np.ndarray:
    """The RGB image of record ``key``; each process (every DataLoader worker) opens its own file handle."""
    slot = (rec_path, os.getpid())
    reader = _OPEN_READERS.get(slot)
    if reader is None:
        reader = _OPEN_READERS[slot] = RecordIOReader(rec_path)
    rec = unpack_record(reader.read(int(key)))
    return _decode(rec.payload, f"{rec_path}[key {key}]")


def build_index(rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None) -> Path:
    """Rebuild a lost ``.idx`` by scanning the ``.rec`` from the start (keys 0, 1, ... in file order, as
    insightface's packs number them); written atomically."""
    from .io import write_bytes_atomic

    rec_path = Path(rec_path)
    idx_path = Path(idx_path) if idx_path is not None else rec_path.with_suffix(".idx")
    lines, key, off, size = [], 0, 0, rec_path.stat().st_size
    with open(rec_path, "rb") as fh:
        start = True
        while off < size:
            fh.seek(off)
            head = fh.read(8)
            if len(head) < 8:
                raise DatasetError(f"{rec_path}: truncated at byte {off} (a record header is cut short)")
            cflag, length = _frame(head, rec_path, f"byte {off}: not an MXNet RecordIO file")
            if start:
                lines.append(f"{key}\t{off}")
                key += 1
            start = cflag in (0, 3)  # the next record starts a new logical record
            off += 8 + length + (4 - length % 4) % 4
            if off > size:
                raise DatasetError(f"{rec_path}: truncated record at key {key - 1} (the file was cut short)")
    write_bytes_atomic(("\n".join(lines) + "\n").encode(), idx_path)
    return idx_path
