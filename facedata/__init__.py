"""facedata: face images in, aligned crops and datasets out.

Modules, each with one job (imports flow io -> detect -> align -> prepare / datasets):
``io`` image reading, ``detect`` MTCNN faces, ``align`` crops, ``prepare`` the folder-alignment CLI,
``datasets`` face folders, packs and splits, ``preprocess`` the model-input contract, ``lfw`` pair files,
``insightface_io`` .bin / .rec readers, ``pack`` the .rec write / unpack / index CLI, ``sample_data`` the
built-in real faces.
"""
from .align import ALIGNERS, ARCFACE_TEMPLATE_112, align_face, arcface_template, get_aligner
from .datasets import FaceDataset, FaceFolder, identity_disjoint_split, scan_face_folder, stratified_split
from .detect import DetectorConfig, Face, FaceDetector, pick_main_face
from .errors import DatasetError, FaceDataError, ImageReadError, SampleDataError
from .io import load_image
from .preprocess import PRESETS, Preprocess, get_preset

__all__ = [
    "ALIGNERS", "ARCFACE_TEMPLATE_112", "align_face", "arcface_template", "get_aligner",
    "FaceDataset", "FaceFolder", "identity_disjoint_split", "scan_face_folder", "stratified_split",
    "DetectorConfig", "Face", "FaceDetector", "pick_main_face",
    "DatasetError", "FaceDataError", "ImageReadError", "SampleDataError",
    "load_image", "PRESETS", "Preprocess", "get_preset",
]
