"""The one check of what a refused command printed, for the tests that call a ``main(argv)`` in-process."""
from __future__ import annotations

from facedata.cli import BUG_NOTE


def one_error_line(rc: int, stderr: str, *words: str, code: int = 2, stdout: str = "") -> str:
    """Assert exit ``code``, no traceback or bug note in either stream, exactly one ``error:`` line on stderr
    holding every one of ``words``; return that line."""
    both = stdout + stderr
    assert rc == code, (rc, both[-3000:])
    assert "Traceback" not in both and BUG_NOTE not in both, both[-3000:]
    lines = [ln for ln in stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]
