"""What the long-running commands (compare, sweep) share: one line for a user's error, never a traceback."""
from __future__ import annotations

import sys

from .checkpoints import CheckpointError
from .config import SettingsError
from .data import DataError
from .runs import RunFolderError
from .training import TrainingDiverged

USER_ERRORS = (SettingsError, DataError, CheckpointError, RunFolderError, TrainingDiverged)


def guarded(work) -> int:
    """Run `work()`; a user's error prints `error: ...` (exit 2), Ctrl-C says how to continue (exit 130)."""
    try:
        work()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue where it stopped", file=sys.stderr)
        return 130
    return 0
