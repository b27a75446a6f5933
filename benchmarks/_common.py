"""Shared bits of the benchmark scripts: machine description and result recording."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# The repository root first: a script run from a clone finds that clone's config.py and packages even when the
# virtual environment's editable install (`make venv`) points at another copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads"


def record(name: str, payload: dict) -> Path:
    """Write results/<name>.json with the date and machine, and return its path."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"date": dt.date.today().isoformat(), "machine": machine(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    return path
