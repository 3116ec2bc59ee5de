"""The course notebooks: committed clean, and runnable end to end by the runner (smoke profile).

The end-to-end test (the `smoke_run` fixture of conftest.py, shared with tests/test_browser.py) runs
`python -m helpers.course --profile smoke` into pytest's tmp_path, so
nothing is written into the repository's runs/ folder; the built-in data are generated in the
session's tmp data cache (SAR_DATA_DIR, see conftest.py), never in the repository.
"""
from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import GIT_STATUS, assert_drawn
from helpers.settings import catalog, config
from helpers.publishing import runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
STAGES = catalog.STAGES
# Figures each notebook promises (in <run_dir>/figures/).
FIGURES = {
    "00_data_audit": ["class_counts", "example_chips", "model_inputs", "intensity_histograms", "split_sizes"],
    "01_stage1_full_data": ["stage1_learning_curves", "stage1_per_class", "stage1_predicted_distribution"],
    "02_stage2_without_class0": ["stage2_class_counts", "stage2_learning_curves", "stage2_per_class"],
    "03_stage3_balanced_finetune": ["stage3_balanced_set", "stage3a_learning_curves", "stage3b_learning_curves",
                                    "stage3_per_class"],
    "04_evaluation_tta": ["stage_scores", "confusion_matrix", "predicted_distribution", "methods"],
    "05_feature_plots": ["figure2_tsne", "figure2_umap", "separation_scores"],
    "06_predict_submission": ["submission_distribution"],
}


def notebook_paths():
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


# ---------------------------------------------------------------- committed notebooks are clean
def test_notebook_set_matches_the_runner():
    assert [p.stem for p in notebook_paths()] == catalog.NOTEBOOKS


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"] == catalog.KERNELSPEC
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: a code cell has outputs; clear them before committing"
            assert cell["execution_count"] is None, f"{path.name}: a code cell has an execution count"
    assert nb["cells"][0]["cell_type"] == "markdown", f"{path.name}: the first cell should explain the stage"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_one_parameters_cell_of_literals(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found {len(tagged)}"
    source = "".join(tagged[0]["source"])
    names = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), \
            f"{path.name}: the parameters cell may only hold `name = literal` lines, found {ast.unparse(node)!r}"
        names[node.targets[0].id] = ast.literal_eval(node.value)   # raises if not a literal
    expected = {"run_dir": "runs/quick", "profile": "quick", "data": None, "seed": None, "device": "auto"}
    assert {k: names.get(k) for k in expected} == expected
    assert set(names) - set(expected) <= set(catalog.NOTEBOOK_PARAMETERS)
    if path.stem == "04_evaluation_tta":
        assert names["comparison_csv"] is None          # None: the run's own data, profile and budget


# ---------------------------------------------------------------- the runner's command line
def test_runner_rejects_unknown_setting(tmp_path, capsys):
    assert runner.main(["--profile", "smoke", "--name", str(tmp_path / "r"), "-p", "stage_one_epochs", "3"]) == 1
    err = capsys.readouterr().err
    assert "stage_one_epochs" in err and "stage1_epochs" in err      # names the bad key and lists valid ones
    assert not (tmp_path / "r").exists()


def test_runner_rejects_bad_value_and_profile(tmp_path, capsys):
    assert runner.main(["--profile", "smoke", "--name", str(tmp_path / "r"), "-p", "stage1_epochs", "many"]) == 1
    assert "stage1_epochs" in capsys.readouterr().err
    assert runner.main(["--profile", "fast", "--name", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert all(p in err for p in config.profile_names())


def test_runner_refuses_to_overwrite(tmp_path, capsys):
    run = tmp_path / "existing"
    run.mkdir()
    (run / "keep.txt").write_text("results")
    assert runner.main(["--profile", "smoke", "--name", str(run)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (run / "keep.txt").exists()


def test_runner_rejects_unknown_notebook(tmp_path, capsys):
    assert runner.main(["--profile", "smoke", "--name", str(tmp_path / "r"), "--only", "07_nothing"]) == 1
    assert "00_data_audit" in capsys.readouterr().err


# ---------------------------------------------------------------- the whole course, smoke profile
# `smoke_run` (tests/conftest.py): one smoke run of the whole course per session, shared with the browser tests.


def test_smoke_run_leaves_the_repository_unchanged(smoke_run):
    before, after = GIT_STATUS["before"], GIT_STATUS["after"]
    if before is None:
        pytest.skip("not a git checkout")
    assert after == before, f"the course run changed the repository:\n{after}"


def test_smoke_env_records_the_git_commit(smoke_run):
    env = json.loads((smoke_run / "env.json").read_text())
    assert "git_commit" in env and env["torch"]
    if GIT_STATUS["before"] is not None:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        assert env["git_commit"].split("+")[0] == head


def _in_unit_interval(values, what):
    for v in values:
        assert 0.0 <= float(v) <= 1.0, f"{what}: {v} is outside [0, 1]"


def test_smoke_checkpoints(smoke_run):
    import torch
    for stage in STAGES + ["plain", "crt", "lws", "ldam_drw", "stage3a_from1", "stage3b_from1", "stage2_plus3a",
                           "stage3b_from2plus", "stage3a_plus3b"]:
        path = smoke_run / stage / "checkpoint.pt"
        assert path.is_file(), f"missing {path}"
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        assert ckpt["complete"], f"{path} is unfinished"
        assert (smoke_run / stage / "metrics.csv").is_file()


def test_smoke_metrics(smoke_run):
    for stage in STAGES:
        s = json.loads((smoke_run / f"{stage}_test.json").read_text())
        _in_unit_interval([s["balanced_top1"], s["top1"], s["distance_from_uniform"], *s["per_class"]], stage)
        assert abs(sum(s["predicted_share"]) - 1) < 1e-6
    evaluation = json.loads((smoke_run / "evaluation.json").read_text())
    assert {r["stage"] for r in evaluation["stages"]} == set(STAGES)
    for row in evaluation["stages"]:
        _in_unit_interval([row["balanced_top1"], row["top1"], row["distance_from_uniform"]], "evaluation.json")
    _in_unit_interval([evaluation["final"]["balanced_top1"], *evaluation["final"]["per_class"]], "final model")
    audit = json.loads((smoke_run / "audit.json").read_text())
    _in_unit_interval([audit["head_share"]], "audit head share")
    assert audit["corrupt_files"] == 0 and audit["imbalance_ratio"] > 1

    methods = pd.read_csv(smoke_run / "comparison.csv")
    assert {"three-stage", "cRT", "tau-norm", "LWS", "plain CE", "LDAM-DRW", "w/o stage 2"} <= set(methods["method"])
    assert {"full_steps", "classifier_steps", "many_shot", "few_shot", "under_trained"} <= set(methods.columns)
    _in_unit_interval(methods[["balanced_top1", "top1", "distance_from_uniform"]].to_numpy().ravel(), "comparison.csv")
    claims = pd.read_csv(smoke_run / "claims.csv")
    assert len(claims) == 3 and claims["held"].isin(["held", "not held", "inconclusive", "not evidence"]).all()
    assert claims["held"].iloc[0] == "not evidence"            # one seed, smoke-size: never a verdict
    separation = pd.read_csv(smoke_run / "separation.csv")
    assert list(separation["stage"]) == ["stage1", "stage2", "stage3b"]
    _in_unit_interval(separation.filter(like="kNN").to_numpy().ravel(), "kNN accuracy")
    assert separation.filter(like="silhouette").abs().le(1).all().all()
    assert pd.read_csv(smoke_run / "class_counts.csv")["train"].sum() > 0


@pytest.mark.parametrize("notebook", list(FIGURES))
def test_smoke_figures(smoke_run, notebook):
    for name in FIGURES[notebook]:
        path = smoke_run / "figures" / f"{name}.png"
        assert path.is_file(), f"{notebook} did not save {path.name}"
        assert_drawn(path)


def test_smoke_report_and_timings(smoke_run):
    report = (smoke_run / "report.html").read_text(encoding="utf-8")
    assert all(f'id="{nb}"' in report for nb in catalog.NOTEBOOKS)
    assert "Traceback" not in report
    assert "it/s]" not in report and "\r" not in report      # headless: no progress-bar noise to scrub
    assert report.count("data:image/png;base64") >= sum(map(len, FIGURES.values()))
    timings = json.loads((smoke_run / "timings.json").read_text())
    assert list(timings) == catalog.NOTEBOOKS and all(t > 0 for t in timings.values())
    for nb in catalog.NOTEBOOKS:
        assert (smoke_run / "notebooks" / f"{nb}.ipynb").is_file()


def test_notebook_04_shows_the_labelled_reference_on_a_fresh_run(smoke_run):
    """A fresh run has no comparison or sweep of its own: notebook 04 shows the committed snapshots, labelled."""
    from helpers.evidence import compare, sweep
    for folder in (compare.folder("smoke", "synthetic-sar"), sweep.folder("smoke", "synthetic-sar")):
        if folder.exists():
            pytest.skip(f"{folder} exists, so this run is not fresh: the notebook shows it instead")
    nb = json.loads((smoke_run / "notebooks" / "04_evaluation_tta.ipynb").read_text())
    shown = ["".join(o["data"]["text/markdown"]) for c in nb["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    references = [s for s in shown if s.startswith("**Reference, not this run.**")]
    # one reference per committed kind of snapshot (the comparison; the sweep where one is committed)
    committed = [k for k in ("compare", "sweep") if (ROOT / "docs" / "results" / f"{k}-quick-synthetic-sar.md").is_file()]
    assert len(references) == len(committed) and committed[0] == "compare", (len(references), committed)
    comparison = references[0]
    snapshot = (ROOT / "docs" / "results" / "compare-quick-synthetic-sar.md").read_text()
    row = next(line for line in snapshot.splitlines() if line.startswith("| three-stage |"))
    mean = row.split("|")[2].strip()                     # e.g. "81.9 ± 2.9"
    assert "docs/results/compare-quick-synthetic-sar.md" in comparison and row in comparison
    assert "this run is the smoke profile on synthetic-sar" in comparison
    if "sweep" in committed:
        assert "docs/results/sweep-quick-synthetic-sar.md" in references[1]
    else:
        assert any("no budget sweep" in "".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", [])), "notebook 04 does not say that there is no sweep"
    claims = pd.read_csv(smoke_run / "claims.csv")       # the run's own claims never read the reference
    assert mean.split(" ±")[0] not in claims.to_csv()
    from helpers.publishing import slides                   # and the deck keeps them
    deck = slides.deck_notebook(smoke_run / "notebooks" / "04_evaluation_tta.ipynb")
    kept = [c for c in deck.cells if c.metadata["slideshow"]["slide_type"] != "skip"
            and any("Reference, not this run" in "".join(o.get("data", {}).get("text/markdown", "")) for o in c.get("outputs", []))]
    assert len(kept) == len(committed)
