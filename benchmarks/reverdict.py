"""The committed comparison and sweep snapshots (docs/results/) re-judged from their own per-seed tables
with today's verdict rule, without training anything:

    python -m benchmarks.reverdict            # rewrites docs/results/compare-*.md and sweep-*.md

Each compare-<profile>-<set>[-xN].md keeps its title and wall-time lines; its table and its claim (1)
line are recomputed from compare-...-per_seed.csv (helpers.evidence.experiments.aggregate: means, and
three-stage's paired gap to each method with its 95% t-interval and p). Each sweep-<profile>-<set>.md
is rewritten from the budgets' tables, the verdicts Holm-corrected across the budgets.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from helpers.evidence import compare, experiments, sweep, verdicts
from helpers.settings.paths import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "docs" / "results"
SCALES = {"": 1.0, "-x2": 2.0, "-x4": 4.0}


def rejudge_comparison(md: Path) -> pd.DataFrame:
    """Rewrite one comparison snapshot from its per-seed CSV; return its aggregate table."""
    per_seed = pd.read_csv(md.with_name(md.stem + "-per_seed.csv"))
    summary = experiments.aggregate(per_seed)
    old = md.read_text().splitlines()
    title = old[0]
    wall = next((line for line in old if line.startswith("Wall time")), "")
    gains = experiments.tta_gains(per_seed)
    text = (f"{title}\n\n" + compare.markdown(summary) + ("\n" + compare.gains_markdown(gains) if len(gains) else "")
            + f"\nClaim (1): {verdicts.sentence(verdicts.claim1(summary))}\n"
            + "\nRe-judged from the per-seed table by `python -m benchmarks.reverdict` (paired test over seeds).\n"
            + (f"\n{wall}\n" if wall else ""))
    md.write_text(text)
    return summary


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="python -m benchmarks.reverdict", description=__doc__.split("\n")[0]).parse_args(argv)
    by_set: dict[str, dict[float, pd.DataFrame]] = {}
    for md in sorted(RESULTS.glob("compare-*.md")):
        if not md.with_name(md.stem + "-per_seed.csv").is_file():
            continue
        m = re.fullmatch(r"compare-(\w+)-(.+?)(-x\d+)?", md.stem)
        profile, data, scale = m.group(1), m.group(2), SCALES.get(m.group(3) or "", None)
        summary = rejudge_comparison(md)
        if scale is not None:
            by_set.setdefault(f"{profile}-{data}", {})[scale] = summary
        print(f"{md.name}: {verdicts.sentence(verdicts.claim1(summary))}")
    for key, tables in by_set.items():
        profile, data = key.split("-", 1)
        long, verdict_table = sweep.long_table(tables), verdicts.sweep_verdicts(tables)
        long.to_csv(RESULTS / f"sweep-{key}.csv", index=False)
        (RESULTS / f"sweep-{key}.md").write_text(f"# Budget sweep: {data}, profile {profile}\n\n"
                                                 + sweep.markdown(long, verdict_table))
        print(f"sweep-{key}.md:", "; ".join(f"{r['budget']} {r['verdict']}" for _, r in verdict_table.iterrows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
