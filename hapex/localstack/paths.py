"""Where local state lives: .data/ at the repository root unless HAPEX_DATA_DIR says else."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    configured = os.environ.get("HAPEX_DATA_DIR")
    path = Path(configured).resolve() if configured else REPO_ROOT / ".data"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
