"""`python -m helpers.compare`: the multi-seed comparison: every method, several seeds, mean and spread. The
code is in helpers/evidence/compare.py."""
import sys

from .evidence.compare import main

if __name__ == "__main__":
    sys.exit(main())
