"""Exceptions of the face-data package: each names the file or value at fault and what to do."""
from __future__ import annotations


class FaceDataError(Exception):
    """Base class for every error this package raises on purpose."""


class ImageReadError(FaceDataError):
    """An image could not be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str, hint: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        msg = f"{self.path}: {reason}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the configured limit; refused before it is decoded."""


class DatasetError(FaceDataError):
    """A dataset folder, split or pairs file is unusable as given."""


class SampleDataError(FaceDataError):
    """The built-in sample data could not be fetched or built."""
