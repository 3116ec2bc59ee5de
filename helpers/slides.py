"""`python -m helpers.slides`: reveal.js slide decks from a finished run, one self-contained HTML file per
notebook. The code is in helpers/publishing/slides.py."""
import sys

from .publishing.slides import main

if __name__ == "__main__":
    sys.exit(main())
