"""Where local state lives: .data/ at the repository root unless HAPEX_DATA_DIR says else."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir(configured: str | None = None) -> Path:
    """HAPEX_DATA_DIR as the launcher read it (LauncherSettings.data_dir), else .data/."""
    path = Path(configured).resolve() if configured else REPO_ROOT / ".data"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
