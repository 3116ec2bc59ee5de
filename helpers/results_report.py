"""`python -m helpers.results_report`: the results-only report of a run: figures, tables and takeaways, no
code. The code is in helpers/publishing/results_report.py."""
import sys

from .publishing.results_report import main

if __name__ == "__main__":
    sys.exit(main())
