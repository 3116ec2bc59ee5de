"""`python -m helpers.sweep`: the budget sweep: every method at 1x, 2x and 4x the profile's budget. The code
is in helpers/evidence/sweep.py."""
import sys

from .evidence.sweep import main

if __name__ == "__main__":
    sys.exit(main())
