"""`python -m helpers.score results.csv reference.csv`: a submission scored as PBVS 2023-2025 score it
(accuracy, balanced accuracy, OOD AUROC, FPR at 95 % TPR, the 0.75/0.25 total). The code is in
helpers/challenge/score.py."""
import sys

from .challenge.score import main

if __name__ == "__main__":
    sys.exit(main())
