"""Recognition on photos and video (the real-time script's library): the gallery of known people,
matching, tracking, frame sources, recordings, the real-time loop, batch mode and ``verify``.
Imports flow facedata -> models_definition -> recognition -> scripts."""
from .gallery import UNKNOWN, Gallery, GalleryError, Match, enrol, scan_gallery


def __getattr__(name: str):
    """``verify`` and friends on first use: importing them with the package made
    ``python -m recognition.verify`` warn that the module was already imported."""
    if name in ("Verdict", "embed_photo", "verify"):
        from . import verify as _verify

        return getattr(_verify, name)
    raise AttributeError(f"module 'recognition' has no attribute {name!r}")


__all__ = ["UNKNOWN", "Gallery", "GalleryError", "Match", "Verdict", "embed_photo", "enrol", "scan_gallery", "verify"]
