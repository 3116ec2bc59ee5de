"""The budget sweep: every method at 1x, 2x and 4x the profile's budget, so a verdict that only holds
at one schedule shows itself, and the claim is judged where the methods have converged.

    python -m helpers.sweep --profile quick --data digits-lt            # 1x: the profile's 5 seeds; 2x, 4x: 0 1 2
    python -m helpers.sweep --profile quick --data synthetic-sar --scales 1 2
    python -m helpers.sweep --profile quick --data digits-lt --until-converged --max-scale 16
    python -m helpers.sweep --profile quick --data digits-lt --report-only --from-snapshots   # from docs/results/

A budget has *converged* when no method gains more than CONVERGED (1 point of balanced top-1, mean over
seeds) from the budget before it; `--until-converged` keeps doubling the budget until it has, or until
`--max-scale`. The report says where the sweep stopped, which method still gained and how much, and what
the next budget would cost (the measured training time of the last one, doubled). The headline verdict
is the one at the largest budget measured; the 1x verdict measures how fast the methods converge.

Each budget is a `helpers.compare` run (its own folder, `compare-<profile>-<data>-x<scale>`; the 1x
folder is the ordinary comparison, ablations included), so an interrupted sweep continues where it
stopped when re-run. Writes runs/sweep-<profile>-<data>/sweep.csv, verdicts.csv, sweep.md and
figures/budget_sweep.png. With `--executor local --jobs N` or `--executor slurm` every (budget, seed) of
every budget is one job, all submitted at once (helpers/evidence/executors.py); the tables follow.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from ..publishing import cli
from . import compare, executors
from ..figures import evidence_plots
from . import experiments, verdicts
from ..method import runs
from ..settings.paths import RESULTS, resolve_path

SCALES = (1.0, 2.0, 4.0)
SEEDS_ABOVE = (0, 1, 2)          # seeds of every budget above 1x (1x is the ordinary comparison: the profile's seeds)
CONVERGED = 0.01                 # no method gains more than this (balanced top-1, mean) from the budget before
SNAPSHOTS = RESULTS              # committed per-seed tables: compare-<profile>-<data>[-x<scale>]-per_seed.csv


def folder(profile: str, data: str) -> Path:
    return resolve_path(Path("runs") / f"sweep-{profile}-{compare.data_label(data)}")


def scale_of(tag: str) -> float | None:
    """The budget a comparison folder's suffix after its 1x name names: "" 1x, "-x2" 2x; None for any
    other suffix (another input size, another data set whose name starts alike)."""
    if not tag:
        return 1.0
    return float(tag[2:]) if tag.startswith("-x") and tag[2:].replace(".", "", 1).isdigit() else None


def measured_scales(profile: str, data: str) -> list[float]:
    """Every budget of `data` with a comparison folder: 1x and each compare-...-x<scale>."""
    base = compare.folder(profile, data)
    found = [1.0] + [scale_of(p.name[len(base.name):]) for p in base.parent.glob(base.name + "-x*")]
    return sorted(set(found) - {None})


def restore(profile: str, data: str) -> list[float]:
    """The budgets whose comparison is committed as a per-seed table (SNAPSHOTS) but missing from runs/:
    their folders' per_seed.csv and comparison.csv are written from it, so that the report can be drawn
    again on a fresh clone. Without the seeds' test predictions the bootstrap columns stay out; the
    verdicts do not use them. Returns the budgets restored."""
    base, done = compare.folder_name(profile, data), []
    for table in sorted(SNAPSHOTS.glob(f"{base}*-per_seed.csv")):
        scale = scale_of(table.name[len(base):-len("-per_seed.csv")])
        if scale is None:
            continue
        out = compare.folder(profile, data, scale)
        if (out / "comparison.csv").is_file():
            continue
        out.mkdir(parents=True, exist_ok=True)
        per_seed = pd.read_csv(table)
        per_seed.to_csv(out / "per_seed.csv", index=False)
        experiments.aggregate(per_seed).to_csv(out / "comparison.csv", index=False)
        done.append(scale)
    return done


def collect(profile: str, data: str, scales=None) -> dict:
    """{scale: comparison table} of the budgets whose comparison exists (scales None: every one measured)."""
    out = {}
    for scale in scales or measured_scales(profile, data):
        path = compare.folder(profile, data, scale) / "comparison.csv"
        if path.is_file():
            out[scale] = pd.read_csv(path)
    return out


def long_table(tables: dict) -> pd.DataFrame:
    """The methods' rows of every budget, one table (method, budget_scale, ...)."""
    methods = experiments.method_names(("method",))
    rows = [t[t["method"].isin(methods)].assign(budget_scale=scale) for scale, t in sorted(tables.items())]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def convergence(long: pd.DataFrame) -> pd.DataFrame:
    """Per budget after the first: the largest gain of any method from the budget before it (mean balanced
    top-1), which method, and whether the budget has converged (that gain at most CONVERGED)."""
    wide = long.pivot_table(index="budget_scale", columns="method", values="balanced_top1_mean").sort_index()
    rows = []
    for before, scale in zip(wide.index, wide.index[1:]):
        gain = (wide.loc[scale] - wide.loc[before]).dropna()
        rows.append({"budget": f"{scale:g}x", "from": f"{before:g}x", "largest_gain": float(gain.max()),
                     "method": str(gain.idxmax()), "converged": bool(gain.max() <= CONVERGED)})
    return pd.DataFrame(rows, columns=["budget", "from", "largest_gain", "method", "converged"])


def where_stopped(long: pd.DataFrame) -> str:
    """One sentence: the budget where the sweep converged, or where it stopped without and what the next would cost."""
    conv = convergence(long)
    if not len(conv):
        return "one budget only: convergence not measured"
    done = conv[conv["converged"]]
    if len(done):
        first = done.iloc[0]
        return (f"converged at {first['budget']}: no method gains more than {100 * CONVERGED:.0f} point from "
                f"{first['from']} (largest gain {100 * first['largest_gain']:+.1f} pp, {first['method']})")
    last = conv.iloc[-1]
    scale = long["budget_scale"].max()
    cost = long[long["budget_scale"] == scale]
    seconds = float(cost["train_seconds_mean"].sum()) if "train_seconds_mean" in cost else float("nan")
    seeds = int(cost["seeds"].max()) if "seeds" in cost else 0
    return (f"**not converged** at {last['budget']}, where the sweep stopped: {last['method']} still gained "
            f"{100 * last['largest_gain']:+.1f} pp from {last['from']}; the next budget ({2 * scale:g}x) would cost about "
            f"{2 * seconds * seeds / 3600:.1f} h of training on this machine at most ({seeds} seeds, twice the {seconds:.0f} s "
            f"a seed the methods' paths took at {scale:g}x, a stage that paths share counted once per path)")


def markdown(long: pd.DataFrame, verdict_table: pd.DataFrame) -> str:
    lines = compare.method_pivot(long, "budget_scale", lambda s: f"{s:g}x")
    conv = convergence(long)
    if len(conv):
        lines += ["", "| budget | largest gain from the budget before (pp) | by | converged (gain <= 1 pp) |",
                  "|---|---|---|---|"]
        lines += [f"| {r['budget']} | {100 * r['largest_gain']:+.1f} | {r['method']} | {'yes' if r['converged'] else 'no'} |"
                  for _, r in conv.iterrows()]
    lines += ["", f"Convergence: {where_stopped(long)}."]
    lines += ["", "| budget | claim (1) verdict | why | best two-stage (by validation's ranking half) |", "|---|---|---|---|"]
    lines += [f"| {r['budget']} | {r['verdict']} | {r['why']} | {r['rival']} |" for _, r in verdict_table.iterrows()]
    flips = verdicts.flips(verdict_table)
    lines += ["", f"The verdict {'**flips** with the budget' if flips else 'does not flip between decided budgets'}.",
              "", f"Headline: {verdicts.headline(verdict_table)}"]
    return "\n".join(lines) + "\n"


def report(profile: str, data: str, scales=None):
    """Write the sweep's tables and figure from whatever budgets exist; returns (long table, verdicts)."""
    tables = collect(profile, data, scales)
    if not tables:
        raise runs.RunFolderError(f"no comparison for any budget of {data} ({profile}): run python -m helpers.sweep "
                                  f"--profile {profile} --data {data}")
    out = folder(profile, data)
    out.mkdir(parents=True, exist_ok=True)
    long, verdict_table = long_table(tables), verdicts.sweep_verdicts(tables)
    long.to_csv(out / "sweep.csv", index=False)
    verdict_table.to_csv(out / "verdicts.csv", index=False)
    (out / "sweep.md").write_text(f"# Budget sweep: {data}, profile {profile}\n\n" + markdown(long, verdict_table))
    evidence_plots.budget_sweep(long, out, title=f"Balanced top-1 against the budget ({data}, {profile} profile)")
    return long, verdict_table


def run(profile: str, data: str, scales=SCALES, seeds_1x=None, seeds_above=SEEDS_ABOVE, overrides=None,
        executor: str = "local", jobs: int | None = None, slurm: dict | None = None, until_converged: bool = False,
        max_scale: float = 16.0):
    t0 = time.time()
    from ..settings import config
    seeds_1x = list(seeds_1x or config.resolve(profile, data=data, **(overrides or {})).seeds)
    seeds_of = lambda scale: list(seeds_1x if scale == 1 else seeds_above)
    budget = lambda scale: {**(overrides or {}), "budget_scale": scale}
    if executor != "local" or (jobs or 1) > 1:   # every budget's unfinished seeds at once; each budget's tables below
        todo = [job for scale in scales for job in compare.pending_jobs(
            profile, data, seeds_of(scale), compare.root_of(profile, data, None, budget(scale)), budget(scale), scale == 1)]
        executors.run_jobs(todo, executor, jobs, folder(profile, data) / "jobs", slurm)
    for scale in scales:
        seeds = seeds_of(scale)
        print(f"==== budget {scale:g}x, seeds {seeds}, {time.time() - t0:.0f} s so far", flush=True)
        compare.run(profile, data, seeds, None, False, budget(scale), ablations=scale == 1, progress=False,
                    executor=executor, jobs=jobs, slurm=slurm)
    scales = list(scales)
    while until_converged and 2 * max(scales) <= max_scale:
        long = long_table(collect(profile, data, scales))
        conv = convergence(long)
        if len(conv) and conv["converged"].any():
            break
        scale = 2 * max(scales)
        print(f"==== not converged yet; budget {scale:g}x, seeds {list(seeds_above)}, {time.time() - t0:.0f} s so far", flush=True)
        compare.run(profile, data, list(seeds_above), None, False, budget(scale), ablations=False, progress=False,
                    executor=executor, jobs=jobs, slurm=slurm)
        scales.append(scale)
    long, verdict_table = report(profile, data, scales)
    print((folder(profile, data) / "sweep.md").read_text())
    print(f"sweep written to {folder(profile, data)} ({time.time() - t0:.0f} s)")
    return long, verdict_table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", default="synthetic-sar")
    p.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    p.add_argument("--seeds-1x", type=int, nargs="+", help="seeds at 1x (default: the profile's seeds)")
    p.add_argument("--seeds-above", type=int, nargs="+", default=list(SEEDS_ABOVE))
    p.add_argument("--until-converged", action="store_true", help="double the budget until no method gains over 1 point")
    p.add_argument("--max-scale", type=float, default=16.0, help="the largest budget --until-converged may reach")
    p.add_argument("--report-only", action="store_true", help="only redraw the tables and figure from every finished budget")
    p.add_argument("--from-snapshots", action="store_true",
                   help="with --report-only: first restore the budgets committed in docs/results/ that runs/ lacks")
    executors.add_arguments(p)
    a = p.parse_args(argv)
    if a.report_only:
        if a.from_snapshots:
            print(f"restored from docs/results/: {', '.join(f'{x:g}x' for x in restore(a.profile, a.data)) or 'nothing missing'}")
        return cli.guarded(lambda: report(a.profile, a.data))
    return cli.guarded(lambda: run(a.profile, a.data, a.scales, a.seeds_1x, a.seeds_above, **executors.options(a),
                                   until_converged=a.until_converged, max_scale=a.max_scale),
                       cli.user_errors() + (executors.JobsFailed,))


if __name__ == "__main__":
    sys.exit(main())
