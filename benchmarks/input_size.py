"""Input size: every method's balanced top-1 and its cost at 16, 24 and 32 px (issue 8, item 9).

    python -m benchmarks.input_size --data synthetic-sar --sizes 16 24 32 --seeds 0

Each size is a `helpers.compare` run without ablations in runs/input-size-<profile>-<data>/<size>px/
(the profile's own size reuses the ordinary comparison's seeds when it has them), so an interrupted
run continues where it stopped. Writes runs/input-size-<profile>-<data>/input_size.csv and
input_size.md: balanced top-1 per method and size (mean ± std over the seeds), and seconds per
full-model step (plain CE's recorded training time over its steps; `--step-times` times one step alone).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from helpers.publishing import cli
from helpers.evidence import compare
from helpers.settings import config
from helpers.evidence import experiments
from helpers.settings.paths import resolve_path


def _summary(profile: str, data: str, size: int, seeds, root: Path, overrides: dict) -> pd.DataFrame:
    """The methods' multi-seed table at one size."""
    own = root / compare.folder_name(profile, data) / "per_seed.csv"
    if not overrides and size == config.resolve(profile, data=data).image_size and own.is_file():
        per_seed = pd.read_csv(own)
        per_seed = per_seed[per_seed["seed"].isin(seeds) & (per_seed["kind"] == "method")]
        if set(per_seed["seed"]) == set(seeds):        # the ordinary comparison already has these seeds
            print(f"==== {size} px: the seeds of {own.parent}", flush=True)
            return experiments.aggregate(per_seed)
    print(f"==== {size} px, seeds {list(seeds)}", flush=True)
    return compare.run(profile, data, list(seeds), str(out_folder(profile, data, root) / f"{size}px"), False,
                       {**overrides, "image_size": size}, ablations=False, progress=False)


def out_folder(profile: str, data: str, root: Path) -> Path:
    return root / f"input-size-{profile}-{compare.data_label(data)}"


def measure(profile: str, data: str, sizes, seeds, root: Path, overrides: dict) -> pd.DataFrame:
    rows = []
    for size in sizes:
        summary = _summary(profile, data, size, seeds, root, overrides)
        plain = summary.set_index("method").loc["plain CE"]
        for _, r in summary[summary["kind"] == "method"].iterrows():
            rows.append({"image_size": size, "method": r["method"], "balanced_top1_mean": r["balanced_top1_mean"],
                         "balanced_top1_std": r["balanced_top1_std"], "few_shot_mean": r["few_shot_mean"],
                         "under_trained": bool(r["under_trained"]), "seeds": int(r["seeds"]),
                         "seconds_per_step": plain["train_seconds_mean"] / plain["full_steps_mean"]})
    return pd.DataFrame(rows)


def step_seconds(size: int, batch_size: int = 128, steps: int = 15) -> float:
    """Median seconds of one SGD step (forward, backward, update) of Shake-Shake-26 2x32d on a random batch."""
    import statistics
    import time

    from benchmarks.precision import raw_step
    step = raw_step(size, batch_size, "fp32")
    times = []
    for i in range(steps + 3):                       # 3 warm-up steps
        t = time.perf_counter()
        step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def markdown(table: pd.DataFrame, data: str, profile: str, seeds) -> str:
    sizes = sorted(table["image_size"].unique())
    lines = [f"# Input size: {data}, profile {profile}, seed(s) {', '.join(map(str, seeds))} at every size\n",
             *compare.method_pivot(table, "image_size", lambda s: f"{s} px")]
    per_size = table.drop_duplicates("image_size").set_index("image_size")
    lines += ["", "| | " + " | ".join(f"{s} px" for s in sizes) + " |", "|---" * (len(sizes) + 1) + "|",
              "| seconds per full-model step (plain CE's training record) | "
              + " | ".join(f"{per_size.loc[s, 'seconds_per_step']:.3f}" for s in sizes) + " |",
              "", "Seconds per step are as recorded when the models were trained, whatever else ran then; "
              "`--step-times` times a step on its own."]
    return "\n".join(lines) + "\n"


def run(profile: str, data: str, sizes, seeds, root=None, overrides=None) -> pd.DataFrame:
    """Measure every size; `root` is the runs folder (default runs/), `overrides` extra settings."""
    root, overrides = resolve_path(root or "runs"), dict(overrides or {})
    config.resolve(profile, data=data, **overrides)   # a bad profile or setting stops here, before any training
    table = measure(profile, data, sizes, seeds, root, overrides)
    out = out_folder(profile, data, root)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "input_size.csv", index=False)
    text = markdown(table, data, profile, seeds)
    (out / "input_size.md").write_text(text)
    print(text)
    print(f"written {out / 'input_size.md'}")
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", default="synthetic-sar")
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 24, 32])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--step-times", action="store_true",
                   help="only time one training step (batch 128) at each size, with this process's torch threads")
    a = p.parse_args(argv)
    if a.step_times:
        import torch
        load = os.getloadavg()[0]
        for size in a.sizes:
            print(f"{size} px: {1e3 * step_seconds(size):.0f} ms per step (batch 128, {torch.get_num_threads()} threads)")
        print(f"load average (1 min) before / after: {load:.2f} / {os.getloadavg()[0]:.2f}")
        return 0
    return cli.guarded(lambda: run(a.profile, a.data, a.sizes, a.seeds))


if __name__ == "__main__":
    sys.exit(main())
