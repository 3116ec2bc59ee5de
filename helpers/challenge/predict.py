"""Predict classes of unlabeled chips with a finished run and write a submission:

    python -m helpers.predict --run runs/NAME --images /path/to/test_images [--out DIR] [--device cpu]

writes DIR/results.csv (image_id,class_id), DIR/probabilities.csv and DIR/submission.zip
(default DIR: <run>/submission).  See helpers/challenge/submission.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..settings.paths import resolve_path


def _path(text: str) -> Path:
    """As typed: relative to the current folder if it exists there, else to the project root."""
    here = Path(text).expanduser()
    return here.resolve() if here.exists() else resolve_path(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.predict",
                                     description="Predict unlabeled chips with a finished run; write a submission.")
    parser.add_argument("--run", required=True, help="a finished run folder, e.g. runs/quick")
    parser.add_argument("--images", required=True, help="a flat folder of chips, e.g. <archive>/test_images")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/submission)")
    parser.add_argument("--device", default=None, help="override the run's device (auto, cpu, cuda, mps)")
    args = parser.parse_args(argv)

    from ..method.checkpoints import CheckpointError
    from ..settings.config import SettingsError
    from ..datasets.data import DataError
    from .submission import SubmissionError, predict_folder
    try:
        result = predict_folder(_path(args.run), _path(args.images),
                                out=None if args.out is None else Path(args.out).expanduser().resolve(),
                                device=args.device)
    except (SubmissionError, CheckpointError, DataError, SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for note in result.notes:
        print("note:", note)
    shares = " ".join(f"{s:.2f}" for s in result.shares)
    print(f"{len(result.results)} chips predicted; predicted-class shares {shares}; "
          f"distance from uniform {result.distance_from_uniform:.3f}")
    for name, path in result.files.items():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
