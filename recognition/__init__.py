"""Recognition on photos and video (the real-time script's library): the gallery of known people,
matching, tracking, frame sources, recordings, the real-time loop, batch mode and ``verify``.
Imports flow facedata -> models_definition -> recognition -> scripts."""
from .gallery import UNKNOWN, Gallery, GalleryError, Match, enrol, scan_gallery
from .verify import Verdict, embed_photo, verify

__all__ = ["UNKNOWN", "Gallery", "GalleryError", "Match", "Verdict", "embed_photo", "enrol", "scan_gallery", "verify"]
