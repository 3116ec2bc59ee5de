"""The committed reference results (docs/results/), shown when a run has no comparison or sweep of its own.

A fresh `make course` trains one seed; the multi-seed comparison and the budget sweep are `make compare`
and `make sweep`, hours on a CPU.  So that notebook 04 (and its slides) still has its evidence, it shows
the committed snapshot of the same profile and data, else of the `quick` profile on the same data, else
of `quick` on synthetic-sar, under a label that says so: which snapshot, where it was trained (commit,
date, machine, load), by which command.  Its numbers are never mixed with the run's own: the claims
table of the run does not read them.  docs/results/provenance.yaml holds the labels.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ..evidence import compare
from ..settings.paths import PROJECT_ROOT, RESULTS

FIGURES = PROJECT_ROOT / "docs" / "figures"
PROVENANCE = RESULTS / "provenance.yaml"


def snapshot(kind: str, profile: str, data: str, budget_scale: float = 1.0):
    """(name, profile, data label) of the closest committed snapshot of `kind` ("compare" or "sweep"), or None."""
    label = compare.data_label(data)
    suffix = "" if kind == "sweep" or budget_scale == 1 else f"-x{budget_scale:g}"
    for p, d in dict.fromkeys([(profile, label), ("quick", label), ("quick", "synthetic-sar")]):
        name = f"{kind}-{p}-{d}{suffix}"
        if (RESULTS / f"{name}.md").is_file():
            return name, p, d
    return None


def provenance(name: str) -> dict:
    """The snapshot's command, commit and date of training, load, and the machine and re-judging commit."""
    records = yaml.safe_load(PROVENANCE.read_text()) if PROVENANCE.is_file() else {}
    entry = (records or {}).get("snapshots", {}).get(name, {})
    return {"machine": (records or {}).get("machine", "not recorded"), "rejudged": (records or {}).get("rejudged"),
            "command": entry.get("command", "not recorded"), "trained": entry.get("trained", "not recorded"),
            "load": entry.get("load", "not recorded")}


def label(name: str, profile: str, data: str, run_profile: str, run_data: str) -> str:
    p = provenance(name)
    same = (profile, data) == (run_profile, compare.data_label(run_data))
    whose = "the same profile and data as this run" if same else (
        f"the {profile} profile on {data}; this run is the {run_profile} profile on {compare.data_label(run_data)}")
    rejudged = f"; re-judged with the paired test at {p['rejudged']}" if p["rejudged"] else ""
    return (f"**Reference, not this run.** This run has no {'budget sweep' if name.startswith('sweep') else 'multi-seed comparison'} "
            f"of its own, so here is the committed snapshot `docs/results/{name}.md` ({whose}). Trained at "
            f"{p['trained']} on {p['machine']}, {p['load']}, by `{p['command']}`{rejudged}. None of its numbers "
            f"enter this run's claims table below.")


def body(name: str) -> str:
    """The snapshot's markdown without its title line, its headings one level down."""
    lines = (RESULTS / f"{name}.md").read_text().splitlines()
    return "\n".join(("#" + l if l.startswith("#") else l) for l in lines[1:]).strip()


def show(kind: str, run_profile: str, settings, run_dir=None) -> bool:
    """Display the labelled reference snapshot (and, for the sweep, its figure, copied into the run's
    figures/ as reference_budget_sweep_<data>.png, so the reports list it with the run's figures);
    False if there is none."""
    import shutil

    from IPython.display import Image, Markdown, display
    found = snapshot(kind, run_profile, settings.data, getattr(settings, "budget_scale", 1.0))
    if found is None:
        return False
    name, profile, data = found
    display(Markdown(label(name, profile, data, run_profile, settings.data) + "\n\n" + body(name)))
    figure = FIGURES / f"budget_sweep_{data}.png"
    if kind == "sweep" and figure.is_file():
        if run_dir is not None:
            (Path(run_dir) / "figures").mkdir(parents=True, exist_ok=True)
            figure = Path(shutil.copyfile(figure, Path(run_dir) / "figures" / f"reference_{figure.name}"))
        display(Image(filename=str(figure)))
    return True
