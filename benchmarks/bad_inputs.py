"""Issue 12, the hostile new user: run bad inputs against every entry point and record what the user sees.

    python benchmarks/bad_inputs.py [--only SUBSTRING] [--timeout 300]

Every case runs as a subprocess from the repository root, as a user would type it, on the real sample
faces (``make data``). Per case: the entry point, the bad input, the exit code, the first line of stderr
(temporary paths shown as ``<tmp>``, the repository as ``<repo>``), the error line where it is not the
first line, and whether a Traceback appeared. Writes ``benchmarks/bad_inputs.md``; everything else goes
to a temporary folder, deleted at the end.

Where the check needs a folder this user cannot write in and the script runs as root (for whom mode
0o500 blocks nothing), the command runs as ``nobody`` through ``setpriv`` on a folder ``nobody`` owns.
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # nothing written into the repository but bad_inputs.md

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT_MD = Path(__file__).resolve().parent / "bad_inputs.md"
DATE, MACHINE, COMMAND = dt.date.today().isoformat(), "2-core CPU", "python benchmarks/bad_inputs.py"
PY = sys.executable
NOBODY = 65534
MAX_CHARS = 140


@dataclass
class Case:
    entry: str  # what the user typed first, e.g. "python -m id_rate"
    what: str  # the bad input, short
    argv: list[str] | Callable[[], list[str]]  # after the interpreter
    expect: int = 2
    as_nobody: bool = False  # run as `nobody` when this script runs as root
    around: Callable[[], contextlib.AbstractContextManager] | None = None  # held while the command runs
    before: Callable[[], None] | None = None  # runs first (e.g. a first, good run)
    after: Callable[[], str] | None = None  # a check of what the command left; its result is noted
    env: dict[str, str] | None = None  # extra environment variables (e.g. a data root moved away)
    # filled in by run_case
    rc: int | None = None
    seconds: float = 0.0
    first: str = ""
    error: str = ""
    traceback: bool = False
    notes: list[str] = field(default_factory=list)


class Scratch:
    """The temporary world the cases run in: real photos, an aligned set, bad files."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root_user = os.geteuid() == 0 and shutil.which("setpriv") is not None

    def p(self, *parts: str) -> Path:
        return self.tmp.joinpath(*parts)

    def build(self) -> None:
        import cv2
        import numpy as np
        from PIL import Image

        from facedata.prepare import prepare_folder
        from facedata.sample_data import DEFAULT_DATA_DIR, prepare_sample_data

        self.tmp.chmod(0o755)  # `nobody` must reach its own folders in here
        prepare_sample_data(DEFAULT_DATA_DIR, quiet=True)
        data, raw = DEFAULT_DATA_DIR, DEFAULT_DATA_DIR / "raw"
        self.data = data
        self.obama = raw / "face_recognition" / "obama.jpg"
        self.video = data / "sample_video.mp4"

        # a small source folder of real photos (<identity>/<image>)
        photos = self.p("photos")
        for name, f in (("Barack_Obama", "obama.jpg"), ("Joe_Biden", "biden.jpg")):
            (photos / name).mkdir(parents=True)
            shutil.copy(raw / "face_recognition" / f, photos / name / f"{name}_0001.jpg")

        # a small aligned set (as tests/conftest.py's small_aligned): 3 people with several images, 16 with one
        ids = data / "sample_identities"
        src = self.p("small_src")
        portraits = sorted(p for p in ids.iterdir() if p.is_dir() and not p.name.startswith(("pyfeat", "Barack")))[:16]
        for folder, n in [(ids / "pyfeat_man", 8), (ids / "pyfeat_woman", 8), (ids / "Barack_Obama", 5)] + \
                [(p, 1) for p in portraits]:
            (src / folder.name).mkdir(parents=True)
            files = sorted(folder.glob("*.jpg"))
            for f in files[:: max(1, len(files) // n)][:n]:
                shutil.copy(f, src / folder.name / f.name)
        print("aligning a small sample set (about 10 s) ...", file=sys.stderr)
        prepare_folder(src, self.p("aligned"), workers=0, progress=False)
        shutil.copytree(self.p("aligned"), self.p("lfw_mini"))

        # insightface packs of the small aligned set: one without its .idx, one cut inside its last record
        from facedata.pack import write_pack

        for name in ("pack_ok", "no_idx", "truncated"):
            (self.p(name)).mkdir()
            n_images, _ = write_pack(self.p("aligned"), self.p(name, "train.rec"))
        self.p("no_idx", "train.idx").unlink()
        rec = self.p("truncated", "train.rec")
        offsets = dict(line.split("\t") for line in self.p("truncated", "train.idx").read_text().splitlines())
        # cut 40 bytes into the last image record (keys 1..n are images, n+1.. the identity records)
        rec.write_bytes(rec.read_bytes()[:int(offsets[str(n_images)]) + 40])

        # files that are not what their names say
        self.p("a_file").write_text("a file, not a folder\n")
        self.p("existing.txt").write_text("my notes\n")
        self.p("empty.jpg").write_bytes(b"")
        self.p("not_image.jpg").write_text("hello, I am text\n")
        Image.new("L", (8000, 8000), 128).save(self.p("huge_8000x8000.png"))
        cap = cv2.VideoCapture(str(raw / "pyfeat" / "no_face.mp4"))
        ok, bgr = cap.read()
        cap.release()
        assert ok, "data/raw/pyfeat/no_face.mp4 gave no frame"
        cv2.imwrite(str(self.p("no_face.jpg")), bgr)  # a real frame without a face
        self.p("folder.gif").mkdir()
        self.p("faces.csv").write_text("frame,time_s\n0,0.0\n")

        # embeddings files
        rng = np.random.default_rng(0)
        emb, labels = rng.normal(size=(40, 16)).astype(np.float32), np.repeat(np.arange(10), 4)
        np.savez(self.p("split_39_of_40.npz"), embeddings=emb, labels=labels, split=np.array(["query"] * 39))
        np.savez(self.p("object_array.npz"), embeddings=emb,
                 labels=np.array([f"person {i}" for i in labels], dtype=object))
        self.p("text.npz").write_text("embedding,label\n0.1 0.2 0.3,Barack_Obama\n")
        np.save(self.p("single.npy"), emb)
        self.p("single.npy").rename(self.p("single_npy.npz"))
        np.savez(self.p("split_Query.npz"), embeddings=emb, labels=labels,
                 split=np.array(["Query"] * 8 + ["distractor"] * 32))
        self.p("random.bin").write_bytes(rng.bytes(4096))

        # LFW-ish folders and pairs files
        self.p("empty_dir").mkdir()
        half = self.p("half_lfw")
        shutil.copytree(photos, half / "lfw-deepfunneled")
        (half / "pairs.txt").write_text("10\t300\n")
        self.p("pairs_csv.txt").write_text("name1,n1,name2,n2\nBarack_Obama,1,Barack_Obama,2\n")
        self.p("pairs_swapped.txt").write_text("1\t1\npyfeat_man\t1\tpyfeat_woman\t1\nBarack_Obama\t1\tpyfeat_man\t2\n")

        # prepare --hints files: a row whose x1 is not a number, and a photo passed as the CSV
        self.p("hints_bad_x1.csv").write_text("source,x1,y1,x2,y2\n"
                                              "Barack_Obama/Barack_Obama_0001.jpg,left,10,100,100\n")

        # a prepare destination and a source file whose name holds a newline
        self.p("locked_dst").mkdir()
        nl = self.p("newline_src", "Barack_Obama")
        nl.mkdir(parents=True)
        shutil.copy(raw / "face_recognition" / "obama.jpg", nl / "Barack\nObama_0001.jpg")
        shutil.copy(raw / "face_recognition" / "obama2.jpg", nl / "Barack_Obama_0002.jpg")

        # folders this user cannot write in, or cannot even enter
        self.home = self.p("home")
        self.home.mkdir()
        ro, closed = self.p("read_only"), self.p("closed")
        ro.mkdir()
        closed.mkdir()
        if self.root_user:  # root writes anywhere: the command runs as nobody, on nobody's 0o500 folder
            os.chown(self.home, NOBODY, NOBODY)
            os.chown(ro, NOBODY, NOBODY)
            ro.chmod(0o500)
            closed.chmod(0o700)  # root's: nobody cannot enter it
        else:
            ro.chmod(0o500)
            closed.chmod(0o000)  # the user's own, but not searchable

    # --- lazy parts: built the first time a case needs them (Case.before), so --only runs stay quick
    def small_faces(self) -> list[Path]:
        """Three real faces at a quarter of their side (7,000 hard links of them make the fake CFP)."""
        import cv2

        out = self.p("small_faces")
        if not out.is_dir():
            out.mkdir()
            src = sorted((self.data / "sample_identities" / "Barack_Obama").glob("*.jpg"))[:3]
            for i, f in enumerate(src):
                bgr = cv2.imread(str(f))
                cv2.imwrite(str(out / f"face{i}.jpg"), bgr[::4, ::4])
        return sorted(out.glob("face*.jpg"))

    def cfp(self) -> Path:
        """A fake CFP in the official flat layout with valid protocol files (as tests/test_cfp.py's make_cfp):
        500 people x (10 frontal + 4 profile) hard links of 3 small real faces, one fiducials file linked
        7,000 times; and hard-linked copies missing one image, missing one split file, and an aligned
        folder (Data/Images) missing one image."""
        from facedata.cfp import CFP_PEOPLE, expected_images

        root = self.p("cfp_src")
        if root.is_dir():
            return root
        faces = self.small_faces()
        fid = self.p("cfp_fiducials.txt")
        fid.write_text("".join(f"{10 + k},{20 + 2 * k}\n" for k in range(30)))
        rels = expected_images()
        for n, rel in enumerate(rels):
            img = root / "Data" / "Images" / rel
            img.parent.mkdir(parents=True, exist_ok=True)
            os.link(faces[n % len(faces)], img)
            f = root / "Data" / "Fiducials" / (rel[:-4] + ".txt")
            f.parent.mkdir(parents=True, exist_ok=True)
            os.link(fid, f)
        (root / "Data" / "list_name.txt").write_text("".join(f"Person {k}\n" for k in range(1, CFP_PEOPLE + 1)))
        proto = root / "Protocol"
        (proto / "Split").mkdir(parents=True)
        for letter, view in (("F", "/frontal/"), ("P", "/profile/")):
            (proto / f"Pair_list_{letter}.txt").write_text(
                "".join(f"{k} ../Data/Images/{r}\n" for k, r in enumerate((r for r in rels if view in r), 1)))
        for kind in ("FF", "FP"):
            second = 4 if kind == "FP" else 10
            for fold in range(10):
                d = proto / "Split" / kind / f"{fold + 1:02d}"
                d.mkdir(parents=True)
                people = range(fold * 50, fold * 50 + 50)  # identity-disjoint folds, as in CFP
                same = [f"{people[k % 50] * 10 + 1 + k % 3},{people[k % 50] * second + 1 + (k // 50) % 3}"
                        for k in range(350)]
                diff = [f"{people[k % 50] * 10 + 1},{people[(k + 1) % 50] * second + 1}" for k in range(350)]
                (d / "same.txt").write_text("\n".join(same) + "\n")
                (d / "diff.txt").write_text("\n".join(diff) + "\n")
        for name, gone in (("cfp_no_image", "Data/Images/123/profile/03.jpg"),
                           ("cfp_no_split", "Protocol/Split/FP/03/same.txt")):
            shutil.copytree(root, self.p(name), copy_function=os.link)
            self.p(name, gone).unlink()
        shutil.copytree(root / "Data" / "Images", self.p("cfp_aligned_part"), copy_function=os.link)
        self.p("cfp_aligned_part", "001", "frontal", "01.jpg").unlink()
        return root

    def fiw(self) -> None:
        """A fake FIW (train/F####/MID#/*.jpg of real faces): fiw_src with train_relationships.csv, fiw_norel
        without it."""
        if self.p("fiw_src").is_dir():
            return
        faces = sorted((self.data / "sample_identities" / "Barack_Obama").glob("*.jpg"))[:3]
        for name in ("fiw_src", "fiw_norel"):
            for person, files in {"F0001/MID1": faces[:2], "F0001/MID2": faces[2:3], "F0002/MID1": faces[:1]}.items():
                (self.p(name, "train", person)).mkdir(parents=True)
                for i, f in enumerate(files):
                    shutil.copy(f, self.p(name, "train", person, f"P{i:05d}_face{i}.jpg"))
        self.p("fiw_src", "train_relationships.csv").write_text("p1,p2\nF0001/MID1,F0001/MID2\n")

    def celeba(self) -> None:
        """A fake CelebA aligned copy: celeba_src/img_align_celeba/000001-000004.jpg with identity_CelebA.txt
        beside it, and ids_without_000003.txt, an identity file lacking one of the images."""
        if self.p("celeba_src").is_dir():
            return
        faces = sorted((self.data / "sample_identities" / "Barack_Obama").glob("*.jpg"))[:4]
        images = self.p("celeba_src", "img_align_celeba")
        images.mkdir(parents=True)
        for i, f in enumerate(faces, 1):
            shutil.copy(f, images / f"{i:06d}.jpg")
        lines = {1: 2880, 2: 2937, 3: 2880, 4: 7}
        self.p("celeba_src", "identity_CelebA.txt").write_text(
            "".join(f"{i:06d}.jpg {v}\n" for i, v in lines.items()))
        self.p("ids_without_000003.txt").write_text(
            "".join(f"{i:06d}.jpg {v}\n" for i, v in lines.items() if i != 3))

    def composed(self) -> None:
        """Composed sets made by hand (as facedata.compose lays them out: <source>__<identity>/<crop>,
        compose.json, audit.json) from the small aligned set: composed_flagged (audited against every set but
        kept named/Barack_Obama, flagged), composed_unaudited (no audit.json), composed_partial (audited
        against lfw only), composed_garbled (audit.json not JSON), composed_pack (train.rec, kept flagged)."""
        import json

        if self.p("composed_flagged").is_dir():
            return
        audit = {"eval_sets": ["lfw", "cfp", "celeba"], "reference": "sface", "flagged_identities": 1,
                 "kept_flagged": ["named/Barack_Obama"]}
        for name in ("composed_flagged", "composed_unaudited", "composed_partial", "composed_garbled"):
            out = self.p(name)
            for ident in sorted(d for d in self.p("aligned").iterdir() if d.is_dir()):
                shutil.copytree(ident, out / f"named__{ident.name}", copy_function=os.link)
            (out / "compose.json").write_text(json.dumps({"spec": {"sources": [{"name": "named"}]}}) + "\n")
        shutil.copytree(self.p("pack_ok"), self.p("composed_pack"), copy_function=os.link)
        (self.p("composed_pack", "compose.json")).write_text(json.dumps({"spec": {"pack": True}}) + "\n")
        for name in ("composed_flagged", "composed_pack"):
            self.p(name, "audit.json").write_text(json.dumps(audit) + "\n")
        self.p("composed_partial", "audit.json").write_text(json.dumps({**audit, "eval_sets": ["lfw"],
                                                                        "kept_flagged": []}) + "\n")
        self.p("composed_garbled", "audit.json").write_text("{\"eval_sets\": [\"lfw\", \n")

    def cleanup_modes(self) -> None:
        for name in ("read_only", "closed"):
            with contextlib.suppress(OSError):
                self.p(name).chmod(0o700)


def lock_held(folder: Path) -> Callable[[], contextlib.AbstractContextManager]:
    def hold():
        from facedata.io import folder_lock

        return folder_lock(folder)
    return hold


# --- issue 19, the data entry points (prepare, fetch, pack, sample_data, describe): one block ------------------
def _kill_a_prepare_worker(dst: Path) -> Callable[[], contextlib.AbstractContextManager]:
    """Held while `prepare ... dst --workers 2` runs: once its manifest has a row, SIGKILL one of its worker
    processes (what the out-of-memory killer does), found through /proc by the destination in its command line."""
    import signal
    import threading

    def children_of_prepare() -> list[int]:
        for proc in Path("/proc").iterdir():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                if b"facedata.prepare" in cmd and str(dst).encode() in cmd:
                    return [int(c) for c in (proc / "task" / proc.name / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return []

    @contextlib.contextmanager
    def around():
        def watch() -> None:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                manifest = dst / "manifest.csv"
                workers = children_of_prepare()
                if workers and manifest.is_file() and manifest.read_text().count("\n") >= 2:
                    os.kill(workers[0], signal.SIGKILL)
                    return
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        yield
    return around


def data_entry_cases(s: Scratch) -> list[Case]:
    """Issue 19's bad inputs to the data command lines (each also a test in tests/test_data_errors.py or
    tests/test_pack.py)."""
    import numpy as np

    t = s.p
    prep, fetch, pack = "python -m facedata.prepare", "python -m facedata.fetch", "python -m facedata.pack"
    prepare = lambda src, dst, *a: ["-m", "facedata.prepare", str(src), str(dst), "--workers", "0",  # noqa: E731
                                    "--no-progress", *map(str, a)]

    def files_of(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    def kept_as_is(folder: str) -> tuple[Callable[[], None], Callable[[], str]]:
        """(before, after): the folder's files are noted before and compared after."""
        seen: dict[str, bytes] = {}

        def note() -> None:
            seen.update(files_of(t(folder)))

        def check() -> str:
            now = {k: v for k, v in files_of(t(folder)).items() if k != ".lock"}
            same = now == {k: v for k, v in seen.items() if k != ".lock"}
            return f"after: {folder} {'unchanged' if same else 'CHANGED: ' + ', '.join(sorted(now))}"
        return note, check

    def absent_note(path: Path) -> str:
        return f"after: {path.name} {'WAS CREATED' if path.exists() else 'not created'}"

    def dst_with(name: str, file: str, content: bytes) -> Callable[[], None]:
        def make() -> None:
            t(name).mkdir()
            t(name, file).write_bytes(content)
        return make

    def twenty_faces() -> None:
        ids = s.data / "sample_identities"
        for name, n in (("Barack_Obama", 5), ("pyfeat_man", 8), ("pyfeat_woman", 8)):
            t("faces21", name).mkdir(parents=True)
            for f in sorted((ids / name).glob("*.jpg"))[:n]:
                shutil.copy(f, t("faces21", name, f.name))

    def rows(dst: str) -> Callable[[], str]:
        def count() -> str:
            from facedata.prepare import read_manifest

            got = read_manifest(t(dst, "manifest.csv")) if t(dst, "manifest.csv").is_file() else {}
            return f"after: {len(got)} manifest rows, {sum(r['status'] == 'ok' for r in got.values())} ok"
        return count

    def linked_identity() -> None:
        t("linked_src").mkdir()
        shutil.copytree(t("photos", "Barack_Obama"), t("linked_src", "Barack_Obama"))
        shutil.copytree(t("photos", "Joe_Biden"), t("elsewhere", "Joe_Biden"))
        t("linked_src", "Joe_Biden").symlink_to(t("elsewhere", "Joe_Biden"), target_is_directory=True)

    long_name = "o" * 246 + ".jpg"

    def long_named_photo() -> None:
        t("long_src", "Barack_Obama").mkdir(parents=True)
        shutil.copy(s.obama, t("long_src", "Barack_Obama", long_name))

    def damaged_packs() -> None:
        import struct

        for name in ("idx_abc", "label_nan"):
            t(name).mkdir()
            for suffix in (".rec", ".idx"):
                shutil.copy(t("pack_ok", "train" + suffix), t(name, "train" + suffix))
        lines = t("idx_abc", "train.idx").read_text().splitlines()
        t("idx_abc", "train.idx").write_text("\n".join(lines[:2] + ["2\tabc"] + lines[3:]) + "\n")
        data = bytearray(t("label_nan", "train.rec").read_bytes())
        offset = int(lines[1].split()[1])  # image record 1: magic, length, flag, label
        data[offset + 12: offset + 16] = struct.pack("<f", float("nan"))
        t("label_nan", "train.rec").write_bytes(bytes(data))

    def first_pack_unpacked() -> None:
        from facedata.pack import unpack, write_pack

        unpack(t("pack_ok", "train.rec"), t("unpacked"))
        write_pack(t("photos"), t("second.rec"))

    def corrupt_subset_copy() -> None:
        import config
        from facedata.fetch import read_subset

        shutil.copytree(config.CELEBA_SUBSET_ROOT, t("subset_built"), copy_function=os.link,
                        ignore=shutil.ignore_patterns(".*"))
        first = t("subset_built", read_subset()[0].crop_name)
        data = first.read_bytes()
        first.unlink()  # a hard link: the shared copy is not touched
        first.write_bytes(data[: len(data) // 2])

    def users_lfw() -> None:
        t("users_lfw", "lfw-deepfunneled", "Barack_Obama").mkdir(parents=True)
        shutil.copy(s.obama, t("users_lfw", "lfw-deepfunneled", "Barack_Obama", "Barack_Obama_0001.jpg"))
        t("users_lfw", "pairs.txt").write_text("my own pairs\n")

    manifest_note, manifest_same = kept_as_is("dst_bad_manifest")
    json_note, json_same = kept_as_is("dst_bad_json")
    unpacked_note, unpacked_same = kept_as_is("unpacked")
    lfw_note, lfw_same = kept_as_is("users_lfw")
    rng = np.random.default_rng(19)
    return [
        Case(prep, "one of 2 workers killed (SIGKILL, as the OOM killer) once the manifest has a row (21 real photos)",
             ["-m", "facedata.prepare", str(t("faces21")), str(t("dst_killed")), "--workers", "2", "--no-progress"],
             before=twenty_faces, around=_kill_a_prepare_worker(t("dst_killed")), after=rows("dst_killed")),
        Case(prep, "... and the same command again after the kill (must finish: exit 0)",
             ["-m", "facedata.prepare", str(t("faces21")), str(t("dst_killed")), "--workers", "2", "--no-progress"],
             expect=0, after=rows("dst_killed")),
        Case(prep, "DST holds a manifest.csv of 3,000 random bytes",
             prepare(t("photos"), t("dst_bad_manifest")),
             before=lambda: (dst_with("dst_bad_manifest", "manifest.csv", rng.bytes(3000))(), manifest_note()),
             after=manifest_same),
        Case(prep, "DST holds a prepare.json that is not JSON (cut short)",
             prepare(t("photos"), t("dst_bad_json")),
             before=lambda: (dst_with("dst_bad_json", "prepare.json", b'{"method": "arcface", ')(), json_note()),
             after=json_same),
        *[Case(prep, f"--max-megapixels {v}", prepare(t("photos"), t("dst_mp"), "--max-megapixels", v),
               after=lambda: absent_note(t("dst_mp"))) for v in ("nan", "inf")],
        Case(prep, "a 300-character DST name", prepare(t("photos"), t("d" * 300))),
        Case(prep, "DST under /sys (mkdir refused with EPERM, even for root)",
             prepare(t("photos"), "/sys/facekit_bad_inputs")),
        Case(prep, "--limit -1", prepare(t("photos"), t("dst_limit"), "--limit", "-1"),
             after=lambda: absent_note(t("dst_limit"))),
        Case(prep, "an identity folder that is a symbolic link (Joe_Biden -> elsewhere; followed: exit 0)",
             prepare(t("linked_src"), t("dst_linked")), expect=0, before=linked_identity, after=rows("dst_linked")),
        Case(prep, "a photo with a legal 250-character name (exit 0)", prepare(t("long_src"), t("dst_long")), expect=0,
             before=long_named_photo, after=rows("dst_long")),
        Case(pack, "unpack: a .idx whose third line is '2<TAB>abc'",
             ["-m", "facedata.pack", "unpack", str(t("idx_abc", "train.rec")), str(t("unpacked_idx"))],
             before=damaged_packs),
        Case(pack, "unpack: image record 1's label is NaN",
             ["-m", "facedata.pack", "unpack", str(t("label_nan", "train.rec")), str(t("unpacked_nan"))]),
        Case(pack, "unpack a second pack into the first one's unpack folder",
             ["-m", "facedata.pack", "unpack", str(t("second.rec")), str(t("unpacked"))],
             before=lambda: (first_pack_unpacked(), unpacked_note()), after=unpacked_same),
        Case("python -m facedata.sample_data", "--data-dir under a regular file",
             ["-m", "facedata.sample_data", "--data-dir", str(t("a_file", "data"))]),
        Case("python -m facedata.sample_data", "--gallery-dir under a regular file",
             ["-m", "facedata.sample_data", "--gallery-dir", str(t("a_file", "people_faces"))]),
        Case(fetch, "celeba-subset --from built crops whose first crop is cut in half (hard-linked copy of "
                    "data/celeba-subset)",
             ["-m", "facedata.fetch", "celeba-subset", "--from", str(t("subset_built")), "--dest",
              str(t("subset_dest"))], before=corrupt_subset_copy),
        Case(fetch, "lfw --dest under /dev/null",
             ["-m", "facedata.fetch", "lfw", "--from", str(t("photos")), "--dest", "/dev/null/lfw"]),
        Case(fetch, "lfw --from a complete LFW (data/lfw) --dest a folder of the user's own files",
             ["-m", "facedata.fetch", "lfw", "--from", str(s.data / "lfw"), "--dest", str(t("users_lfw"))],
             before=lambda: (users_lfw(), lfw_note()), after=lfw_same),
        Case("python -m facedata.describe", "--max-classes 0",
             ["-m", "facedata.describe", str(t("aligned")), "--max-classes", "0"]),
    ]


def cases(s: Scratch) -> list[Case]:
    t = s.p
    prep, idr, fetch = "python -m facedata.prepare", "python -m id_rate", "python -m facedata.fetch"
    ver, batch, rt, train = "python -m recognition.verify", "python -m recognition.batch", \
        "real-time-recognition.py", "train.py"
    sface_data = ["-m", "id_rate", "--models", "sface", "--data", str(t("aligned")), "--query-ids", "2",
                  "--distractor-ids", "10", "--no-cache"]
    emb = lambda f: ["-m", "id_rate", "--embeddings", str(t(f)), "--out", str(t("idr_out"))]  # noqa: E731
    rt_base = ["real-time-recognition.py", "--no-display", "--gallery-cache", "none"]
    rt_out = ["-output_path", str(t("rt_out.gif"))]
    verify = lambda bad: ["-m", "recognition.verify", str(bad), str(s.obama), "--model", "sface"]  # noqa: E731
    prep_first = lambda: subprocess.run(  # noqa: E731
        [PY, "-m", "facedata.prepare", str(t("newline_src")), str(t("newline_dst")), "--workers", "0", "--no-progress"],
        cwd=ROOT, capture_output=True, timeout=300, env=child_env())
    who = "as nobody, " if s.root_user else ""

    def newline_rows() -> str:
        from facedata.prepare import read_manifest

        rows = read_manifest(t("newline_dst", "manifest.csv"))
        n = sum(1 for src in rows if "\n" in src)
        return f"after both runs the manifest holds {n} row(s) for the file with a newline"

    def then(*steps: Callable[[], object]) -> Callable[[], None]:
        return lambda: [step() for step in steps] and None

    notes = "mine, not fetch's\n"

    def users_dest(name: str) -> Callable[[], None]:
        def make() -> None:
            t(name).mkdir()
            t(name, "my_notes.txt").write_text(notes)
        return make

    def survives(name: str) -> Callable[[], str]:
        def check() -> str:
            d = t(name)
            inside = sorted(f.name for f in d.iterdir()) if d.is_dir() else None
            left = sorted(f.name for f in d.parent.iterdir() if f.name.startswith(f".{name}."))
            ok = inside == ["my_notes.txt"] and t(name, "my_notes.txt").read_text() == notes
            return (f"after: the user's file {'survives unchanged, alone' if ok else f'NOT intact: {inside}'}"
                    + (f"; staging left behind: {left}" if left else ""))
        return check

    def absent(*parts: str) -> Callable[[], str]:
        def check() -> str:
            there = t(*parts).exists()
            return f"after: {'/'.join(parts)} {'WAS CREATED' if there else 'not created'}"
        return check

    fetch_new = lambda *a: ["-m", "facedata.fetch", *map(str, a)]  # noqa: E731
    compose = lambda *a: ["-m", "facedata.compose", str(t("composed_out")), *map(str, a), "--no-progress"]  # noqa: E731
    cfp_idr = lambda kind, aligned: ["-m", "id_rate", "--models", "sface", "--benchmark", kind, "--cfp-root",  # noqa: E731
                                     str(t("cfp_src")), "--cfp-dir", str(aligned), "--no-cache", "--out", str(t("idr_out"))]
    hints = lambda *a: ["-m", "facedata.prepare", str(t("photos")), str(t("hints_dst")), *map(str, a),  # noqa: E731
                        "--workers", "0", "--no-progress"]
    train_on = lambda *a: ["train.py", "--recipe", "sample-triplet", *map(str, a), "--epochs", "1", "--workers", "0",  # noqa: E731
                           "--device", "cpu", "--out", str(t("run_composed")), "--no-progress"]
    return [
        # --- facedata.prepare
        Case(prep, "DST is an existing file", ["-m", "facedata.prepare", str(t("photos")), str(t("a_file")),
                                               "--workers", "0", "--no-progress"]),
        Case(prep, f"DST's parent not writable ({who}mode 0o500)",
             ["-m", "facedata.prepare", str(t("photos")), str(t("read_only", "aligned")), "--workers", "0",
              "--no-progress"], as_nobody=True),
        Case(prep, f"DST's parent cannot be entered ({who}someone else's 0o700 folder)" if s.root_user
             else "DST's parent cannot be entered (mode 0o000)",
             ["-m", "facedata.prepare", str(t("photos")), str(t("closed", "aligned")), "--workers", "0",
              "--no-progress"], as_nobody=True),
        Case(prep, "--size 0", ["-m", "facedata.prepare", str(t("photos")), str(t("size0_dst")), "--size", "0",
                                "--workers", "0", "--no-progress"]),
        Case(prep, "a second run while the destination is locked (lock held by this script)",
             ["-m", "facedata.prepare", str(t("photos")), str(t("locked_dst")), "--workers", "0", "--no-progress"],
             around=lock_held(t("locked_dst"))),
        Case(prep, "a source file name with a newline, second run (must be 0 and 'nothing new')",
             ["-m", "facedata.prepare", str(t("newline_src")), str(t("newline_dst")), "--workers", "0",
              "--no-progress"], expect=0, before=prep_first, after=newline_rows),
        Case(prep, "--fallback hints without --hints", hints("--fallback", "hints"), after=absent("hints_dst")),
        Case(prep, "--hints FILE without --fallback hints", hints("--hints", t("hints_bad_x1.csv")),
             after=absent("hints_dst")),
        Case(prep, "--fallback hints --hints a missing file", hints("--fallback", "hints", "--hints", t("no_hints.csv")),
             after=absent("hints_dst")),
        Case(prep, "--fallback hints --hints a CSV whose row has x1 'left' (not a number)",
             hints("--fallback", "hints", "--hints", t("hints_bad_x1.csv")), after=absent("hints_dst")),
        Case(prep, "--fallback hints --hints a JPEG photo (not a CSV)",
             hints("--fallback", "hints", "--hints", s.obama), after=absent("hints_dst")),
        Case(prep, "--detect-max-side 10", hints("--detect-max-side", "10"), after=absent("hints_dst")),
        # --- id_rate
        Case(idr, "--embeddings: 'split' of the wrong length (39 for 40 rows)", emb("split_39_of_40.npz")),
        Case(idr, "--embeddings: an object-dtype (pickled) array", emb("object_array.npz")),
        Case(idr, "--embeddings: a text file named .npz", emb("text.npz")),
        Case(idr, "--embeddings: an .npy file renamed .npz", emb("single_npy.npz")),
        Case(idr, "--embeddings: split values spelled 'Query'", emb("split_Query.npz")),
        Case(idr, "--out naming an existing file (--models sface --data ...)", sface_data + ["--out", str(t("existing.txt"))]),
        Case(idr, f"--out under a non-writable folder ({who}mode 0o500)",
             sface_data + ["--out", str(t("read_only", "results"))], as_nobody=True),
        Case(idr, f"--out under a folder that cannot be entered ({who}0o700 / 0o000)",
             sface_data + ["--out", str(t("closed", "results"))], as_nobody=True),
        Case(idr, "--bin: a missing file", sface_data + ["--bin", str(t("missing.bin")), "--out", str(t("idr_out"))]),
        Case(idr, "--bin: 4 KB of random bytes", sface_data + ["--bin", str(t("random.bin")), "--out", str(t("idr_out"))]),
        Case(idr, "--benchmark lfw --lfw-pairs: a CSV, not an LFW pairs file",
             ["-m", "id_rate", "--models", "sface", "--benchmark", "lfw", "--lfw-dir", str(t("lfw_mini")),
              "--lfw-pairs", str(t("pairs_csv.txt")), "--no-cache", "--out", str(t("idr_out"))]),
        Case(idr, "--benchmark lfw --lfw-pairs: a different-person line where a same-person line belongs",
             ["-m", "id_rate", "--models", "sface", "--benchmark", "lfw", "--lfw-dir", str(t("lfw_mini")),
              "--lfw-pairs", str(t("pairs_swapped.txt")), "--no-cache", "--out", str(t("idr_out"))]),
        Case(idr, "--benchmark cfp-fp --cfp-dir an empty folder (CFP not aligned yet; fake CFP --cfp-root)",
             cfp_idr("cfp-fp", t("empty_dir")), before=s.cfp),
        Case(idr, "--benchmark cfp-fp --cfp-dir a missing folder (fake CFP --cfp-root)",
             cfp_idr("cfp-fp", t("no_such_cfp_aligned")), before=s.cfp),
        Case(idr, "--benchmark cfp-ff --cfp-dir an aligned CFP missing 001/frontal/01.jpg (fake CFP --cfp-root)",
             cfp_idr("cfp-ff", t("cfp_aligned_part")), before=s.cfp),
        # --- facedata.fetch
        Case(fetch, "lfw --from a folder of photos that is not LFW",
             ["-m", "facedata.fetch", "lfw", "--from", str(t("photos")), "--dest", str(t("fetch", "lfw"))]),
        Case(fetch, "lfw --from a folder with lfw-deepfunneled/ but no protocol files",
             ["-m", "facedata.fetch", "lfw", "--from", str(t("half_lfw")), "--dest", str(t("fetch", "lfw"))]),
        Case(fetch, "lfw --from a missing folder",
             ["-m", "facedata.fetch", "lfw", "--from", str(t("no_such_lfw")), "--dest", str(t("fetch", "lfw"))]),
        Case(fetch, "celeba-subset --from an empty folder",
             ["-m", "facedata.fetch", "celeba-subset", "--from", str(t("empty_dir")), "--dest", str(t("fetch", "celeba"))]),
        Case(fetch, "cfp --from a CFP copy missing one image (Data/Images/123/profile/03.jpg; fake 7,000-image CFP)",
             fetch_new("cfp", "--from", t("cfp_no_image"), "--dest", t("fetch", "cfp")), before=s.cfp,
             after=absent("fetch", "cfp")),
        Case(fetch, "cfp --from a CFP copy missing Protocol/Split/FP/03/same.txt (fake CFP)",
             fetch_new("cfp", "--from", t("cfp_no_split"), "--dest", t("fetch", "cfp")), before=s.cfp,
             after=absent("fetch", "cfp")),
        Case(fetch, "cfp --dest a folder holding a user's file (--from a complete fake CFP)",
             fetch_new("cfp", "--from", t("cfp_src"), "--dest", t("dest_cfp")),
             before=then(s.cfp, users_dest("dest_cfp")), after=survives("dest_cfp")),
        Case(fetch, "fiw --dest a folder holding a user's file (--from a complete fake FIW)",
             fetch_new("fiw", "--from", t("fiw_src"), "--dest", t("dest_fiw")),
             before=then(s.fiw, users_dest("dest_fiw")), after=survives("dest_fiw")),
        Case(fetch, "celeba-aligned --dest a folder holding a user's file (--from a fake img_align_celeba)",
             fetch_new("celeba-aligned", "--from", t("celeba_src"), "--dest", t("dest_celeba")),
             before=then(s.celeba, users_dest("dest_celeba")), after=survives("dest_celeba")),
        Case(fetch, "celeba-aligned --identities a file without a line for 000003.jpg",
             fetch_new("celeba-aligned", "--from", t("celeba_src", "img_align_celeba"), "--identities",
                       t("ids_without_000003.txt"), "--dest", t("fetch", "celeba_aligned")),
             before=s.celeba, after=absent("fetch", "celeba_aligned")),
        Case(fetch, "fiw --from a copy without train_relationships.csv",
             fetch_new("fiw", "--from", t("fiw_norel"), "--dest", t("fetch", "fiw")), before=s.fiw,
             after=absent("fetch", "fiw")),
        # --- facedata.compose
        Case("python -m facedata.compose", "two --source with one NAME (a=<aligned>, a=<another aligned>)",
             compose("--source", f"a={t('aligned')}", "--source", f"a={t('lfw_mini')}"), after=absent("composed_out")),
        Case("python -m facedata.compose", "two --source with one NAME, on a machine without LFW (FACEKIT_LFW=<missing>)",
             compose("--source", f"a={t('aligned')}", "--source", f"a={t('lfw_mini')}"),
             env={"FACEKIT_LFW": str(t("no_such_lfw"))}, after=absent("composed_out")),
        Case("python -m facedata.compose", "--source a=<aligned>,key=names (key: none, name or celeba)",
             compose("--source", f"a={t('aligned')},key=names"), after=absent("composed_out")),
        Case("python -m facedata.compose", "--source a=<a raw photo folder, no manifest.csv>",
             compose("--source", f"a={t('photos')}"), after=absent("composed_out")),
        Case("python -m facedata.compose", "--reference nosuch (the audit's reference model)",
             compose("--source", f"a={t('aligned')}", "--reference", "nosuch"), after=absent("composed_out")),
        *data_entry_cases(s),  # issue 19: prepare, fetch, pack, sample_data, describe
        # --- train.py
        *[Case(train, f"--set {kv}", ["train.py", "--recipe", "sample-triplet", "--set", kv, "--out", str(t("run")),
                                       "--no-progress"])
          for kv in ("lr=abc", "epochs=two", "val_fraction=2.0", "head_kwargs={'margn': 0.2}", "in_memory_gb=-1",
                     "monitor=select", "benchmark_query=100000")],
        # issue 20: the ship command and the composed report
        Case("python -m models_definition.ship", "RUN = a folder without best.pt",
             ["-m", "models_definition.ship", str(t("aligned")), "--name", "x", "--recipe", "sample-triplet",
              "--out", str(t("ship_out"))], after=absent("ship_out")),
        Case("python -m models_definition.ship", "--name ../escape",
             ["-m", "models_definition.ship", str(t("run")), "--name", "../escape", "--out", str(t("ship_out"))],
             after=absent("ship_out")),
        Case("python benchmarks/composed_report.py", "--results <a folder without results.json>",
             ["benchmarks/composed_report.py", "--results", str(t("aligned")), "--out", str(t("report.md"))]),
        Case(train, "--threads -1", ["train.py", "--recipe", "sample-triplet", "--threads", "-1", "--out",
                                     str(t("run_threads")), "--no-progress"], after=absent("run_threads")),
        Case(train, "--set data=<a train.rec without its train.idx>",
             ["train.py", "--recipe", "sample-triplet", "--set", f"data={t('no_idx', 'train.rec')}", "--out",
              str(t("run_pack")), "--no-progress"]),
        Case(train, "--set data=<a train.rec cut inside its last record>",
             ["train.py", "--recipe", "sample-triplet", "--set", f"data={t('truncated', 'train.rec')}", "--out",
              str(t("run_pack")), "--no-progress"]),
        Case(train, "--set extra_data=[...] on a triplet run (unlabelled faces train only distillation)",
             ["train.py", "--recipe", "sample-triplet", "--set", f"extra_data=['{t('aligned')}']", "--out",
              str(t("run_extra")), "--no-progress"]),
        Case(train, "--set teacher=... with embedding_size 64 for SFace's 128-D (distillation)",
             ["train.py", "--recipe", "sample-triplet", "--set", "head=distill", "--set", "sampler=shuffle",
              "--set", "head_kwargs={}", "--set", "teacher={'reference': 'sface'}", "--set", "embedding_size=64",
              "--out", str(t("run_teacher")), "--no-progress"]),
        Case("python -m facedata.pack", "index a missing .rec",
             ["-m", "facedata.pack", "index", str(t("no_such", "train.rec"))]),
        Case(idr, "--data a complete train.rec pack (evaluation reads folders)",
             ["-m", "id_rate", "--models", "sface", "--data", str(t("pack_ok", "train.rec")), "--query-ids", "2",
              "--distractor-ids", "4", "--no-cache", "--out", str(t("idr_out"))]),
        Case(train, "--out an existing file", ["train.py", "--recipe", "sample-triplet", "--out", str(t("existing.txt")),
                                               "--no-progress"]),
        Case(train, "--data a composed set whose audit kept a flagged identity (named/Barack_Obama)",
             train_on("--data", t("composed_flagged")), before=s.composed, after=absent("run_composed", "last.pt")),
        Case(train, "--data a composed set without audit.json (not audited)",
             train_on("--data", t("composed_unaudited")), before=s.composed, after=absent("run_composed", "last.pt")),
        Case(train, "--data a composed set audited against lfw only",
             train_on("--data", t("composed_partial")), before=s.composed, after=absent("run_composed", "last.pt")),
        Case(train, "--data a composed set whose audit.json is cut short (not JSON)",
             train_on("--data", t("composed_garbled")), before=s.composed, after=absent("run_composed", "last.pt")),
        Case(train, "--set data=<a composed train.rec pack whose audit kept a flagged identity>",
             train_on("--set", f"data={t('composed_pack', 'train.rec')}"), before=s.composed,
             after=absent("run_composed", "last.pt")),
        # --- recognition.verify
        Case(ver, "a missing file", verify(t("missing.jpg"))),
        Case(ver, "an empty file", verify(t("empty.jpg"))),
        Case(ver, "a text file named .jpg", verify(t("not_image.jpg"))),
        Case(ver, "an 8000x8000 image (64 MP)", verify(t("huge_8000x8000.png"))),
        Case(ver, "a photo without a face (a frame of no_face.mp4)", verify(t("no_face.jpg"))),
        # --- recognition.batch
        Case(batch, "a missing folder", ["-m", "recognition.batch", str(t("no_such_photos")), "--model", "sface",
                                         "--out", str(t("batch.csv")), "--gallery-cache", "none"]),
        # --- real-time-recognition.py
        Case(rt, "-cam a missing video", rt_base + ["-model_name=sface", "-cam", str(t("missing.mp4"))] + rt_out),
        Case(rt, "-cam 7 (no such camera)", rt_base + ["-model_name=sface", "-cam", "7"] + rt_out),
        Case(rt, "-output_path an existing folder named .gif",
             rt_base + ["-model_name=sface", "-cam", str(s.video), "-output_path", str(t("folder.gif"))]),
        Case(rt, "--log an existing file, no --overwrite",
             rt_base + ["-model_name=sface", "-cam", str(s.video), "--log", str(t("faces.csv"))] + rt_out),
        Case(rt, "-model_name=nope", rt_base + ["-model_name=nope", "-cam", str(s.video)] + rt_out),
        *model_entry_cases(s),  # issue 19: id_rate, id_rate.benchmark, verify, batch, the live script
    ]


# --- issue 19, the evaluation, recognition and live entry points: one block --------------------------------------
# A checkpoint or a moved data folder reaches a command the way a user's config.py edit does: `python -c` sets
# config.MODELS['my-model'] (or the reference models' data folder), then runs the command with its arguments.
_WITH = ("import runpy, sys; from pathlib import Path; {setup}; t = sys.argv[2]; sys.argv = [t] + sys.argv[3:]; "
         "runpy.run_path(t, run_name='__main__') if t.endswith('.py') else "
         "runpy.run_module(t, run_name='__main__', alter_sys=True)")


def _with_model(ckpt: Path, target: str, *argv: object) -> list[str]:
    """`python -c`: config.MODELS['my-model'] = the checkpoint ``ckpt``, then ``target`` (a module or a .py)."""
    setup = "import config; config.MODELS['my-model'] = dict(checkpoint=Path(sys.argv[1]), recipe='my-model')"
    return ["-c", _WITH.format(setup=setup), str(ckpt), target, *map(str, argv)]


def _with_data_dir(data: Path, target: str, *argv: object) -> list[str]:
    """`python -c`: the reference models' data folder moved to ``data``, then ``target``."""
    setup = "import models_definition.reference as r; r.DEFAULT_DATA_DIR = Path(sys.argv[1])"
    return ["-c", _WITH.format(setup=setup), str(data), target, *map(str, argv)]


def model_entry_cases(s: Scratch) -> list[Case]:
    """Issue 19's bad inputs to id_rate, id_rate.benchmark, verify, batch and the live script (each also a
    test in tests/test_cli_errors.py). Every `what` ends in "(19m)": `--only 19m` runs this block."""
    t = s.p
    idr, bench, ver, batch, rt = "python -m id_rate", "python -m id_rate.benchmark", "python -m recognition.verify", \
        "python -m recognition.batch", "real-time-recognition.py"
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}  # pip as on a machine without the network
    uncreatable = Path("/sys/facekit-bad-inputs")  # sysfs: even root cannot create a folder there

    def checkpoints() -> None:
        """The bad checkpoints, from a real (small) model, written once."""
        import pickle

        import torch

        from facedata.preprocess import get_preset
        from models_definition.backbones import build_embedder
        from models_definition.checkpoint import save_checkpoint

        if t("ckpt", "good.pt").exists():
            return
        t("ckpt").mkdir()
        spec = {"backbone": "mobilefacenet", "embedding_size": 32, "preprocess": get_preset("arcface112").to_dict()}
        torch.manual_seed(0)
        model = build_embedder("mobilefacenet", 32)
        data = save_checkpoint(t("ckpt", "good.pt"), model, spec).read_bytes()
        t("ckpt", "random.pt").write_bytes(os.urandom(4096))
        t("ckpt", "half.pt").write_bytes(data[: len(data) // 2])
        t("ckpt", "empty.pt").write_bytes(b"")
        # a pickle whose loading would create PWNED: torch.load(weights_only=True) must refuse it unrun
        t("ckpt", "evil.pt").write_bytes(pickle.dumps({"spec": _Touch(t("ckpt", "PWNED")), "model": {}}))
        torch.save({"spec": {**spec, "embedding_size": 64}, "model": model.state_dict()}, t("ckpt", "misfit.pt"))
        no_pre = {k: v for k, v in spec.items() if k != "preprocess"}
        torch.save({"spec": no_pre, "model": model.state_dict()}, t("ckpt", "no_preprocess.pt"))
        nan = {k: v.clone() for k, v in model.state_dict().items()}
        nan["neck.2.weight"][0, 0] = float("nan")
        torch.save({"spec": spec, "model": nan}, t("ckpt", "nan.pt"))

    def not_pwned() -> str:
        return "after: the pickle's code " + ("RAN (PWNED created)" if t("ckpt", "PWNED").exists() else "did not run")

    def data_dirs() -> None:
        """An empty data folder (SFace's cache gone) and one whose dlib landmark model is garbage."""
        from models_definition.reference import dlib_models

        t("no_models").mkdir(exist_ok=True)
        (t("dlib_garbage", "models")).mkdir(parents=True, exist_ok=True)
        for f in dlib_models():
            shutil.copy(f, t("dlib_garbage", "models", f.name))
        t("dlib_garbage", "models", "shape_predictor_5_face_landmarks.dat").write_bytes(b"garbage" * 100)

    def pairs_files() -> None:
        import pickle

        t("pairs_header_only.txt").write_text("10\t300\n")
        t("pairs_zero.txt").write_text("10\t0\n")
        t("pairs_one_fold.txt").write_text("2\npyfeat_man\t1\t2\npyfeat_woman\t1\t2\npyfeat_man\t1\tpyfeat_woman\t1\n"
                                         "Barack_Obama\t1\tpyfeat_man\t2\n")
        t("zero_pairs.bin").write_bytes(pickle.dumps(([], [])))
        t("a_file").write_text("a file, not a folder\n")

    def absent_out(*parts: str) -> Callable[[], str]:
        def check() -> str:
            return f"after: {'/'.join(parts)} {'WAS LEFT' if t(*parts).exists() else 'not left'}"
        return check

    ckpt = lambda name, target, *a: _with_model(t("ckpt", name), target, *a)  # noqa: E731
    idr_data = lambda *a: ["--models", "my-model", "--data", str(t("aligned")), "--query-ids", "2",  # noqa: E731
                           "--distractor-ids", "4", "--no-cache", "--no-progress", "--out", str(t("idr19_out")), *a]
    lfw = lambda pairs, *a: ["-m", "id_rate", "--models", "sface", "--benchmark", "lfw", "--lfw-dir",  # noqa: E731
                             str(t("lfw_mini")), "--lfw-pairs", str(t(pairs)), "--no-cache", "--no-progress", "--out",
                             str(t("idr19_out")), *a]
    bench_lfw = lambda pairs, *a: ["-m", "id_rate.benchmark", "--models", "sface", "--sets", "lfw",  # noqa: E731
                                   "--lfw-dir", str(t("lfw_mini")), "--lfw-pairs", str(t(pairs)), "--no-cache",
                                   "--no-progress", "--out", str(t("bench19_out")), *a]
    ver_a = lambda *a: [str(s.obama), str(s.obama.with_name("obama2.jpg")), *a]  # noqa: E731
    batch_a = lambda *a: [str(t("photos")), "--people-faces", str(ROOT / "people_faces"), "--out",  # noqa: E731
                          str(t("batch19.csv")), "--gallery-cache", "none", *a]
    rt_a = lambda *a: ["--no-display", "--gallery-cache", "none", "-cam", str(s.video), "-output_path",  # noqa: E731
                       str(t("rt19.gif")), *a]
    cases_ = []
    for name, what in (("random.pt", "4 KB of random bytes"), ("half.pt", "cut in half"), ("empty.pt", "empty"),
                       ("evil.pt", "a pickle that runs code"), ("misfit.pt", "weights that do not fit its spec"),
                       ("no_preprocess.pt", "a spec without 'preprocess'"), ("nan.pt", "NaN weights")):
        cases_.append(Case(idr, f"config.MODELS entry -> a checkpoint: {what} (19m)", ckpt(name, "id_rate", *idr_data()),
                           before=checkpoints, after=not_pwned if name == "evil.pt" else absent_out("idr19_out")))
    cases_ += [
        Case(bench, "config.MODELS entry -> a checkpoint of random bytes (19m)",
             ckpt("random.pt", "id_rate.benchmark", "--models", "my-model", "--sets", "celeba", "--celeba-dir",
                  t("aligned"), "--no-cache", "--no-progress", "--out", t("bench19_out")), before=checkpoints),
        Case(ver, "config.MODELS entry -> a checkpoint cut in half (19m)",
             ckpt("half.pt", "recognition.verify", *ver_a("--model", "my-model")), before=checkpoints),
        Case(batch, "config.MODELS entry -> a checkpoint with NaN weights (19m)",
             ckpt("nan.pt", "recognition.batch", *batch_a("--model", "my-model")), before=checkpoints),
        Case(rt, "config.MODELS entry -> a checkpoint whose spec lacks 'preprocess' (19m)",
             ckpt("no_preprocess.pt", "real-time-recognition.py", *rt_a("-model_name=my-model")), before=checkpoints),
        Case(ver, "SFace offline with its cached weights gone (data folder without models/, PIP_NO_INDEX) (19m)",
             _with_data_dir(t("no_models"), "recognition.verify", *ver_a("--model", "sface")), before=data_dirs,
             env=offline),
        Case(ver, "dlib's landmark model overwritten with garbage, offline (19m)",
             _with_data_dir(t("dlib_garbage"), "recognition.verify", *ver_a("--model", "dlib", "--threshold", "0.5")),
             before=data_dirs, env=offline),
        Case(idr, "--query-ids -3 (19m)", ["-m", "id_rate", "--models", "sface", "--data", str(t("aligned")),
                                           "--query-ids", "-3", "--no-cache", "--out", str(t("idr19_out"))]),
        Case(idr, "--bootstrap -5 (19m)", ["-m", "id_rate", "--models", "sface", "--data", str(t("aligned")),
                                           "--bootstrap", "-5", "--no-cache", "--out", str(t("idr19_out"))]),
        Case(bench, "--bootstrap -5 (19m)", ["-m", "id_rate.benchmark", "--models", "sface", "--bootstrap", "-5",
                                             "--out", str(t("bench19_out"))]),
        Case(idr, "--lfw-pairs: a header and no pairs ('10 300' alone) (19m)", lfw("pairs_header_only.txt"),
             before=pairs_files, after=absent_out("idr19_out")),
        Case(idr, "--lfw-pairs: header '10 0' (no pairs promised) (19m)", lfw("pairs_zero.txt"), before=pairs_files),
        Case(idr, "--lfw-pairs: a one-fold (View 1) pairs file (19m)", lfw("pairs_one_fold.txt"), before=pairs_files),
        Case(bench, "--lfw-pairs: a one-fold (View 1) pairs file (19m)", bench_lfw("pairs_one_fold.txt"),
             before=pairs_files, after=absent_out("bench19_out")),
        Case(idr, "--bin: a .bin with zero pairs (19m)",
             ["-m", "id_rate", "--models", "sface", "--data", str(t("aligned")), "--query-ids", "2", "--distractor-ids",
              "4", "--no-cache", "--bin", str(t("zero_pairs.bin")), "--out", str(t("idr19_out"))], before=pairs_files),
        Case(idr, "--out under /sys (cannot be created, even by root) (19m)",
             ["-m", "id_rate", "--models", "sface", "--data", str(t("aligned")), "--query-ids", "2",
              "--distractor-ids", "4", "--no-cache", "--out", str(uncreatable / "out")]),
        Case(idr, "--out under a regular file (19m)",
             ["-m", "id_rate", "--models", "sface", "--data", str(t("aligned")), "--query-ids", "2",
              "--distractor-ids", "4", "--no-cache", "--out", str(t("a_file", "out"))], before=pairs_files),
        Case(bench, "--sets composed --composed-dir <missing> (20)",
             ["-m", "id_rate.benchmark", "--models", "sface", "--sets", "composed", "--composed-dir",
              str(t("no_such_composed")), "--out", str(t("bench_out"))]),
        Case(bench, "--sets composed on a folder too small for the benchmark's people (20)",
             ["-m", "id_rate.benchmark", "--models", "sface", "--sets", "composed", "--composed-dir",
              str(t("aligned")), "--out", str(t("bench_out"))]),
        Case(bench, "--out under /sys (19m)", ["-m", "id_rate.benchmark", "--models", "sface", "--sets", "celeba",
                                               "--celeba-dir", str(t("aligned")), "--out", str(uncreatable / "out")]),
        Case(batch, "--out under /sys (19m)", ["-m", "recognition.batch", *batch_a("--model", "sface", "--out",
                                                                                 uncreatable / "r.csv")]),
        Case(batch, "--gallery-cache under /sys (19m)",
             ["-m", "recognition.batch", *batch_a("--model", "sface", "--gallery-cache", uncreatable / "cache")]),
        Case(rt, "-output_path under /sys (19m)",
             ["real-time-recognition.py", *rt_a("-model_name=sface", "-output_path", uncreatable / "o.gif")]),
        Case(rt, "--gallery-cache under /sys (19m)",
             ["real-time-recognition.py", *rt_a("-model_name=sface", "--gallery-cache", uncreatable / "cache")]),
        Case(rt, "-output_path a 300-character name (19m)",
             ["real-time-recognition.py", *rt_a("-model_name=sface", "-output_path", t("o" * 296 + ".gif"))]),
        Case(rt, "-output_path a legal 250-character name, --max-frames 2 (must be 0, recording written) (19m)",
             ["real-time-recognition.py", *rt_a("-model_name=sface", "-output_path", t("o" * 246 + ".gif"),
                                                "--max-frames", "2", "--record-max-side", "64")],
             expect=0, after=lambda: "after: the 250-character recording " + (
                 "exists" if t("o" * 246 + ".gif").is_file() else "IS MISSING")),
        Case(rt, "-device nonsense (19m)", ["real-time-recognition.py", *rt_a("-model_name=sface", "-device",
                                                                               "nonsense")]),
        Case(rt, "--threads -1 (19m)", ["real-time-recognition.py", *rt_a("-model_name=sface", "--threads", "-1")]),
        Case(rt, "--record-max-side -100 (19m)",
             ["real-time-recognition.py", *rt_a("-model_name=sface", "--record-max-side", "-100")],
             after=absent_out("rt19.gif")),
        Case(rt, "--max-frames -1 (19m)", ["real-time-recognition.py", *rt_a("-model_name=sface", "--max-frames", "-1")],
             after=absent_out("rt19.gif")),
        *[Case(entry, f"--max-megapixels {v} (19m)", argv)
          for v in ("inf", "nan")
          for entry, argv in ((ver, ["-m", "recognition.verify", *ver_a("--model", "sface", "--max-megapixels", v)]),
                              (batch, ["-m", "recognition.batch", *batch_a("--model", "sface", "--max-megapixels", v)]),
                              (rt, ["real-time-recognition.py", *rt_a("-model_name=sface", "--max-megapixels", v)]))],
        *[Case(entry, "--threshold nan (19m)", argv)
          for entry, argv in ((ver, ["-m", "recognition.verify", *ver_a("--model", "sface", "--threshold", "nan")]),
                              (batch, ["-m", "recognition.batch", *batch_a("--model", "sface", "--threshold", "nan")]),
                              (rt, ["real-time-recognition.py", *rt_a("-model_name=sface", "--threshold", "nan")]))],
    ]
    return cases_


class _Touch:
    """Pickles as a call to Path.touch(marker): a checkpoint that would run code if it were loaded unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))
# --- end of issue 19's evaluation, recognition and live block -------------------------------------------------


def child_env(home: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if home is not None:
        env["HOME"] = str(home)
    return env


def run_case(case: Case, s: Scratch, timeout: float) -> None:
    argv = case.argv() if callable(case.argv) else case.argv
    cmd = [PY, *argv]
    env = child_env()
    if case.as_nobody and s.root_user:
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        env = child_env(s.home)
    env.update(case.env or {})
    if case.before is not None:
        case.before()
    with (case.around() if case.around else contextlib.nullcontext()):
        start = time.perf_counter()
        try:
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
            case.rc, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as exc:
            case.rc = None
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            case.notes.append(f"timed out after {timeout:g} s")
        case.seconds = time.perf_counter() - start
    if case.after is not None:
        case.notes.append(case.after())
    case.traceback = "Traceback" in out or "Traceback" in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    case.first = lines[0] if lines else ""
    # the command's own message: "error: ...", "id_rate: error: ...", "fetch: error: ..." (not OpenCV's "[ERROR:0@..]")
    errors = [ln for ln in lines if re.match(r"([\w.\-]+: )?error:", ln)]
    if case.traceback and lines:
        errors = [lines[-1]]  # the exception line
    if errors and errors[0] != case.first:
        case.error = errors[0]
    if not lines:
        out_lines = [ln for ln in out.splitlines() if ln.strip()]
        case.first = "(stderr empty; stdout:) " + (out_lines[-1] if out_lines else "")


def clean(text: str, s: Scratch) -> str:
    text = text.replace(str(s.tmp), "<tmp>").replace(str(ROOT), "<repo>")
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 3] + "..."
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`" if text else ""


def write_markdown(all_cases: list[Case], s: Scratch, path: Path) -> str:
    good = [c for c in all_cases if c.rc == 2 and not c.traceback]
    as_expected = [c for c in all_cases if c.rc == c.expect and not c.traceback]
    summary = (f"{len(all_cases)} cases: {len(good)} exited 2 with no traceback; {len(as_expected)} ended as expected "
               f"(exit code in the 'expected' column, no traceback); "
               f"{sum(c.traceback for c in all_cases)} showed a traceback; "
               f"{sum(c.rc is None for c in all_cases)} timed out")
    head = [
        "# Bad inputs against every entry point (issue 12)",
        "",
        f"Measured {DATE} on the {MACHINE} (shared with other jobs), by `{COMMAND}`. Each row is one command run "
        "as a subprocess from the repository root on the real sample faces; `<tmp>` is the script's temporary "
        "folder, `<repo>` the repository. \"first stderr line\" is what the user sees first (truncated to "
        f"{MAX_CHARS} characters); \"error line\" is the error message where it is not that first line. "
        + ("The script ran as root, for whom a 0o500 folder blocks nothing, so the rows marked \"as nobody\" "
           "ran the command as `nobody` (`setpriv`) on a folder that `nobody` owns (mode 0o500) or cannot enter "
           "(root's, mode 0o700)." if s.root_user else ""),
        "",
        f"**Summary:** {summary}.",
        "",
        "| # | entry point | bad input | exit | expected | seconds | first stderr line | error line (if not the first) | traceback |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for i, c in enumerate(all_cases, 1):
        exit_code = "timeout" if c.rc is None else str(c.rc)
        flag = "**yes**" if c.traceback else "no"
        what = c.what.replace("|", "\\|") + ("; " + "; ".join(c.notes) if c.notes else "")
        rows.append(f"| {i} | `{c.entry}` | {what} | {exit_code} | {c.expect} | {c.seconds:.1f} | "
                    f"{clean(c.first, s)} | {clean(c.error, s)} | {flag} |")
    path.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=None, help="run only the cases whose entry point or description holds this")
    p.add_argument("--timeout", type=float, default=300, help="seconds per command")
    p.add_argument("--md", type=Path, default=OUT_MD, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bad_inputs."))
    s = Scratch(tmp)
    try:
        s.build()
        todo = [c for c in cases(s) if args.only is None or args.only in c.entry or args.only in c.what]
        for i, c in enumerate(todo, 1):
            run_case(c, s, args.timeout)
            mark = "ok " if c.rc == c.expect and not c.traceback else "BAD"
            print(f"[{i:2d}/{len(todo)}] {mark} exit {c.rc} {c.seconds:5.1f}s {c.entry}: {c.what}", file=sys.stderr)
        summary = write_markdown(todo, s, args.md)
    finally:
        s.cleanup_modes()
        shutil.rmtree(tmp, ignore_errors=True)
    print(summary)
    print(f"wrote {args.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
