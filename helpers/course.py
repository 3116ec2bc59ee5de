"""`python -m helpers.course`: the whole course, headless: every notebook in order into one run folder, then
its reports and slides. The code is in helpers/publishing/runner.py.

    python -m helpers.course [--profile quick] [--name NAME] [-p KEY VALUE ...] [--overwrite] [--only NOTEBOOK ...]
"""
import sys

from .publishing.runner import main

if __name__ == "__main__":
    sys.exit(main())
