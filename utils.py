"""Helpers for notebooks and scripts, re-exported from the facedata and models_definition packages (the code lives there,
tested). Kept at the top level because the seed project's notebooks import from ``utils``."""
from facedata.align import align_face, arcface_template
from facedata.detect import FaceDetector, pick_main_face
from facedata.draw import draw_faces, image_grid
from facedata.io import load_image
from models_definition.zoo import load_model

__all__ = ["align_face", "arcface_template", "FaceDetector", "pick_main_face", "draw_faces", "image_grid", "load_image", "load_model"]
