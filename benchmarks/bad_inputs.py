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
DATE, MACHINE, COMMAND = "2026-11-24", "2-core CPU", "python benchmarks/bad_inputs.py"
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

    def cleanup_modes(self) -> None:
        for name in ("read_only", "closed"):
            with contextlib.suppress(OSError):
                self.p(name).chmod(0o700)


def lock_held(folder: Path) -> Callable[[], contextlib.AbstractContextManager]:
    def hold():
        from facedata.prepare import folder_lock

        return folder_lock(folder)
    return hold


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
        # --- facedata.fetch
        Case(fetch, "lfw --from a folder of photos that is not LFW",
             ["-m", "facedata.fetch", "lfw", "--from", str(t("photos")), "--dest", str(t("fetch", "lfw"))]),
        Case(fetch, "lfw --from a folder with lfw-deepfunneled/ but no protocol files",
             ["-m", "facedata.fetch", "lfw", "--from", str(t("half_lfw")), "--dest", str(t("fetch", "lfw"))]),
        Case(fetch, "lfw --from a missing folder",
             ["-m", "facedata.fetch", "lfw", "--from", str(t("no_such_lfw")), "--dest", str(t("fetch", "lfw"))]),
        Case(fetch, "celeba-subset --from an empty folder",
             ["-m", "facedata.fetch", "celeba-subset", "--from", str(t("empty_dir")), "--dest", str(t("fetch", "celeba"))]),
        # --- train.py
        *[Case(train, f"--set {kv}", ["train.py", "--recipe", "sample-triplet", "--set", kv, "--out", str(t("run")),
                                       "--no-progress"])
          for kv in ("lr=abc", "epochs=two", "val_fraction=2.0", "head_kwargs={'margn': 0.2}")],
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
    ]


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
