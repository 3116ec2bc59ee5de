"""The learning rate of every classifier-only stage, chosen from one grid on the tuning half of validation.

Stage 3b of the three-stage path, cRT and LWS (and their variants) train only a classifier on a
fixed backbone, and the right learning rate for that depends on the data and the budget: Kang et al.
use 0.2 at batch 512, the fact sheet's 3b 0.01.  So that no method gets a tuned setting the others
lack, each of them trains once per learning rate of `classifier_lr_grid` (candidate folders
`<stage>_lr<value>`), each candidate is scored on the *tuning* half of validation
(helpers/method/validation_halves.py; the ranking half and test are never looked at), and the best
becomes the stage folder itself, with `tuning.json` beside it saying what was tried and what won
(the smallest learning rate on a tie).  An empty grid trains the stage once at `stage3b_lr`.

The candidates are tuning, not budget: the stage folder spends the matched classifier-only steps once,
as a tuned tau costs nothing in the budget either.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import distributed, metrics, predictions
from .checkpoints import is_complete
from .validation_halves import halves

TUNING = "tuning.json"


def grid(settings) -> list[float]:
    """The learning rates a classifier-only stage tries: `classifier_lr_grid`, else `stage3b_lr` alone."""
    return sorted(set(settings.classifier_lr_grid)) or [settings.stage3b_lr]


def candidate(stage: str, lr: float) -> str:
    return f"{stage}_lr{lr:g}"


def tuning_score(bundle, settings, run_dir, stage: str) -> float:
    """Balanced top-1 of a stage folder's model on the tuning half of validation, with the run's TTA."""
    tune, _ = halves(bundle.val.targets.numpy(), settings.data_seed)
    probs = predictions.probabilities(run_dir, stage, bundle.val, settings, settings.tta_views, "levels", bundle.hflip)
    return metrics.summary(bundle.val.targets.numpy()[tune], probs[tune].argmax(1).numpy())["balanced_top1"]


def _adopt(run_dir, source: str, stage: str) -> None:
    """Make the candidate folder `source` the stage folder `stage` (hard links where the disk allows)."""
    src, dst = Path(run_dir) / source, Path(run_dir) / stage
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, tmp, copy_function=link)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.replace(dst)


def train_tuned(bundle, settings, run_dir, stage: str, train_one, progress: bool = True) -> float:
    """Train the classifier-only `stage` at every learning rate of the grid and keep the best (see the module
    docstring); `train_one(folder, lr)` trains one candidate folder.  Returns the learning rate kept."""
    lrs = grid(settings)
    record = Path(run_dir) / stage / TUNING
    if len(lrs) > 1 and not len(halves(bundle.val.targets.numpy(), settings.data_seed)[0]):
        lrs = [settings.stage3b_lr]           # one validation chip a class: no tuning half to choose on
        if progress:
            print(f"{stage}: validation has no tuning half (one chip a class): stage3b_lr {lrs[0]:g}, untuned")
    if len(lrs) == 1:
        train_one(stage, lrs[0])
        return lrs[0]
    if record.is_file() and is_complete(run_dir, stage):
        kept = json.loads(record.read_text())
        if kept.get("grid") == lrs:
            return float(kept["lr"])
    scores = {}
    for lr in lrs:
        train_one(candidate(stage, lr), lr)
        scores[lr] = tuning_score(bundle, settings, run_dir, candidate(stage, lr))
    best = min(lr for lr, v in scores.items() if v == max(scores.values()))
    group = distributed.active()            # under torchrun only rank 0 writes; the others wait for it
    if group is not None and not group.main:
        group.barrier()
        return best
    _adopt(run_dir, candidate(stage, best), stage)
    record.write_text(json.dumps({"stage": stage, "grid": lrs, "tuning_half_balanced_top1": {f"{k:g}": v for k, v in scores.items()},
                                  "lr": best, "chosen_on": "the tuning half of validation"}, indent=2))
    if group is not None:
        group.barrier()
    if progress:
        print(f"{stage}: classifier learning rate {best:g} chosen on validation's tuning half "
              f"({', '.join(f'{k:g}: {v:.3f}' for k, v in scores.items())})")
    return best


def chosen(run_dir, stage: str) -> float | None:
    """The learning rate a tuned stage folder kept (None: not tuned, or not yet)."""
    record = Path(run_dir) / stage / TUNING
    return float(json.loads(record.read_text())["lr"]) if record.is_file() else None
