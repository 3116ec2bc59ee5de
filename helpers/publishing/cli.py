"""What the project's commands share: one line for a user's error, never a traceback."""
from __future__ import annotations

import sys


def user_errors() -> tuple:
    """The training commands' user errors (imported here, so light tools need not load torch)."""
    from ..method.checkpoints import CheckpointError
    from ..settings.config import SettingsError
    from ..datasets.data import DataError
    from ..method.runs import RunFolderError
    from ..method.training import TrainingDiverged
    return SettingsError, DataError, CheckpointError, RunFolderError, TrainingDiverged


def guarded(work, errors=None, code: int = 2,
            interrupted: str = "interrupted: run the same command again to continue where it stopped") -> int:
    """Run `work()`; one of `errors` prints `error: ...` (exit `code`), Ctrl-C prints `interrupted` (exit 130)."""
    errors = user_errors() if errors is None else errors
    try:
        work()
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    return 0
