"""`python -m helpers.train` (or `torchrun --nproc-per-node N -m helpers.train`): train stage folders of a run
folder, in one process or data-parallel. The code is in helpers/evidence/train.py."""
import sys

from .evidence.train import main

if __name__ == "__main__":
    sys.exit(main())
