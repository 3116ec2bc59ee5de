"""The budget sweep: every method at 1x, 2x and 4x the profile's budget, so a verdict that only holds
at one schedule shows itself.

    python -m helpers.sweep --profile quick --data digits-lt            # 1x: seeds 0 1 2; 2x, 4x: seeds 0 1
    python -m helpers.sweep --profile quick --data synthetic-sar --scales 1 2

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
from ..settings.paths import resolve_path

SCALES = (1.0, 2.0, 4.0)


def folder(profile: str, data: str) -> Path:
    return resolve_path(Path("runs") / f"sweep-{profile}-{compare.data_label(data)}")


def collect(profile: str, data: str, scales=SCALES) -> dict:
    """{scale: comparison table} of the budgets whose comparison exists."""
    out = {}
    for scale in scales:
        path = compare.folder(profile, data, scale) / "comparison.csv"
        if path.is_file():
            out[scale] = pd.read_csv(path)
    return out


def long_table(tables: dict) -> pd.DataFrame:
    """The methods' rows of every budget, one table (method, budget_scale, ...)."""
    methods = experiments.method_names(("method",))
    rows = [t[t["method"].isin(methods)].assign(budget_scale=scale) for scale, t in sorted(tables.items())]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def markdown(long: pd.DataFrame, verdict_table: pd.DataFrame) -> str:
    lines = compare.method_pivot(long, "budget_scale", lambda s: f"{s:g}x")
    lines += ["", "| budget | claim (1) verdict | why | best two-stage (by validation) |", "|---|---|---|---|"]
    lines += [f"| {r['budget']} | {r['verdict']} | {r['why']} | {r['rival']} |" for _, r in verdict_table.iterrows()]
    flips = verdicts.flips(verdict_table)
    lines += ["", f"The verdict {'**flips** with the budget' if flips else 'does not flip between decided budgets'}."]
    return "\n".join(lines) + "\n"


def report(profile: str, data: str, scales=SCALES):
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


def run(profile: str, data: str, scales=SCALES, seeds_1x=(0, 1, 2), seeds_above=(0, 1), overrides=None,
        executor: str = "local", jobs: int | None = None, slurm: dict | None = None):
    t0 = time.time()
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
    long, verdict_table = report(profile, data, scales)
    print((folder(profile, data) / "sweep.md").read_text())
    print(f"sweep written to {folder(profile, data)} ({time.time() - t0:.0f} s)")
    return long, verdict_table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", default="synthetic-sar")
    p.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    p.add_argument("--seeds-1x", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seeds-above", type=int, nargs="+", default=[0, 1])
    p.add_argument("--report-only", action="store_true", help="only redraw the tables and figure from finished budgets")
    executors.add_arguments(p)
    a = p.parse_args(argv)
    if a.report_only:
        return cli.guarded(lambda: report(a.profile, a.data, a.scales))
    return cli.guarded(lambda: run(a.profile, a.data, a.scales, a.seeds_1x, a.seeds_above, **executors.options(a)),
                       cli.user_errors() + (executors.JobsFailed,))


if __name__ == "__main__":
    sys.exit(main())
