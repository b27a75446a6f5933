"""The command-line layer's access to the project's settings: ``config.py`` at the repository root.

Library code never reads ``config``; a command's ``main()`` reads it here and passes entries down. It is
not an installed module, so it is imported from the repository root whatever the working directory.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def project_config() -> ModuleType:
    """The repository's ``config`` module (paths, detector settings, recipes, ``MODELS``)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("config")
