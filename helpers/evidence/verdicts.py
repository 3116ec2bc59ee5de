"""Verdicts on the fact sheet's claim (1) computed from a multi-seed table, whichever way they fall.

Claim (1): three-stage training beats the best two-stage method. The best two-stage method is the
one with the best *validation* score (tuning on test would flatter it); the verdict compares test
balanced top-1 means and states the gap in pooled standard deviations:
  held            three-stage ahead by at least one pooled standard deviation;
  not held        the two-stage method ahead by at least one;
  inconclusive    within one standard deviation;
  not evidence    either side under-trained (validation balanced top-1 under twice chance), one seed, or a
                  test set that measures fewer than all 10 classes (the tail would be missing from it).
"""
from __future__ import annotations

import math

import pandas as pd

from .experiments import best_two_stage, pooled_gap

SEED_CLAIM = {"three_stage_top1": 0.2234, "two_stage_top1": 0.2109}


def claim1(table: pd.DataFrame) -> dict:
    """The verdict on claim (1) from an `experiments.aggregate` table."""
    t = table.set_index("method")
    rival = best_two_stage(table)
    a, b = t.loc["three-stage"], t.loc[rival]
    gap, sds = pooled_gap(a["balanced_top1_mean"], a["balanced_top1_std"], b["balanced_top1_mean"], b["balanced_top1_std"])
    seeds = int(min(a["seeds"], b["seeds"]))
    measured = int(t["classes_measured_mean"].min()) if "classes_measured_mean" in t else 10
    if measured < 10:
        verdict, why = "not evidence", f"the test set measures only {measured} of 10 classes"
    elif bool(a["under_trained"]) or bool(b["under_trained"]):
        who = " and ".join(n for n, r in (("three-stage", a), (rival, b)) if bool(r["under_trained"]))
        verdict, why = "not evidence", f"{who} under-trained (validation balanced top-1 under twice chance)"
    elif seeds < 2 or math.isnan(sds):
        verdict, why = "not evidence", "fewer than two seeds: no spread to judge the gap by"
    elif sds >= 1:
        verdict, why = "held", f"three-stage ahead by {sds:.1f} pooled standard deviations"
    elif sds <= -1:
        verdict, why = "not held", f"{rival} ahead by {-sds:.1f} pooled standard deviations"
    else:
        verdict, why = "inconclusive", f"the gap is {abs(sds):.1f} pooled standard deviations"
    return {"verdict": verdict, "why": why, "rival": rival, "seeds": seeds, "gap": gap, "gap_in_sd": sds,
            "three_stage": f"{100 * a['balanced_top1_mean']:.1f} ± {100 * a['balanced_top1_std']:.1f} %",
            "rival_score": f"{100 * b['balanced_top1_mean']:.1f} ± {100 * b['balanced_top1_std']:.1f} %"}


def sentence(v: dict) -> str:
    return (f"three-stage {v['three_stage']} vs the best two-stage method by validation, {v['rival']}, "
            f"{v['rival_score']} ({v['seeds']} seed{'' if v['seeds'] == 1 else 's'}): **{v['verdict']}**, {v['why']}.")


def sweep_verdicts(tables: dict) -> pd.DataFrame:
    """Claim (1) at every budget of a sweep ({scale: aggregate table}); `flips` says whether it changes."""
    return pd.DataFrame([{"budget": f"{scale:g}x", **claim1(t)} for scale, t in sorted(tables.items())])


def flips(sweep: pd.DataFrame) -> bool:
    """Does the verdict change between the budgets that decided it (held / not held)?"""
    return sweep[sweep["verdict"].isin(["held", "not held"])]["verdict"].nunique() > 1


def sweep_note(sweep: pd.DataFrame) -> str:
    """One line for the claims table: the verdict at every budget and whether it flips."""
    per_budget = ", ".join(f"{r['budget']} {r['verdict']}" for _, r in sweep.iterrows())
    return f"budget sweep: {per_budget}; the verdict {'flips' if flips(sweep) else 'does not flip'}"
