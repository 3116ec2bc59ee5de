"""`python -m helpers.student`: student copies of the notebooks: the exercises stay, their solutions go. The
code is in helpers/publishing/student.py."""
import sys

from .publishing.student import main

if __name__ == "__main__":
    sys.exit(main())
