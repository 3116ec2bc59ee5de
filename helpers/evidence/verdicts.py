"""Verdicts on the fact sheet's claim (1) computed from a multi-seed table, whichever way they fall.

Claim (1): three-stage training beats the best two-stage method. The best two-stage method is the
one with the best *validation* score (never chosen on test). The verdict is a paired test over the
seeds: the per-seed difference three-stage - rival in test balanced top-1, its mean, its 95%
t-interval (df = seeds - 1, scipy.stats.ttest_rel) and p:
  held            the 95% interval lies above 0;
  not held        the 95% interval lies below 0;
  inconclusive    the interval contains 0: the seeds cannot tell the methods apart;
  not evidence    either side under-trained (validation balanced top-1 under twice chance), fewer than
                  two seeds, a table without the paired statistics, or a test set that measures fewer
                  than all 10 classes (the tail would be missing from it).
Where one table states several verdicts (the budgets of a sweep), their p values are Holm-corrected
and a verdict is held / not held only when its corrected p is under 0.05.
"""
from __future__ import annotations

import math

import pandas as pd

from .experiments import best_two_stage
from .statistics import holm, paired, seeds_to_resolve  # noqa: F401  (paired: the verdicts' test, importable from here)

SEED_CLAIM = {"three_stage_top1": 0.2234, "two_stage_top1": 0.2109}
ALPHA = 0.05


def decide(gap: float, lo: float, hi: float, p: float, corrected: tuple | None = None) -> tuple[str, str]:
    """(verdict, why) from a paired difference in fractions: held / not held / inconclusive.

    `corrected` = (adjusted p, how many verdicts share the table): the decision then also needs the
    adjusted p under ALPHA.
    """
    stated = f"gap {100 * gap:+.1f} pp, 95% CI [{100 * lo:+.1f}, {100 * hi:+.1f}], p = {p:.3f}"
    q = p
    if corrected is not None:
        q = corrected[0]
        stated += f", Holm-corrected over {corrected[1]} verdicts p = {q:.3f}"
    if lo > 0 and q < ALPHA:
        return "held", stated
    if hi < 0 and q < ALPHA:
        return "not held", stated
    return "inconclusive", stated + (": the interval contains 0" if lo <= 0 <= hi else ": not significant after the correction")


def claim1(table: pd.DataFrame) -> dict:
    """The verdict on claim (1) from an `experiments.aggregate` table (with its paired columns)."""
    t = table.set_index("method")
    rival = best_two_stage(table)
    a, b = t.loc["three-stage"], t.loc[rival]
    seeds = int(min(a["seeds"], b["seeds"]))
    gap, lo, hi, p = (float(b.get(f"paired_{k}", float("nan"))) for k in ("gap", "lo", "hi", "p"))
    measured = int(t["classes_measured_mean"].min()) if "classes_measured_mean" in t else 10
    if measured < 10:
        verdict, why = "not evidence", f"the test set measures only {measured} of 10 classes"
    elif bool(a["under_trained"]) or bool(b["under_trained"]):
        who = " and ".join(n for n, r in (("three-stage", a), (rival, b)) if bool(r["under_trained"]))
        verdict, why = "not evidence", f"{who} under-trained (validation balanced top-1 under twice chance)"
    elif seeds < 2:
        verdict, why = "not evidence", "fewer than two seeds: no spread to judge the gap by"
    elif "paired_p" not in t:
        verdict, why = "not evidence", "the table has no paired per-seed statistics (re-run python -m helpers.compare)"
    elif math.isnan(p):
        verdict, why = "inconclusive", f"gap {100 * gap:+.1f} pp with no spread over {seeds} seeds: no interval"
    else:
        verdict, why = decide(gap, lo, hi, p)
        n = seeds_to_resolve(gap, lo, hi, seeds) if verdict == "inconclusive" else None
        if n is not None and n > seeds:
            why += (f"; were the gap and its seed-to-seed spread to stay as measured, about {n} seeds would "
                    "put the interval clear of 0")
    return {"verdict": verdict, "why": why, "rival": rival, "seeds": seeds, "gap": gap, "lo": lo, "hi": hi, "p": p,
            "three_stage": f"{100 * a['balanced_top1_mean']:.1f} ± {100 * a['balanced_top1_std']:.1f} %",
            "rival_score": f"{100 * b['balanced_top1_mean']:.1f} ± {100 * b['balanced_top1_std']:.1f} %"}


def best_of_all(table: pd.DataFrame) -> dict:
    """Is three-stage better than *every* other method of the table (kind "method"), not only the two-stage
    ones? Each paired gap is decided with Holm's correction across the comparisons: held when all are
    held, not held when one is not held, else inconclusive; "not evidence" as for claim (1)."""
    t = table.set_index("method")
    others = [m for m in t.index if m != "three-stage" and t.loc[m].get("kind", "method") == "method"]
    if "paired_p" not in t or int(t.loc["three-stage", "seeds"]) < 2 or not others:
        return {"verdict": "not evidence", "why": "no paired multi-seed statistics", "rows": []}
    ps = [float(t.loc[m, "paired_p"]) for m in others]
    rows = []
    for m, q in zip(others, holm(ps)):
        r = t.loc[m]
        gap, lo, hi, p = (float(r[f"paired_{k}"]) for k in ("gap", "lo", "hi", "p"))
        verdict = "inconclusive" if math.isnan(p) else decide(gap, lo, hi, p, corrected=(q, len(others)))[0]
        rows.append({"method": m, "verdict": verdict, "gap": gap, "lo": lo, "hi": hi, "p": p, "p_holm": q})
    said = [r["verdict"] for r in rows]
    verdict = "not held" if "not held" in said else ("held" if all(v == "held" for v in said) else "inconclusive")
    weakest = min(rows, key=lambda r: r["lo"] if not math.isnan(r["lo"]) else -1)
    why = (f"against {len(rows)} methods, Holm-corrected; the hardest rival is {weakest['method']}: gap "
           f"{100 * weakest['gap']:+.1f} pp [{100 * weakest['lo']:+.1f}, {100 * weakest['hi']:+.1f}], "
           f"p {weakest['p']:.3f} (Holm {weakest['p_holm']:.3f})")
    return {"verdict": verdict, "why": why, "rows": rows}


def sentence(v: dict) -> str:
    return (f"three-stage {v['three_stage']} vs the best two-stage method by validation, {v['rival']}, "
            f"{v['rival_score']} ({v['seeds']} seed{'' if v['seeds'] == 1 else 's'}): **{v['verdict']}**, {v['why']}.")


def sweep_verdicts(tables: dict) -> pd.DataFrame:
    """Claim (1) at every budget of a sweep ({scale: aggregate table}), Holm-corrected across the budgets
    (column `p_holm`); `flips` says whether the verdict changes."""
    rows = [{"budget": f"{scale:g}x", **claim1(t)} for scale, t in sorted(tables.items())]
    tested = [i for i, r in enumerate(rows) if r["verdict"] != "not evidence" and not math.isnan(r["p"])]
    adjusted = holm([rows[i]["p"] for i in tested])
    for r in rows:
        r["p_holm"] = float("nan")
    for i, q in zip(tested, adjusted):
        r = rows[i]
        r["p_holm"] = q
        r["verdict"], r["why"] = decide(r["gap"], r["lo"], r["hi"], r["p"], corrected=(q, len(tested)))
    return pd.DataFrame(rows)


def headline(sweep: pd.DataFrame) -> str:
    """Claim (1) at the largest budget measured: the verdict to quote. The 1x verdict is a measure of how fast
    the methods converge, said so when it differs."""
    last, first = sweep.iloc[-1], sweep.iloc[0]
    text = f"at {last['budget']}, the largest budget measured: **{last['verdict']}** against {last['rival']}, {last['why']}"
    if len(sweep) > 1 and first["verdict"] != last["verdict"]:
        text += (f". At {first['budget']} it is {first['verdict']}: the gap there measures how fast the methods "
                 "converge, not where they end")
    return text + "."


def flips(sweep: pd.DataFrame) -> bool:
    """Does the verdict change between the budgets that decided it (held / not held)?"""
    return sweep[sweep["verdict"].isin(["held", "not held"])]["verdict"].nunique() > 1


def sweep_note(sweep: pd.DataFrame) -> str:
    """One line for the claims table: the verdict at every budget and whether it flips."""
    per_budget = ", ".join(f"{r['budget']} {r['verdict']}" for _, r in sweep.iterrows())
    return f"budget sweep: {per_budget}; the verdict {'flips' if flips(sweep) else 'does not flip'}"
