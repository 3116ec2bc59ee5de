"""The multi-seed comparison behind one command: every method, several seeds, mean +- std.

    python -m helpers.compare --profile quick --data synthetic-sar            # seeds from the profile
    python -m helpers.compare --profile quick --data digits-lt --seeds 0 1 2

Each seed is a run folder runs/<name>/seed<k>/ (same layout as the course's), so an interrupted
comparison continues where it stopped when the same command is run again; --overwrite starts afresh.
Writes runs/<name>/per_seed.csv, comparison.csv and comparison.md.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time

import pandas as pd

from . import config, experiments, runs
from .checkpoints import CheckpointError
from .config import SettingsError
from .data import DataError, load_data
from .paths import resolve_path
from .training import TrainingDiverged


def markdown(table: pd.DataFrame) -> str:
    lines = ["| method | balanced top-1 (mean ± std) | overall top-1 | seeds | image-passes | train time (s) |",
             "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['method']} | {100 * r['balanced_top1_mean']:.1f} ± {100 * r['balanced_top1_std']:.1f} % "
                     f"| {100 * r['top1_mean']:.1f} ± {100 * r['top1_std']:.1f} % | {int(r['seeds'])} "
                     f"| {r['image_passes_mean']:,.0f} | {r['train_seconds_mean']:.0f} |")
    return "\n".join(lines) + "\n"


def run(profile: str, data: str, seeds, name: str | None, overwrite: bool, overrides: dict) -> pd.DataFrame:
    settings = config.resolve(profile, data=data, **overrides)
    seeds = seeds or settings.seeds
    name = name or f"compare-{profile}-{data if data in ('synthetic-sar', 'digits-lt') else 'custom'}"
    root = resolve_path(name if "/" in name else f"runs/{name}")
    if overwrite and root.exists():
        shutil.rmtree(root)
    rows, t0 = [], time.time()
    for k, seed in enumerate(seeds, 1):
        print(f"== seed {seed} ({k}/{len(seeds)}), {time.time() - t0:.0f} s so far", flush=True)
        run_dir, s = runs.open_run(root / f"seed{seed}", profile, data=data, seed=seed, **overrides)
        bundle = load_data(s)
        experiments.train_all(bundle, s, run_dir)
        table = experiments.evaluate_methods(bundle, s, run_dir)
        table.insert(1, "seed", seed)
        rows.append(table)
        per_seed = pd.concat(rows)
        per_seed.to_csv(root / "per_seed.csv", index=False)
    summary = experiments.aggregate(per_seed)
    summary.to_csv(root / "comparison.csv", index=False)
    (root / "comparison.md").write_text(f"# {data}, profile {profile}, seeds {list(seeds)}\n\n" + markdown(summary)
                                        + f"\nWall time of this command: {time.time() - t0:.0f} s.\n")
    print(markdown(summary))
    print(f"written {root / 'comparison.csv'} and {root / 'comparison.md'} ({time.time() - t0:.0f} s)")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", default="synthetic-sar", help="synthetic-sar, digits-lt, or a path to MAVOC-style folders")
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--name", help="run folder under runs/ (default compare-<profile>-<data>)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="override a setting")
    a = p.parse_args(argv)
    try:
        run(a.profile, a.data, a.seeds, a.name, a.overwrite, dict(a.p))
    except (SettingsError, DataError, CheckpointError, runs.RunFolderError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
