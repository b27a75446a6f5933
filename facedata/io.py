"""Reading images into one form: an RGB ``uint8`` array of shape (H, W, 3).

Every entry point (dataset preparation, galleries, live frames) goes through :func:`load_image`, so a
grayscale scan, a palette GIF, a 16-bit PNG, a CMYK JPEG or a phone photo with an EXIF rotation all
reach the detector the same way.  Colour order of numpy input is never guessed: the caller states it.

Writing goes through one mechanism too, :func:`atomic_output` (a temporary file renamed into place with
the permissions a plain ``open`` gives), and output paths are checked before any work starts
(:func:`check_output_file`, :func:`check_output_folder`).
"""
from __future__ import annotations

import argparse
import errno
import glob
import math
import os
import secrets
import stat
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DatasetError, ImageReadError, ImageTooLargeError, OutputNotSavedError, OutputPathError, UsageError

ColorOrder = Literal["RGB", "BGR"]
ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]

# 40 megapixels: above any camera frame or dataset photo we expect, below the size where one decode
# costs gigabytes. An 8000x8000 (64 MP) file is refused before it is decoded.
DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale integer or float pixel data to uint8 (16-bit data keeps its full range)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(arr)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(arr) * (255.0 / hi), 0, 255).round().astype(np.uint8)
    # Integer data: 16-bit images (or 'I' mode holding 16-bit values) map 0..65535 -> 0..255.
    hi = 65535 if int(arr.max(initial=0)) > 255 else 255
    return np.clip(arr.astype(np.float64) * (255.0 / hi), 0, 255).round().astype(np.uint8)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to an RGB uint8 array; transparency is composited on white."""
    mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = _to_uint8(np.asarray(img))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _check_pixels(name: str, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            name,
            f"image is {width}x{height} = {width * height / 1e6:.1f} MP, above the limit of "
            f"{max_pixels / 1e6:.1f} MP",
            f"downscale it, or raise the limit if it is meant to be read: --max-megapixels "
            f"{math.ceil(width * height / 1e6)} on the command line, max_pixels in code",
        )


def _stat_problem(path: Path) -> str | None:
    """Why ``path`` cannot be opened as a file (None when it can): ``Path.exists()`` answers False for a
    symbolic-link loop and a dangling link alike, which used to read as "file not found"."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return f"broken symbolic link (it points to {os.readlink(path)}, which does not exist)"
        return "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself); replace it with the file it should point to"
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not an image file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a device, pipe or socket)"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    return None


def _open_path(path: Path, max_pixels: int | None) -> np.ndarray:
    name = str(path)
    problem = _stat_problem(path)
    if problem is not None:
        hint = {"file not found": "check the path", "empty file (0 bytes)": "re-copy or delete it"}.get(problem, "")
        raise ImageReadError(name, problem, hint)
    try:
        fh = open(path, "rb")  # opened here: a permission error is not "corrupt data"
    except OSError as exc:
        raise ImageReadError(name, f"cannot be opened ({exc.strerror})") from None
    try:
        with fh, warnings.catch_warnings():
            # Our own pixel limit replaces PIL's DecompressionBombWarning with a clear error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fh) as img:
                _check_pixels(name, img.width, img.height, max_pixels)
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return _pil_to_rgb(img)
    except UnidentifiedImageError:
        with open(path, "rb") as fh:
            head = fh.read(16)
        raise ImageReadError(name, f"not an image file (unknown format, starts with {head!r})") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(name, f"refused by the decompression-bomb guard: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(name, f"corrupt or truncated image data ({exc})", "re-download the file") from None


def load_image(
    source: ImageInput,
    color: ColorOrder | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Return ``source`` as a C-contiguous RGB uint8 array of shape (H, W, 3).

    ``source`` is a file path, a PIL image or a numpy array. For a 3- or 4-channel array ``color``
    must say whether the channels are "RGB" or "BGR" (OpenCV frames are BGR); 2-D arrays are gray.
    EXIF orientation is applied for files and PIL images. Raises :class:`ImageReadError`.
    """
    if isinstance(source, (str, os.PathLike)):
        return _open_path(Path(source), max_pixels)
    if isinstance(source, Image.Image):
        _check_pixels("<PIL image>", source.width, source.height, max_pixels)
        return _pil_to_rgb(ImageOps.exif_transpose(source) or source)
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim == 2:
            _check_pixels("<array>", arr.shape[1], arr.shape[0], max_pixels)
            gray = _to_uint8(arr)
            return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ImageReadError("<array>", f"expected (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
        if color not in ("RGB", "BGR"):
            raise ImageReadError(
                "<array>", f"colour order must be stated for a colour array: color='RGB' or 'BGR', got {color!r}",
                "OpenCV frames are BGR",
            )
        _check_pixels("<array>", arr.shape[1], arr.shape[0], max_pixels)
        out = _to_uint8(arr)
        if color == "BGR":
            out = out[:, :, 2::-1] if out.shape[2] == 4 else out[:, :, ::-1]
        if out.shape[2] == 4:
            alpha = out[:, :, 3:4].astype(np.float32) / 255.0
            out = (out[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
        return np.ascontiguousarray(out[:, :, :3])
    raise ImageReadError(repr(type(source)), "unsupported image type: pass a path, a PIL image or a numpy array")


# --- writing outputs: one mechanism for every file the project writes --------------------------------

NAME_MAX_BYTES = 255  # the longest file name of ext4, xfs, btrfs, tmpfs and NTFS
TEMP_SUFFIX_BYTES = 24  # room kept in a temporary name for its own suffix (".tmp.jpg", ".part", ...)


def _temp_stem(name: str, suffix: str = "") -> str:
    """The part of ``name`` that starts its temporary names: the whole name, or for a name too long to take
    '.' + '.' + 8 hex digits + a suffix (a legal 250-character photo name), its start cut on a character
    boundary so the temporary name still fits; the random digits keep it unique."""
    room = NAME_MAX_BYTES - 10 - max(len(os.fsencode(suffix)), TEMP_SUFFIX_BYTES)
    stem = name
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return stem


def _temp_next_to(path: Path, suffix: str) -> Path:
    """Create an empty, uniquely named hidden file next to ``path`` and return it. It is created with mode
    0666 like ``open(path, "w")``, so the umask applies (mkstemp's 0600 used to leak into published files)."""
    stem = _temp_stem(path.name, suffix)
    for _ in range(100):
        tmp = path.with_name(f".{stem}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free temporary name next to it")


def _keep_aside(tmp: Path, path: Path) -> Path:
    """Move an unpublished temporary file to a visible name next to ``path``; where it could not be moved,
    it stays where it is. Returns where the data lies."""
    stem = f"{path.stem}.unsaved-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = path.with_name(stem + path.suffix), 1
    while os.path.lexists(target):
        target, n = path.with_name(f"{stem}-{n}{path.suffix}"), n + 1
    try:
        os.rename(tmp, target)
        return target
    except OSError:
        return tmp


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None, keep_on_error: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write; when the block ends it is renamed onto ``path``
    (mode 0666 minus the umask, as a plain ``open`` gives), so a crash never leaves half a file there.
    On an error the temporary file is removed, or with ``keep_on_error`` (recordings, logs: data that
    cannot be made again), when it holds data, moved to a visible ``<stem>.unsaved-<time><suffix>`` and
    :class:`OutputNotSavedError` says where. ``suffix`` defaults to ``.tmp<path's suffix>`` so writers
    that pick a format by extension (Pillow, OpenCV) still do."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_next_to(path, f".tmp{path.suffix}" if suffix is None else suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        if keep_on_error and tmp.is_file() and tmp.stat().st_size > 0:
            kept = _keep_aside(tmp, path)
            if isinstance(exc, Exception):  # Ctrl+C stays Ctrl+C; the data is kept either way
                raise OutputNotSavedError(str(path), str(kept), f"{type(exc).__name__}: {exc}") from exc
            raise
        tmp.unlink(missing_ok=True)
        raise


def save_image_atomic(rgb: np.ndarray, path: str | os.PathLike, quality: int = 95) -> None:
    """Write an RGB uint8 array to ``path`` (JPEG, or PNG by extension) through :func:`atomic_output`."""
    fmt = "PNG" if Path(path).suffix.lower() == ".png" else "JPEG"
    with atomic_output(path) as tmp:
        Image.fromarray(rgb).save(tmp, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def leftover_temps(path: str | os.PathLike) -> list[Path]:
    """Hidden temporary files of :func:`atomic_output` (and older ``.partial`` spools) for ``path`` left
    next to it by a process that was killed: they are never removed automatically (a recording's may be
    the only copy of its frames). For a name cut short in its temporary names (:func:`_temp_stem`) the cut
    start is matched, so another file's temporaries sharing that long start are listed too."""
    path = Path(path)
    stem = _temp_stem(path.name)
    pattern = f".{glob.escape(path.name)}.*" if stem == path.name else f".{glob.escape(stem)}*"
    try:
        return sorted(p for p in path.parent.glob(pattern) if p.is_file())
    except OSError:
        return []


def _check_can_create(folder: Path, what: str, target: Path) -> None:
    """Refuse ``target`` unless files can be created in ``folder`` (created later if missing)."""
    existing = folder

    def is_dir(p: Path) -> bool:
        try:
            return p.is_dir()
        except PermissionError:  # a parent that cannot be entered: named below, never a traceback
            raise OutputPathError(f"{what} {target}: cannot look into {p.parent} (permission denied); choose a "
                                  "writable place") from None

    while not is_dir(existing):
        if os.path.lexists(existing):
            raise OutputPathError(f"{what} {target}: {existing} is a file, not a folder, so {target} cannot be "
                                  "created; choose another path")
        if existing.parent == existing:
            break
        existing = existing.parent
    try:
        if existing == folder:
            tempfile.TemporaryFile(dir=folder).close()  # the real test: ACLs, read-only mounts, full quota
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
    except OSError as exc:
        where = folder if existing == folder else f"{folder} (nor can {existing} get a new folder)"
        raise OutputPathError(f"{what} {target}: cannot write in {where}: {exc.strerror or exc}; choose a "
                              "writable place") from None


def check_output_file(path: str | os.PathLike, what: str, overwrite: bool = True,
                      suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work starts, an output file that could not be written at the end: a wrong
    suffix, a folder in its place, a folder that cannot be written in, or (``overwrite=False``) an existing
    file. ``what`` names the option (e.g. "--log") in the message."""
    path = Path(path).expanduser()
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{what} {path}: must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise OutputPathError(f"{what} {path}: is a folder; give a file path (e.g. "
                              f"{path / ('output' + (suffixes[0] if suffixes else path.suffix))})")
    if not overwrite and os.path.lexists(path):
        raise OutputPathError(f"{what} {path}: already exists and would be replaced; pass --overwrite to replace "
                              "it, or choose another file")
    _check_can_create(path.parent, what, path)
    return path


def check_output_folder(path: str | os.PathLike, what: str) -> Path:
    """Refuse, before any work starts, an output folder that is a file or cannot be written in."""
    path = Path(path).expanduser()
    if os.path.lexists(path) and not path.is_dir():
        raise OutputPathError(f"{what} {path}: is a file, not a folder; give a folder (it is created when missing)")
    _check_can_create(path, what, path)
    return path


def _create_folder(folder: Path, what: str, target: Path) -> None:
    """Create ``folder`` (and its parents) now; a place the OS refuses (``/sys``, a path under a file, a
    read-only mount, even for root) is an :class:`OutputPathError` before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{what} {target}: the folder {folder} cannot be created ({exc.strerror or exc}); "
                              "choose a writable place") from None


def create_output_folder(path: str | os.PathLike, what: str) -> Path:
    """:func:`check_output_folder`, then create the folder and write a test file in it: the OS's own answer,
    before any work (``os.access`` says yes to root where the write still fails)."""
    path = check_output_folder(path, what)
    _create_folder(path, what, path)
    _check_can_create(path, what, path)
    return path


@contextmanager
def output_folder(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """:func:`create_output_folder` for the length of a command: the folders it had to create are removed
    again when the command fails (an error or Ctrl+C) and they are still empty, so a refused run leaves
    nothing behind."""
    path = Path(path).expanduser()
    new = [p for p in (path, *path.parents) if not os.path.lexists(p)]  # deepest first
    create_output_folder(path, what)
    try:
        yield path
    except BaseException:
        for p in new:
            try:
                p.rmdir()  # only when empty
            except OSError:
                break
        raise


def create_output_file(path: str | os.PathLike, what: str, overwrite: bool = True,
                       suffixes: tuple[str, ...] = ()) -> Path:
    """:func:`check_output_file`, then create its folder and the hidden temporary file
    :func:`atomic_output` will write (removed at once): a name too long for the file system is refused
    now, not after the work."""
    path = Path(path).expanduser()
    suffix = f".tmp{path.suffix}"  # atomic_output's default
    try:
        path = check_output_file(path, what, overwrite, suffixes)
        _create_folder(path.parent, what, path)
        _temp_next_to(path, suffix).unlink()
    except OSError as exc:
        if isinstance(exc, OutputPathError):
            raise
        if exc.errno != errno.ENAMETOOLONG:
            raise OutputPathError(f"{what} {path}: cannot write in {path.parent}: {exc.strerror or exc}; choose a "
                                  "writable place") from None
        limit = _name_max(path.parent)
        raise OutputPathError(f"{what} {path.parent / path.name[:40]}...: the file name is {len(path.name)} characters; "
                              f"this file system allows at most {limit}: choose a shorter name") from None
    return path


def _name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system allows (255 where it cannot be asked)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


@contextmanager
def folder_lock(folder: Path, what: str = "prepared", lock_name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``lock_name`` inside it) for the block; a second holder is refused
    with who holds it, so two runs never do the same images twice into one manifest."""
    import fcntl
    import socket

    lock = folder / lock_name
    fh = open(lock, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise DatasetError(f"{folder} is being {what} by another run ({holder}); wait for it to finish, "
                               "or use another output folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the lock


def add_max_megapixels_option(parser: argparse.ArgumentParser) -> None:
    """``--max-megapixels``, the option the too-large-image error points to, for every command that reads images."""
    parser.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
                        help=f"refuse images above this many megapixels before decoding them (default "
                             f"{DEFAULT_MAX_PIXELS / 1e6:g}: an 8000x8000 photo needs 64)")


def max_pixels_of(megapixels: float) -> int:
    """The pixel limit of ``--max-megapixels``; a value that is not a positive finite number is refused
    (``inf`` would overflow ``int``; NaN compares false with every size)."""
    if not (math.isfinite(megapixels) and megapixels > 0):
        raise UsageError(f"--max-megapixels {megapixels}: must be a positive, finite number of megapixels "
                         f"(default {DEFAULT_MAX_PIXELS / 1e6:g})")
    return int(megapixels * 1e6)


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has an image extension (content is checked only when read)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def image_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files of ``folder`` (and of its subfolders when ``recursive``), sorted by path; hidden
    files and folders are skipped. A broken symbolic link or a link loop with an image name is listed, so
    that the reader reports it instead of it vanishing without a word."""
    folder = Path(folder)
    if not recursive:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_image_file(p) and not p.is_dir())
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, n) for n in names if not n.startswith(".") and is_image_file(n)]
    return sorted(found)
