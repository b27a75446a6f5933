"""Exceptions of the face-data package: each names the file or value at fault and what to do."""
from __future__ import annotations


class FaceKitError(Exception):
    """The root of every error the toolkit raises on purpose: a bad input, file or setting, named with what to do.

    Command lines (``facedata.cli.command``) print these as one ``error:`` line and exit 2; anything else is a
    bug and keeps its traceback."""


class FaceDataError(FaceKitError):
    """Base class for every error the data package raises on purpose."""


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


class UsageError(FaceKitError, ValueError):
    """A command-line value or setting that cannot be used (out of range, NaN, contradicting another); the
    message names the option, the value and what is allowed."""
