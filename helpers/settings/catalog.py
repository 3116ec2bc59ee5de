"""The map of the course: its notebooks in order, the stages, which notebook produces which stage,
and the Jupyter kernel the notebooks run in.  Every other module reads these lists from here."""
from __future__ import annotations

from .paths import PROJECT_ROOT

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = ["00_data_audit", "01_stage1_full_data", "02_stage2_without_class0",
             "03_stage3_balanced_finetune", "04_evaluation_tta", "05_feature_plots", "06_predict_submission"]
# The tag of each notebook's first code cell, which installs the package on a hosted kernel without it
# (helpers/publishing/links.py writes it; slides and the results page leave it out).
INSTALL_TAG = "hosted-install"
# Parameters that are not settings, and the notebooks that take them.
NOTEBOOK_PARAMETERS = {"comparison_csv": {"04_evaluation_tta"}, "images": {"06_predict_submission"}}

# The three-stage method's stage folders, in training order.
STAGES = ["stage1", "stage2", "stage3a", "stage3b"]
# Which notebook writes which stage folder, so an error can say what to run first.
PRODUCER = {"stage1": "01_stage1_full_data", "stage2": "02_stage2_without_class0",
            "stage3a": "03_stage3_balanced_finetune", "stage3b": "03_stage3_balanced_finetune"}

# The one Jupyter kernel: every notebook's metadata names it, the Makefile installs it
# (`python -m helpers.course --install-kernel`) and the runner executes the notebooks with it.
KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3"
KERNELSPEC = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
