"""The training package's own error (settings errors are ``training.config.SettingError``)."""
from __future__ import annotations

from facedata.errors import FaceKitError


class TrainingError(FaceKitError, RuntimeError):
    """Training cannot go on (NaN loss, a run folder in the way, a resume that does not match)."""
