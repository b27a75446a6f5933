"""insightface packs (MXNet RecordIO ``train.rec`` + ``train.idx``) without MXNet.

    python -m facedata.pack write data/celeba_aligned data/celeba.rec   # a face folder -> a pack
    python -m facedata.pack unpack data/celeba.rec data/celeba_unpacked # a pack -> <identity>/<key>.jpg
    python -m facedata.pack index data/faces_webface_112x112/train.rec  # rebuild a lost .idx

Training reads a pack directly (``python train.py --recipe ... --data train.rec``). ``write`` lays the pack
out as insightface does: record 0 a header (the first identity record, the end), then the images (their
file bytes unchanged, label = class index in name order), then one record per identity (its image range).
``unpack`` writes each record's bytes as a file, named by class and key, so the unpacked folder has the same
identities, images and order as the pack: evaluation (which reads folders) rebuilds the same held-out split.
It writes into a new or empty folder, or resumes its own earlier unpack of the same pack (``.unpacked.json``
says which pack a folder holds); any other folder is refused, so two packs never mix.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

from .cli import command
from .datasets import scan_face_folder
from .errors import FaceDataError, OutputPathError
from .insightface_io import RECORDIO_MAGIC, RecordIOReader, build_index, pack_record, scan_pack, unpack_record
from .io import atomic_output, check_output_file, check_output_folder, write_bytes_atomic


def _write_record(fh, data: bytes) -> None:
    fh.write(struct.pack("<II", RECORDIO_MAGIC, len(data)))
    fh.write(data)
    fh.write(b"\0" * ((4 - len(data) % 4) % 4))


def write_pack(folder: str | Path, rec_path: str | Path) -> tuple[int, int]:
    """Pack an aligned face folder (``<identity>/<image>``); returns (images, identities). Both files are
    written through temporary names and renamed at the end, streaming (a CASIA-size folder never sits in memory)."""
    rec_path = check_output_file(rec_path, "pack", suffixes=(".rec",))
    idx_path = rec_path.with_suffix(".idx")
    faces = scan_face_folder(folder)
    n, c = len(faces), len(faces.classes)
    offsets: list[int] = []
    with atomic_output(rec_path) as tmp, open(tmp, "wb") as fh:
        def put(data: bytes) -> None:
            offsets.append(fh.tell())
            _write_record(fh, data)

        put(pack_record(np.array([n + 1, n + 1 + c], np.float32), b""))  # header: identity records at n+1 ..
        starts = np.searchsorted(faces.labels, np.arange(c + 1))  # the folder lists identities in label order
        for i, (path, label) in enumerate(zip(faces.paths, faces.labels), 1):
            put(pack_record(float(label), Path(path).read_bytes(), id1=i))
        for label in range(c):
            put(pack_record(np.array([starts[label] + 1, starts[label + 1] + 1], np.float32), b"", id1=n + 1 + label))
    write_bytes_atomic("".join(f"{k}\t{o}\n" for k, o in enumerate(offsets)).encode(), idx_path)
    return n, c


UNPACKED_MARK = ".unpacked.json"  # written first into an unpack folder: the pack it holds (a rerun resumes only that)
FINGERPRINT_BYTES = 1 << 20  # a pack is told from another by its size and its first and last MiB (not its path)


def pack_fingerprint(rec_path: str | Path) -> dict:
    """What identifies a pack wherever it lies: its size and the SHA-256 of its first and last MiB."""
    with open(rec_path, "rb") as fh:
        head = hashlib.sha256(fh.read(FINGERPRINT_BYTES)).hexdigest()
        size = fh.seek(0, 2)
        fh.seek(max(0, size - FINGERPRINT_BYTES))
        tail = hashlib.sha256(fh.read()).hexdigest()
    return {"size": size, "head_sha256": head, "tail_sha256": tail}


def _claim_unpack_folder(out: Path, rec_path: Path) -> None:
    """Refuse a folder that holds anything but this pack's own earlier unpack; then mark it as this pack's."""
    mine = pack_fingerprint(rec_path)
    if out.is_dir() and any(out.iterdir()):
        try:
            theirs = json.loads((out / UNPACKED_MARK).read_text(encoding="utf-8"))
            held = f"the unpack of {theirs.get('pack', 'another pack')}"
        except (OSError, ValueError, AttributeError):
            theirs, held = {}, "files that are not an unpacked pack"
        if not isinstance(theirs, dict) or any(theirs.get(k) != v for k, v in mine.items()):
            raise OutputPathError(f"unpack folder {out}: already holds {held}, not an earlier unpack of {rec_path}; "
                                  "unpack into a new or empty folder (nothing there was changed)")
    write_bytes_atomic(json.dumps({"pack": str(Path(rec_path).resolve()), **mine}, indent=1).encode(),
                       out / UNPACKED_MARK)


def unpack(rec_path: str | Path, out_dir: str | Path) -> int:
    """Write a pack's images as ``out_dir/<identity>/<key>.jpg`` (the record's bytes); returns the count. The
    folder must be new, empty, or this pack's own earlier (interrupted) unpack."""
    out = check_output_folder(out_dir, "unpack folder")
    index = scan_pack(rec_path)
    _claim_unpack_folder(out, Path(rec_path))
    width = max(1, len(str(int(index.labels.max())))) if len(index.labels) else 1
    with RecordIOReader(rec_path, index.idx_path) as reader:
        for key, label in zip(index.keys, index.labels):
            target = out / f"{int(label):0{width}d}" / f"{int(key):09d}.jpg"
            if target.exists():
                continue  # resumable: an interrupted unpack goes on where it stopped
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(unpack_record(reader.read(int(key))).payload, target)
    return len(index.keys)


@command("python -m facedata.pack", interrupted="rerun the same unpack to go on; a write starts again")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m facedata.pack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="pack an aligned face folder into train.rec / train.idx")
    w.add_argument("folder", type=Path)
    w.add_argument("rec", type=Path)
    u = sub.add_parser("unpack", help="write a pack's images as <identity>/<key>.jpg")
    u.add_argument("rec", type=Path)
    u.add_argument("out", type=Path)
    i = sub.add_parser("index", help="rebuild a pack's .idx by scanning its .rec")
    i.add_argument("rec", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "write":
        n, c = write_pack(args.folder, args.rec)
        print(f"{args.rec}: {n} images of {c} identities (+ {args.rec.with_suffix('.idx')})")
    elif args.cmd == "unpack":
        print(f"{args.out}: {unpack(args.rec, args.out)} images")
    else:
        if not args.rec.is_file():
            raise FaceDataError(f"{args.rec}: not found (give the pack's .rec file)")
        print(f"wrote {build_index(args.rec)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
