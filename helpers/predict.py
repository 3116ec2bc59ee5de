"""`python -m helpers.predict`: predict a folder of unlabeled chips with a finished run and write the
submission. The code is in helpers/challenge/predict.py."""
import sys

from .challenge.predict import main

if __name__ == "__main__":
    sys.exit(main())
