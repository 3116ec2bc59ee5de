"""Where things live: the project root, the data cache and the run folders."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS = PROJECT_ROOT / "docs" / "results"       # the committed snapshots: comparisons, sweeps, benchmarks


def data_cache() -> Path:
    """Generated built-in data sets go here (ignored by git); SAR_DATA_DIR moves it."""
    return Path(os.environ.get("SAR_DATA_DIR", PROJECT_ROOT / "data"))


def resolve_path(path) -> Path:
    """Relative paths are relative to the project root, so notebooks and the CLI agree."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def git_commit() -> str | None:
    """The project's git commit (with "+dirty" if tracked files changed), or None outside a git checkout."""
    import subprocess
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
