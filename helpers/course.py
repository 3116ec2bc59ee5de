"""The course's command line (kept so that `python -m helpers.course ...` works): see `helpers.runner`.

    python -m helpers.course [--profile quick] [--name NAME] [-p KEY VALUE ...] [--overwrite] [--only NOTEBOOK ...]
"""
import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
