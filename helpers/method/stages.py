"""The three stages of the method, each a short function over the generic training loop.

Every stage reads its starting model from the run folder (the previous stage's checkpoint) and
writes its own folder, so a notebook can be re-run alone once its predecessors have run.
`source`/`stage` are arguments so that the ablations reuse the same code on other paths
(e.g. stage 1 -> stage 3 without stage 2). How many optimizer steps each stage folder gets is
decided in one place, `helpers.method.budget.matched`.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

from . import budget, classifier_lr
from .checkpoints import load_stage_model
from .model import shake_shake_26_2x32d
from .samplers import WITHOUT_CLASS0, balanced, without_class0
from .training import INIT, model_rng, train_stage

PLAIN_HEAD = {"in_channels": 1, "normed_classifier": False, "weight_scaling": False}   # what the stages build on
GROW_9_TO_10 = {new - 1: new for new in range(1, 10)}   # 9-way row i (class i+1) -> 10-way row i+1


def plan(bundle, settings) -> dict:
    """Steps and trainable part of every stage folder of this run (see helpers.method.budget.matched)."""
    sizes = budget.set_sizes(len(bundle.train), len(without_class0(bundle.train)), settings)
    return budget.matched(settings, sizes)


def steps_of(bundle, settings, stage: str) -> int:
    """A stage folder's steps; warns in one line when they are below `min_stage_steps`."""
    entry = plan(bundle, settings)[stage]
    budget.check_minimum(stage, entry["steps"], settings, budget.budget_setting(entry["made_of"][0], settings))
    return entry["steps"]


def stage1(bundle, settings, run_dir, progress=True):
    """Stage 1: Shake-Shake-26 2x32d from scratch on the whole long-tailed set."""
    with model_rng(settings.seed, INIT):
        model = shake_shake_26_2x32d(in_channels=1, num_classes=10)
    history = train_stage(model, bundle.train, stage="stage1", run_dir=run_dir, settings=settings,
                          steps=steps_of(bundle, settings, "stage1"), lr=settings.stage1_lr, val_set=bundle.val,
                          progress=progress)
    return model, history


def stage2(bundle, settings, run_dir, source="stage1", stage="stage2", progress=True):
    """Stage 2: from stage 1, class 0 removed, a 9-way head (rows of classes 1-9 kept from stage 1)."""
    model = load_stage_model(run_dir, source, num_classes=10, **PLAIN_HEAD)
    with model_rng(settings.seed, stage):
        model.remap_head(9, {c: c - 1 for c in WITHOUT_CLASS0})
    history = train_stage(model, without_class0(bundle.train), stage=stage, run_dir=run_dir, settings=settings,
                          steps=steps_of(bundle, settings, stage), lr=settings.stage2_lr,
                          val_set=without_class0(bundle.val), progress=progress)
    return model, history


def start_from(run_dir, source: str, seed: int = 0, stage: str = ""):
    """A 10-way model from `source`: a 9-way (stage-2) model has its head grown, keeping the 9 trained rows
    (the new row drawn from (seed, stage): helpers.method.training.model_rng)."""
    model = load_stage_model(run_dir, source, num_classes=9 if source.startswith("stage2") else 10, **PLAIN_HEAD)
    if model.num_classes == 9:
        with model_rng(seed, stage or source):
            model.remap_head(10, GROW_9_TO_10)
    return model


def balanced_set(bundle, settings):
    """The stage-3 class-balanced set (same draw for 3a and 3b, from the run's seed)."""
    return balanced(bundle.train, settings.stage3_per_class, seed=settings.seed)


def stage3a(bundle, settings, run_dir, source="stage2", stage="stage3a", progress=True):
    """Stage 3a: fine-tune the whole model on the class-balanced set, head grown 9 -> 10."""
    model = start_from(run_dir, source, settings.seed, stage)
    history = train_stage(model, balanced_set(bundle, settings), stage=stage, run_dir=run_dir, settings=settings,
                          steps=steps_of(bundle, settings, stage), lr=settings.stage3a_lr, val_set=bundle.val,
                          progress=progress)
    return model, history


def stage3b(bundle, settings, run_dir, source="stage3a", stage="stage3b", progress=True):
    """Stage 3b: backbone frozen (BatchNorm statistics too), classifier re-trained on the balanced set, at the
    learning rate of `classifier_lr_grid` that does best on validation's tuning half (helpers.method.classifier_lr)."""
    start = start_from(run_dir, source, settings.seed, stage)   # loaded once (a missing one: its one-line error)
    steps, train_set = steps_of(bundle, settings, stage), balanced_set(bundle, settings)

    def one(folder, lr):
        train_stage(copy.deepcopy(start), train_set, stage=folder, run_dir=run_dir, settings=settings, steps=steps, lr=lr,
                    trainable="classifier", val_set=bundle.val, progress=progress)
    classifier_lr.train_tuned(bundle, settings, run_dir, stage, one, progress)
    model = load_stage_model(run_dir, stage)
    return model, pd.read_csv(Path(run_dir) / stage / "metrics.csv")
