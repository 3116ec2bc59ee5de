"""`python -m helpers.book`: the course site of a finished run, a static website with one page per executed
notebook (Sphinx + myst-nb). The code is in helpers/publishing/book.py."""
import sys

from .publishing.book import main

if __name__ == "__main__":
    sys.exit(main())
