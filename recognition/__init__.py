"""Recognition on photos and video (the real-time script's library): ``verify`` compares two photos.
Imports flow facedata -> models_definition -> recognition -> scripts."""
from .verify import Verdict, embed_photo, verify

__all__ = ["Verdict", "embed_photo", "verify"]
