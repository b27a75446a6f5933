"""The one runner every command line goes through: what a user sees when something goes wrong.

    @command("python -m id_rate")
    def main(argv: list[str] | None = None) -> int: ...

- A toolkit error (``FaceKitError``: a bad file, value or setting) prints ``<prog>: error: <message>`` and
  returns 2. The message names the file or value and what to do; it is written where the error is raised.
- An ``OSError`` (a path that cannot be read or created, a full disk) is the user's world, not a bug: one line
  naming the file, exit 2.
- Ctrl+C returns 130 and says what was kept: every output is written atomically, so nothing half-written is
  left, and ``interrupted`` (the command's own words) says how to continue.
- Anything else is a bug: its traceback is kept (re-raised) after one line asking for a report.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable, Sequence

from .errors import FaceKitError, UsageError

Main = Callable[..., int]
BUG_NOTE = ("this is a bug in the toolkit, not in your input: please report it with the traceback below and the "
            "command you ran")
KEPT = "outputs already written are complete (each is written atomically); nothing half-written was kept"


def error_message(exc: BaseException) -> str:
    """The one-line text of a toolkit or OS error (a KeyError subclass's own message, not its repr)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and not isinstance(exc, FaceKitError):
        where = exc.filename if exc.filename is not None else ""
        what = exc.strerror or str(exc)
        also = f" -> {exc.filename2}" if exc.filename2 is not None else ""
        hint = "check the path, its permissions and the free space"
        return f"{where}{also}: {what} ({hint})" if where else f"{what} ({hint})"
    return str(exc)


def command(prog: str, interrupted: str = "") -> Callable[[Main], Main]:
    """Wrap ``main(argv) -> int`` so that errors end as described in the module docstring.

    ``interrupted`` is what to tell a user who pressed Ctrl+C, e.g. "rerun with --resume to continue"."""

    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None, *args, **kwargs) -> int:
            try:
                return main(argv, *args, **kwargs)
            except FaceKitError as exc:
                print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
                return 2
            except OSError as exc:
                print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                print(f"\n{prog}: interrupted (Ctrl+C): {KEPT}" + (f"; {interrupted}" if interrupted else ""),
                      file=sys.stderr)
                return 130
            except Exception:
                print(f"{prog}: {BUG_NOTE}", file=sys.stderr)
                raise

        run.__wrapped__ = main  # the undecorated main, for tests that want the raw exception
        return run

    return wrap


def at_least(option: str, value: float | None, minimum: float) -> None:
    """Refuse a numeric option below ``minimum`` (or NaN) with a ``UsageError`` naming it; None (unset) passes."""
    if value is not None and not value >= minimum:
        raise UsageError(f"{option} {value}: must be at least {minimum:g}")


def torch_device(option: str, value: str | None) -> str | None:
    """Refuse a ``--device`` torch cannot name ("nonsense") or this machine does not have ("cuda" without a
    GPU) with a ``UsageError``, before any model loads; None (the default: cuda when available) passes."""
    if value is None:
        return None
    import torch  # only the commands that take --device pay for it

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise UsageError(f"{option} {value!r}: not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{option} {value!r}: no CUDA GPU is available here; use cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"{option} {value!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"{option} {value!r}: only cpu and cuda devices are supported")
    return value
