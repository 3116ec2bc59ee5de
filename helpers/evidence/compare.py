"""The multi-seed comparison behind one command: every method, several seeds, mean +- std.

    python -m helpers.compare --profile quick --data synthetic-sar            # seeds from the profile
    python -m helpers.compare --profile quick --data digits-lt --seeds 0 1 2
    python -m helpers.compare --profile quick --data digits-lt -p budget_scale 2 --seeds 0 1 --no-ablations

Each seed is a run folder runs/<name>/seed<k>/ (same layout as the course's), so an interrupted
comparison continues where it stopped when the same command is run again; --overwrite starts afresh.
`--executor local --jobs N` trains N seeds at a time in their own processes, `--executor slurm` sends
them to SLURM (helpers/evidence/executors.py): each seed is a job that leaves its table in its folder
(methods.pkl, as every seed does); the tables are assembled when every job is done, and a re-run
submits only the rest and reads the finished seeds' tables back.
The folder is named after the profile, the data, the budget and a non-default input size (`folder_name`),
so two data sets never share one. Writes per_seed.csv, comparison.csv, tta_gains.csv, comparison.md and
figures/paired_gaps.png (three-stage's paired gap to every method, with its interval) there.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import re
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from ..publishing import cli
from ..settings import config
from ..method import runs
from . import experiments, ood_evidence, parallel_training, verdicts
from ..figures import evidence_plots
from . import executors
from ..datasets.data import BUILT_IN, load_data
from ..settings.paths import resolve_path

TEST_PREDICTIONS = "test_predictions.csv"     # in each seed folder: the predicted class of each test chip per method


def data_label(data: str) -> str:
    """A built-in name as is; a path as its folder name plus a short hash of the full path."""
    if data in BUILT_IN:
        return data
    path = resolve_path(data)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", path.name or "data").strip("-") or "data"
    return f"{stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"


def folder_name(profile: str, data: str, budget_scale: float = 1.0, image_size: int | None = None) -> str:
    """compare-<profile>-<data>[-x<budget>][-<size>px]; the size only when it is not the profile's own."""
    scale = "" if budget_scale == 1 else f"-x{budget_scale:g}"
    size = "" if image_size in (None, config.resolve(profile).image_size) else f"-{image_size}px"
    return f"compare-{profile}-{data_label(data)}{scale}{size}"


def folder(profile: str, data: str, budget_scale: float = 1.0, image_size: int | None = None) -> Path:
    return resolve_path(Path("runs") / folder_name(profile, data, budget_scale, image_size))


def percent(m, s=None) -> str:
    """A mean (and std, when there is one) of fractions as "12.3 ± 4.5", in percent; "–" for no value."""
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "–"
    return f"{100 * m:.1f}" + ("" if s is None or math.isnan(s) else f" ± {100 * s:.1f}")


def _pct(r, col: str) -> str:
    return percent(r.get(f"{col}_mean"), r.get(f"{col}_std"))


def method_pivot(long: pd.DataFrame, column: str, label) -> list[str]:
    """Markdown rows of a method x `column` table of balanced top-1 "mean ± std" cells, under-trained marked.

    `long` has one row per (method, column value) with balanced_top1_mean/_std and under_trained;
    `label` turns a column value into its header ("2x", "24 px")."""
    cells = [percent(m, s) + (" (under-trained)" if u else "")
             for m, s, u in zip(long["balanced_top1_mean"], long["balanced_top1_std"], long["under_trained"])]
    wide = long.assign(cell=cells).pivot(index="method", columns=column, values="cell")
    wide = wide.reindex(long["method"].unique())
    lines = ["| method | " + " | ".join(label(c) for c in wide.columns) + " |", "|---" * (len(wide.columns) + 1) + "|"]
    return lines + [f"| {m} | " + " | ".join(str(v) for v in r) + " |" for m, r in wide.iterrows()]


def paired_cell(r) -> str:
    """"+2.5 [-1.0, +6.0], p 0.12" from a row's paired columns (experiments.aggregate), then the two-level
    bootstrap's interval and p where the table has them ("; bootstrap [...], p ..."); "–" when there are none."""
    gap, lo, hi, p = (r.get(f"paired_{k}", float("nan")) for k in ("gap", "lo", "hi", "p"))
    if gap is None or (isinstance(gap, float) and math.isnan(gap)):
        return "–"
    blo, bhi, bp = (r.get(f"boot_{k}", float("nan")) for k in ("lo", "hi", "p"))
    boot = "" if blo is None or (isinstance(blo, float) and math.isnan(blo)) else \
        f"; bootstrap [{100 * blo:+.1f}, {100 * bhi:+.1f}], p {bp:.3f}"
    if isinstance(p, float) and math.isnan(p):
        return f"{100 * gap:+.1f} (no interval){boot}"
    return f"{100 * gap:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], p {p:.3f}{boot}"


def markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table; under-trained methods are marked and never a verdict's basis."""
    boot = "; then the bootstrap over seeds and test chips" if "boot_lo" in table.columns else ""
    lines = [f"| method | balanced top-1 % (mean ± std) | three-stage minus it, pp [95% CI], p (paired by seed{boot}) "
             "| many / medium / few-shot % | val balanced top-1 % | seeds "
             "| full-model steps | classifier-only steps | image-passes | train time (s) | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        note = [r.get("budget_note") if isinstance(r.get("budget_note"), str) else ""]   # NaN when read from a CSV
        if r["under_trained"]:
            note.append(f"**under-trained** (val under {100 * experiments.UNDER_TRAINED:.0f}%)")
        elif r.get("seeds_under_trained", 0):
            note.append(f"{int(r['seeds_under_trained'])} seed(s) under-trained")
        lines.append(f"| {r['method']} | {_pct(r, 'balanced_top1')} | {paired_cell(r)} "
                     f"| {_pct(r, 'many_shot')} / {_pct(r, 'medium_shot')} / {_pct(r, 'few_shot')} "
                     f"| {_pct(r, 'val_balanced_top1')} | {int(r['seeds'])} | {r['full_steps_mean']:,.0f} "
                     f"| {r['classifier_steps_mean']:,.0f} | {r['image_passes_mean']:,.0f} | {r['train_seconds_mean']:.0f} "
                     f"| {'; '.join(n for n in note if n)} |")
    return "\n".join(lines) + "\n"


def gains_markdown(gains: pd.DataFrame) -> str:
    lines = ["| TTA | gain over TTA off, balanced top-1 pp (mean ± std) | seeds |", "|---|---|---|"]
    for _, r in gains.iterrows():
        lines.append(f"| {r['tta']} | {100 * r['gain_mean']:+.1f} ± {100 * r['gain_std']:.1f} | {int(r['seeds'])} |")
    return "\n".join(lines) + "\n"


def root_of(profile: str, data: str, name: str | None, overrides: dict) -> Path:
    """The comparison's folder: --name, else runs/<folder_name>."""
    settings = config.resolve(profile, data=data, **overrides)
    default = folder_name(profile, data, settings.budget_scale, settings.image_size)
    return resolve_path(name if name and "/" in name else Path("runs") / (name or default))


def kinds(ablations: bool) -> tuple:
    """The kinds of rows a comparison has: the methods and their variants, and with ablations the TTA variants too."""
    return ("method", "variant", "tta", "ablation") if ablations else ("method", "variant")


def seed_table(profile: str, data: str, seed: int, root: Path, overrides: dict, ablations: bool,
               progress: bool = True) -> pd.DataFrame:
    """Everything one seed adds to the comparison: its run folder trained (resumed), one row per method.
    The table is left in the seed's folder (methods.pkl, written last, atomically); a seed that has one
    with every method asked for is read back, not evaluated again (delete it to re-evaluate)."""
    methods = experiments.method_names(kinds(ablations))
    run_dir, s = runs.open_run(Path(root) / f"seed{seed}", profile, data=data, seed=seed, **overrides)
    done = finished(root, seed, methods)      # after open_run, which refuses a folder of other settings
    if done is not None:
        return done
    bundle = load_data(s)
    parallel_training.train_all(bundle, s, run_dir, progress=progress, ablations=ablations)
    predicted = {}
    table = experiments.evaluate_methods(bundle, s, run_dir, methods, test_predictions=predicted)
    pd.DataFrame({"label": bundle.test.targets.numpy(), **predicted}).to_csv(run_dir / TEST_PREDICTIONS, index=False)
    table.insert(1, "seed", seed)
    path = run_dir / "methods.pkl"
    table.to_pickle(path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return table


def test_predictions(root: Path, seeds) -> list:
    """Every seed's predicted class of each test chip per method (the bootstrap's input), or [] if a seed has none."""
    paths = [Path(root) / f"seed{seed}" / TEST_PREDICTIONS for seed in seeds]
    return [pd.read_csv(p) for p in paths] if all(p.is_file() for p in paths) else []


def seed_job(profile: str, data: str, seed: int, root: str, overrides: dict, ablations: bool) -> str:
    """One job of a spread-out comparison: `seed_table`, which leaves its table in the seed's folder."""
    seed_table(profile, data, seed, Path(root), overrides, ablations)
    return str(Path(root) / f"seed{seed}" / "methods.pkl")


def finished(root: Path, seed: int, methods) -> pd.DataFrame | None:
    """A seed's table, if it has one with every method asked for (those rows, in the table's order) and no
    checkpoint of the seed's folder is newer than it (a stage trained again since is evaluated again)."""
    path = Path(root) / f"seed{seed}" / "methods.pkl"
    table = pd.read_pickle(path) if path.is_file() else None
    if table is None or not set(methods) <= set(table["method"]):
        return None
    written = path.stat().st_mtime_ns
    if any(c.stat().st_mtime_ns > written for c in path.parent.glob("*/checkpoint.pt")):
        return None
    return table[table["method"].isin(methods)].reset_index(drop=True)


def pending_jobs(profile: str, data: str, seeds, root: Path, overrides: dict, ablations: bool) -> list:
    """The seeds without a finished table, as jobs (helpers/evidence/executors.py)."""
    methods = experiments.method_names(kinds(ablations))
    return [executors.Job(f"{root.name}/seed{seed}", seed_job, (profile, data, seed, str(root), overrides, ablations))
            for seed in seeds if finished(root, seed, methods) is None]


def run(profile: str, data: str, seeds, name: str | None, overwrite: bool, overrides: dict,
        ablations: bool = True, progress: bool = True, executor: str = "local", jobs: int | None = None,
        slurm: dict | None = None) -> pd.DataFrame:
    settings = config.resolve(profile, data=data, **overrides)
    seeds = list(seeds or settings.seeds)
    root = root_of(profile, data, name, overrides)
    if overwrite and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    methods = experiments.method_names(kinds(ablations))
    rows, t0 = [], time.time()
    earlier = pd.read_csv(root / "per_seed.csv") if (root / "per_seed.csv").is_file() else None
    in_process = executor == "local" and (jobs or 1) == 1
    if not in_process:      # the seeds as jobs; the table of each is read back in seed order
        executors.run_jobs(pending_jobs(profile, data, seeds, root, overrides, ablations), executor, jobs,
                           root / "jobs", slurm)
        per_seed = pd.concat([finished(root, seed, methods) for seed in seeds])
        per_seed.to_csv(root / "per_seed.csv", index=False)
    for k, seed in enumerate(seeds if in_process else [], 1):
        print(f"== seed {seed} ({k}/{len(seeds)}), {time.time() - t0:.0f} s so far", flush=True)
        table = seed_table(profile, data, seed, root, overrides, ablations, progress)
        rows.append(table)
        per_seed = pd.concat(rows)
        # an interrupted re-run keeps the earlier rows of the seeds it has not reached yet
        pending = [] if earlier is None else [earlier[earlier["seed"].isin(seeds[k:])]]
        pd.concat([per_seed, *pending]).to_csv(root / "per_seed.csv", index=False)
    summary = experiments.with_bootstrap(experiments.aggregate(per_seed), test_predictions(root, seeds))
    summary.to_csv(root / "comparison.csv", index=False)
    gains = experiments.tta_gains(per_seed)
    gains.to_csv(root / "tta_gains.csv", index=False)
    verdict = verdicts.claim1(summary)
    evidence_plots.paired_gaps(summary, root, rival=verdict["rival"],
                               title=f"Three-stage minus each method: {data}, {profile} x{settings.budget_scale:g}")
    text = (f"# {data}, profile {profile}, budget x{settings.budget_scale:g}, seeds {list(seeds)}\n\n"
            + markdown(summary) + ("\n" + gains_markdown(gains) if len(gains) else "")
            + ("\nOut-of-distribution detection (test chips against the OOD test chips):\n\n" + ood_evidence.markdown(summary)
               + f"\nOOD: {ood_evidence.verdict(summary)}.\n" if "auroc_mean" in summary.columns else "")
            + f"\nClaim (1): {verdicts.sentence(verdict)}\n"
            + f"\nWall time of this command: {time.time() - t0:.0f} s.\n")
    (root / "comparison.md").write_text(text)
    print(text)
    print(f"written {root / 'comparison.csv'} and {root / 'comparison.md'} ({time.time() - t0:.0f} s)")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", default="synthetic-sar", help="synthetic-sar, digits-lt, or a path to MAVOC-style folders")
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--name", help="run folder under runs/ (default compare-<profile>-<data>[-x<budget>][-<size>px])")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-ablations", action="store_true", help="methods only (the budget sweep)")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="override a setting")
    executors.add_arguments(p)
    a = p.parse_args(argv)
    return cli.guarded(lambda: run(a.profile, a.data, a.seeds, a.name, a.overwrite, dict(a.p),
                                   ablations=not a.no_ablations, **executors.options(a)),
                       cli.user_errors() + (executors.JobsFailed,))


if __name__ == "__main__":
    sys.exit(main())
