"""Exceptions of the face-data package: each names the file or value at fault and what to do."""
from __future__ import annotations


class FaceDataError(Exception):
    """Base class for every error this package raises on purpose."""


class ImageReadError(FaceDataError):
    """An image could not be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str, hint: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        super().__init__(f"{self.path}: {self.detail}")

    @property
    def detail(self) -> str:
        """The reason with its hint, without the path (for lists of skipped files)."""
        return f"{self.reason} ({self.hint})" if self.hint else self.reason


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the configured limit; refused before it is decoded."""


class DatasetError(FaceDataError):
    """A dataset folder, split or pairs file is unusable as given."""


class SampleDataError(FaceDataError):
    """The built-in sample data could not be fetched or built."""


class OutputPathError(FaceDataError):
    """An output path that cannot be written (a folder, a folder that cannot be written in, an existing
    file not to be replaced): refused before any work starts."""


class OutputNotSavedError(FaceDataError):
    """An output could not be published at ``path``; ``kept`` is where its data lies instead (None: lost)."""

    def __init__(self, path: str, kept: str | None, reason: str) -> None:
        self.path, self.kept, self.reason = str(path), None if kept is None else str(kept), reason
        where = f"its data is kept at {self.kept}" if self.kept else "nothing could be kept"
        super().__init__(f"{self.path} could not be written ({reason}); {where}")


class VerificationFileError(DatasetError):
    """An insightface verification ``.bin`` file (or an image in it) that cannot be read: corrupt,
    truncated, or not such a file."""
