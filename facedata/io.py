"""Reading images into one form: an RGB ``uint8`` array of shape (H, W, 3).

Every entry point (dataset preparation, galleries, live frames) goes through :func:`load_image`, so a
grayscale scan, a palette GIF, a 16-bit PNG, a CMYK JPEG or a phone photo with an EXIF rotation all
reach the detector the same way.  Colour order of numpy input is never guessed: the caller states it.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Literal, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, ImageTooLargeError

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
            "downscale it, or raise max_pixels / --max-megapixels if it is meant to be read",
        )


def _open_path(path: Path, max_pixels: int | None) -> np.ndarray:
    name = str(path)
    if not path.exists():
        raise ImageReadError(name, "file not found", "check the path")
    if path.is_dir():
        raise ImageReadError(name, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(name, "empty file (0 bytes)", "re-copy or delete it")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit replaces PIL's DecompressionBombWarning with a clear error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
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


def save_image_atomic(rgb: np.ndarray, path: str | os.PathLike, quality: int = 95) -> None:
    """Write an RGB uint8 array to ``path`` via a temporary file and rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            kwargs = {"quality": quality} if fmt == "JPEG" else {}
            Image.fromarray(rgb).save(fh, format=fmt, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def file_fingerprint(path: str | os.PathLike) -> list:
    """[path, size, mtime_ns, sha256 of the first MiB]: changes when the file does (cache keys)."""
    import hashlib

    path = Path(path)
    st = path.stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    return [str(path), st.st_size, st.st_mtime_ns, head]


def publish_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a finished temporary file onto ``path`` with the permissions a plain ``open`` would give
    (mkstemp makes files private, 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        publish_file(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has an image extension (content is checked only when read)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def image_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files of ``folder`` (and of its subfolders when ``recursive``), sorted by path; hidden
    files and folders are skipped."""
    folder = Path(folder)
    if not recursive:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_image_file(p) and p.is_file())
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, n) for n in names if not n.startswith(".") and is_image_file(n)]
    return sorted(found)
