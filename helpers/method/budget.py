"""Training budgets counted in optimizer steps, derived the same way for every method and data set.

A stage's steps are `stageX_steps` when the profile gives them (the `quick` and `smoke` profiles do,
so both built-in data sets get the same budget), else ceil(stageX_epochs x set size / batch_size)
(the `paper` profile: the fact sheet's epochs on the real data); both are then multiplied by
`budget_scale` (the budget sweep runs 1x, 2x and 4x).

Full-model steps and classifier-only steps are counted apart: the three-stage path spends
stage 1 + stage 2 + stage 3a steps on the whole model and stage 3b steps on the classifier alone.
The baselines get the same two numbers (plain CE, Balanced Softmax and LDAM-DRW: all full-model; cRT and
LWS, frozen-BN variants too: the plain-CE backbone plus 3b's classifier budget). An ablation that removes a stage gives that stage's
steps to the stage next to it (`ABLATIONS`), so every path spends the same number of steps.
"""
from __future__ import annotations

import math
import warnings

STAGES = ("stage1", "stage2", "stage3a", "stage3b")
FULL_MODEL_STAGES = ("stage1", "stage2", "stage3a")


def set_sizes(train_size: int, without_class0_size: int, settings) -> dict:
    """Images in each stage's training set (stage 3's balanced set has per_class x 10)."""
    return {"stage1": train_size, "stage2": without_class0_size,
            "stage3a": 10 * settings.stage3_per_class, "stage3b": 10 * settings.stage3_per_class}


def stage_steps(settings, stage: str, set_size: int) -> int:
    """Optimizer steps of one stage (see the module docstring)."""
    explicit = getattr(settings, f"{stage}_steps")
    steps = explicit if explicit > 0 else math.ceil(getattr(settings, f"{stage}_epochs") * set_size / settings.batch_size)
    return max(1, round(steps * settings.budget_scale))


def schedule(settings, sizes: dict) -> dict:
    """Steps of the four stages of the three-stage path."""
    return {stage: stage_steps(settings, stage, sizes[stage]) for stage in STAGES}


def budget_setting(stage: str, settings) -> str:
    """The setting a user raises to lengthen `stage`."""
    return f"{stage}_steps" if getattr(settings, f"{stage}_steps", 0) > 0 else f"{stage}_epochs (or {stage}_steps)"


def check_minimum(stage: str, steps: int, settings, raise_with: str | None = None) -> str | None:
    """One warning line if `steps` is below `min_stage_steps`; returns it (None when fine)."""
    if steps >= settings.min_stage_steps:
        return None
    message = (f"{stage}: {steps} optimizer steps is below min_stage_steps={settings.min_stage_steps}; the learning-rate "
               f"schedule and BatchNorm statistics will not settle: raise {raise_with or 'its budget'}")
    warnings.warn(message, stacklevel=2)
    return message


def matched(settings, sizes: dict) -> dict:
    """Every stage folder a method or ablation trains: its steps, what it trains, whose budgets make it.

    stage -> {"steps", "trainable" ("all" | "classifier"), "made_of": the three-stage stages whose steps
    it spends, "gets": the removed stage whose steps an ablation gives it ("" if none)}
    """
    s = schedule(settings, sizes)
    made_of = {"stage1": ["stage1"], "stage2": ["stage2"], "stage3a": ["stage3a"], "stage3b": ["stage3b"],
               "plain": list(FULL_MODEL_STAGES), "ldam_drw": list(FULL_MODEL_STAGES),
               "balanced_softmax": list(FULL_MODEL_STAGES),
               "crt": ["stage3b"], "lws": ["stage3b"], "crt_frozen_bn": ["stage3b"], "lws_frozen_bn": ["stage3b"],
               # ablations: a removed stage's steps go to its neighbour
               "stage3a_from1": ["stage3a", "stage2"], "stage3b_from1": ["stage3b"],
               "stage2_plus3a": ["stage2", "stage3a"], "stage3b_from2plus": ["stage3b"],
               "stage3a_plus3b": ["stage3a", "stage3b"]}
    gets = {"stage3a_from1": "stage2", "stage2_plus3a": "stage3a", "stage3a_plus3b": "stage3b"}
    classifier_only = {"stage3b", "crt", "lws", "crt_frozen_bn", "lws_frozen_bn", "stage3b_from1", "stage3b_from2plus"}
    return {stage: {"steps": sum(s[m] for m in parts), "trainable": "classifier" if stage in classifier_only else "all",
                    "made_of": parts, "gets": gets.get(stage, "")} for stage, parts in made_of.items()}


def path_steps(plan: dict, path) -> tuple[int, int]:
    """(full-model steps, classifier-only steps) along a path of stage folders."""
    full = sum(plan[st]["steps"] for st in path if plan[st]["trainable"] == "all")
    clf = sum(plan[st]["steps"] for st in path if plan[st]["trainable"] == "classifier")
    return full, clf
