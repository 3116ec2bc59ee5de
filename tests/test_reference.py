"""The committed reference snapshots that notebook 04 shows when a run has no comparison or sweep of its
own (helpers/lessons/reference.py): the closest one is chosen, and it is always labelled."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml
from PIL import Image

from helpers.lessons import reference


def test_every_snapshot_has_its_provenance():
    records = yaml.safe_load(reference.PROVENANCE.read_text())
    names = {p.stem for p in reference.RESULTS.glob("*.md") if p.stem.startswith(("compare-", "sweep-"))}
    assert names and names == set(records["snapshots"]), names ^ set(records["snapshots"])
    for name, entry in records["snapshots"].items():
        assert {"command", "trained", "load"} <= set(entry), name
        assert entry["command"].startswith(("python -m helpers.compare", "python -m helpers.sweep")), name


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A docs/results/ of our own: the selection and the label are tested on snapshots made here, not on
    whichever snapshots are committed today."""
    folder, figures = tmp_path / "results", tmp_path / "figures"
    folder.mkdir(), figures.mkdir()
    for name in ("compare-quick-digits-lt", "compare-quick-digits-lt-x4", "compare-quick-synthetic-sar",
                 "sweep-quick-digits-lt"):
        (folder / f"{name}.md").write_text(f"# {name}\n\n| method | balanced top-1 |\n|---|---|\n| three-stage | 12.3 ± 0.4 |\n")
    (folder / "provenance.yaml").write_text(yaml.safe_dump({
        "machine": "a 2-core test machine",
        "snapshots": {"compare-quick-digits-lt": {"command": "python -m helpers.compare --profile quick --data digits-lt",
                                                  "trained": "abc1234, 2026-12-01", "load": "quiet"}}}))
    Image.new("RGB", (4, 4)).save(figures / "budget_sweep_digits-lt.png")
    monkeypatch.setattr(reference, "RESULTS", folder)
    monkeypatch.setattr(reference, "FIGURES", figures)
    monkeypatch.setattr(reference, "PROVENANCE", folder / "provenance.yaml")
    return folder


def test_the_closest_snapshot_is_chosen(results):
    assert reference.snapshot("compare", "quick", "digits-lt") == ("compare-quick-digits-lt", "quick", "digits-lt")
    assert reference.snapshot("compare", "quick", "digits-lt", 4) == ("compare-quick-digits-lt-x4", "quick", "digits-lt")
    assert reference.snapshot("compare", "smoke", "digits-lt") == ("compare-quick-digits-lt", "quick", "digits-lt")
    assert reference.snapshot("sweep", "paper", "digits-lt", 2) == ("sweep-quick-digits-lt", "quick", "digits-lt")
    assert reference.snapshot("sweep", "quick", "synthetic-sar") is None
    # a folder of the user's own: the quick profile on synthetic-sar, said so in the label
    assert reference.snapshot("compare", "paper", "/data/mavoc") == ("compare-quick-synthetic-sar", "quick", "synthetic-sar")
    assert reference.snapshot("compare", "quick", "synthetic-sar", 3) is None


def test_the_label_says_whose_numbers_they_are(results):
    text = reference.label("compare-quick-digits-lt", "quick", "digits-lt", "smoke", "digits-lt")
    assert text.startswith("**Reference, not this run.**")
    assert "docs/results/compare-quick-digits-lt.md" in text
    assert "the quick profile on digits-lt; this run is the smoke profile on digits-lt" in text
    assert "abc1234, 2026-12-01" in text and "python -m helpers.compare --profile quick --data digits-lt" in text
    assert "a 2-core test machine" in text and "quiet" in text
    same = reference.label("compare-quick-digits-lt", "quick", "digits-lt", "quick", "digits-lt")
    assert "the same profile and data as this run" in same
    assert "not recorded" in reference.label("compare-quick-synthetic-sar", "quick", "synthetic-sar", "quick", "synthetic-sar")


def test_show_displays_the_label_the_table_and_the_sweep_figure(results, monkeypatch):
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", shown.append)
    settings = SimpleNamespace(data="digits-lt", budget_scale=1.0)
    assert reference.show("sweep", "smoke", settings)
    markdown, figure = shown
    assert "Reference, not this run" in markdown.data and "| three-stage | 12.3 ± 0.4 |" in markdown.data
    assert figure.data[:4] == b"\x89PNG"
    assert not reference.show("sweep", "quick", SimpleNamespace(data="synthetic-sar", budget_scale=1.0))
    assert not reference.show("compare", "quick", SimpleNamespace(data="synthetic-sar", budget_scale=3.0))
