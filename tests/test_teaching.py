"""Teaching material: exercises with tagged solutions, student copies, navigation, slide types,
the results-only report and the explorers' headless fallback (the browser checks: test_browser.py)."""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from conftest import assert_drawn
from helpers.settings import catalog
from helpers.lessons import explorer
from helpers.publishing import results_report, slides, student

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def _read(name):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


# ---------------------------------------------------------------- exercises and navigation
@pytest.mark.parametrize("name", catalog.NOTEBOOKS)
def test_exercises_with_tagged_solutions(name):
    cells = _read(name).cells
    starts = [i for i, c in enumerate(cells) if "exercise" in _tags(c) and c.source.startswith("**Exercise")]
    assert 2 <= len(starts) <= 4, f"{name}: {len(starts)} exercises, expected 2-4"
    assert [cells[i].source.split(".")[0] for i in starts] == [f"**Exercise {k + 1}" for k in range(len(starts))]
    for i, end in zip(starts, starts[1:] + [len(cells) - 1]):
        solution = cells[i + 1:end]
        assert solution and all("solution" in _tags(c) for c in solution), f"{name}: exercise at cell {i} lacks a solution"
        assert any(c.cell_type == "code" for c in solution), f"{name}: the solution of cell {i} runs nothing"
    heading = next(i for i, c in enumerate(cells) if c.source.startswith("## Exercises"))
    assert heading < starts[0] and all("exercise" in _tags(c) or "solution" in _tags(c) for c in cells[heading:-1])


@pytest.mark.parametrize("k", range(len(catalog.NOTEBOOKS)))
def test_navigation_links(k):
    last = _read(catalog.NOTEBOOKS[k]).cells[-1]
    assert "navigation" in _tags(last)
    links = re.findall(r"\]\(([^)]+)\)", last.source)
    expected = ([f"{catalog.NOTEBOOKS[k - 1]}.ipynb"] if k > 0 else []) + ["contents.md"] + \
               ([f"{catalog.NOTEBOOKS[k + 1]}.ipynb"] if k < len(catalog.NOTEBOOKS) - 1 else [])
    assert links == expected
    assert all((NOTEBOOK_DIR / link).is_file() for link in links)


def test_contents_lists_the_course():
    links = re.findall(r"\]\(([^)]+\.ipynb)\)", (NOTEBOOK_DIR / "contents.md").read_text())
    assert links == [f"{nb}.ipynb" for nb in catalog.NOTEBOOKS]


# ---------------------------------------------------------------- student copies
def test_student_copies_have_no_solutions(tmp_path):
    written = student.write_student_copies(tmp_path / "student", log=lambda _: None)
    assert sorted(p.stem for p in written) == sorted(catalog.NOTEBOOKS)
    assert (tmp_path / "student" / "contents.md").is_file()
    for path in written:
        original, copy = _read(path.stem), nbformat.read(path, as_version=4)
        solutions = [c for c in original.cells if "solution" in _tags(c)]
        assert solutions and not [c for c in copy.cells if "solution" in _tags(c)]
        exercises = [c for c in original.cells if c.source.startswith("**Exercise")]
        assert [c.source for c in copy.cells if c.source.startswith("**Exercise")] == [c.source for c in exercises]
        assert sum("answer" in _tags(c) for c in copy.cells) == len(exercises)
        assert len(copy.cells) == len(original.cells) - len(solutions) + len(exercises)
        text = "\n".join(c.source for c in copy.cells)
        assert "*Solution.*" not in text
        assert all(c.source not in text for c in solutions if c.cell_type == "code")


def test_student_refuses_to_overwrite_the_notebooks():
    with pytest.raises(ValueError, match="notebooks folder itself"):
        student.write_student_copies(NOTEBOOK_DIR)


# ---------------------------------------------------------------- slides and the results report on a tiny run
def _png(width=40, height=30) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _executed(tmp_path) -> Path:
    """A run folder with one executed notebook shaped like the course's."""
    nb = nbformat.v4.new_notebook()
    code = lambda src, *outs, tags=(): nbformat.from_dict({**nbformat.v4.new_code_cell(src, outputs=list(outs)),
                                                          "metadata": {"tags": list(tags)}, "execution_count": 1})
    image = nbformat.v4.new_output("display_data", {"image/png": _png(), "text/plain": "<Figure>"})
    table = nbformat.v4.new_output("execute_result", {"text/html": "<table><tr><td>0.42</td></tr></table>",
                                                      "text/plain": "table"}, execution_count=1)
    nb.cells = [nbformat.v4.new_markdown_cell("# 0. A title\n\nWhy this matters."),
                code('run_dir = "runs/quick"', tags=["parameters"]),
                nbformat.v4.new_markdown_cell("## Setup\n\nHow to set up."),
                code("import helpers", nbformat.v4.new_output("stream", name="stderr", text="noisy-stderr-line\n")),
                nbformat.v4.new_markdown_cell("## Counts\n\nThe counts explained."),
                code("plots.counts()", image, nbformat.v4.new_output("stream", name="stderr", text="10%|#\r100%|##\n")),
                code("table", table),
                nbformat.v4.new_markdown_cell("**Takeaway:** the tail is long."),
                code("load()", nbformat.v4.new_output("stream", name="stdout", text="loaded 300 chips\n")),
                nbformat.v4.new_markdown_cell("**Exercise 1.** Change one thing."),
                code("secret_solution()", image, tags=["solution"])]
    nb.cells[-2].metadata["tags"] = ["exercise"]
    run = tmp_path / "run"
    (run / "notebooks").mkdir(parents=True)
    nbformat.write(nb, run / "notebooks" / "00_data_audit.ipynb")
    return run


def test_slide_types_are_inferred(tmp_path):
    run = _executed(tmp_path)
    nb = slides.deck_notebook(run / "notebooks" / "00_data_audit.ipynb")
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    assert kinds == ["slide", "skip", "skip", "skip", "slide", "-", "subslide", "fragment", "-", "-", "skip"]
    assert all(o.get("name") != "stderr" for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_deck_is_self_contained(tmp_path, reveal_js):
    run = _executed(tmp_path)
    deck, = slides.make_slides(run, log=lambda _: None)
    page = deck.read_text()
    assert "Reveal.initialize" in page and "reveal.js 5" in page           # reveal.js inlined, not linked
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page), "the deck links to the network"
    assert "secret_solution" not in page and "plots.counts()" not in page  # solutions skipped, code hidden
    assert "0.42" in page and "the tail is long" in page
    assert (run / "slides" / "index.html").read_text().count(".slides.html") == 1


def test_results_report_has_results_only(tmp_path):
    run = _executed(tmp_path)
    page = results_report.write_results(run, log=lambda _: None).read_text()
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page), "the results page links to the network"
    for absent in ("How to set up", "The counts explained", "plots.counts()", "secret_solution", "Change one thing",
                   "noisy-stderr-line", "100%|"):
        assert absent not in page, f"results.html shows {absent!r}"
    for present in ("0. A title", "Counts", "the tail is long", "0.42", "loaded 300 chips",
                    'href="report.html#00_data_audit"', 'href="notebooks/00_data_audit.ipynb"',
                    "Figure 1. Counts (notebook 00)"):
        assert present in page, f"results.html lacks {present!r}"
    assert page.count('src="data:image/png') == 1 and page.count('src="data:image/jpeg') == 1   # figure + thumbnail


def test_reports_refuse_an_empty_run(tmp_path):
    with pytest.raises(results_report.ReportError, match="make course"):
        results_report.write_results(tmp_path)
    with pytest.raises(slides.SlidesError, match="make course"):
        slides.make_slides(tmp_path)


# ---------------------------------------------------------------- explorers
def test_headless_detection(monkeypatch):
    monkeypatch.delenv("SAR_HEADLESS", raising=False)
    assert explorer.is_interactive() is False          # no kernel here
    monkeypatch.setenv("SAR_HEADLESS", "0")
    assert explorer.is_interactive() is True
    monkeypatch.setenv("SAR_HEADLESS", "1")
    assert explorer.is_interactive() is False


def test_mistakes_and_figure(tmp_path):
    y_true, y_pred = np.array([0, 1, 2, 2, 3]), np.array([0, 2, 2, 1, 3])
    assert explorer.mistakes(y_true, y_pred).tolist() == [1, 3]
    assert explorer.mistakes(y_true, y_pred, true_class=2).tolist() == [3]
    images = np.zeros((5, 1, 8, 8), dtype=np.uint8)
    fig = explorer.prediction_figure(y_true, y_pred, images, [str(c) for c in range(10)], "t")
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert "#1: 1 -> 2" in titles and "#3: 2 -> 1" in titles


def test_features_cache_round_trip(tmp_path):
    feats = {"stage1": np.arange(12.0).reshape(4, 3), "stage3b": np.ones((4, 3))}
    explorer.cache_features(tmp_path, feats, [0, 1, 0, 1])
    back, labels = explorer.load_features(tmp_path)
    assert labels.tolist() == [0, 1, 0, 1] and np.array_equal(back["stage1"], feats["stage1"])
    assert explorer.thin(10, 4).tolist() == [0, 3, 6, 9] and len(explorer.thin(10, None)) == 10


# ---------------------------------------------------------------- the smoke run executed it all
def test_smoke_run_executed_solutions_and_fallbacks(smoke_run):
    for nb in catalog.NOTEBOOKS:
        executed = json.loads((smoke_run / "notebooks" / f"{nb}.ipynb").read_text())
        solutions = [c for c in executed["cells"] if c["cell_type"] == "code" and "solution" in _tags(c)]
        assert solutions and all(c["execution_count"] for c in solutions), f"{nb}: a solution did not run"
        assert not [o for c in solutions for o in c["outputs"] if o["output_type"] == "error"]
    for name in ("misclassified_chips", "reembed_tsne_5"):   # the explorers' static views in a headless run
        assert_drawn(smoke_run / "figures" / f"{name}.png")
    assert (smoke_run / "features.npz").is_file() and (smoke_run / "results.html").is_file()


def test_readme_shows_committed_figures():
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r'<img src="(docs/figures/[^"]+\.png)"', readme)
    head = readme.split("\n## ")[0]
    assert 2 <= len([path for path in shown if path in head]) <= 3, "two or three figures near the top of the README"
    assert {"docs/figures/budget_sweep_synthetic-sar.png", "docs/figures/budget_sweep_digits-lt.png"} <= set(shown)
    for path in shown:
        data = (ROOT / path).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < 200_000, f"{path}: missing, not a PNG or too large"


def test_embedding_explorer_widgets(tmp_path, monkeypatch):
    monkeypatch.setenv("SAR_HEADLESS", "0")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 3)
    feats = {"stage1": rng.normal(size=(30, 8)), "stage3b": rng.normal(size=(30, 8)) + labels[:, None]}
    box = explorer.embedding_explorer(feats, labels, [str(c) for c in range(10)], tmp_path)
    method, param, go = box.children[0].children
    method.value = "UMAP"
    assert (param.description, param.value) == ("neighbours", 15)
    method.value = "t-SNE"
    param.value = 5
    go.click()
    assert_drawn(tmp_path / "figures" / "reembed_explorer.png")


def test_embedding_explorer_headless(tmp_path, monkeypatch):
    monkeypatch.setenv("SAR_HEADLESS", "1")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)
    path = explorer.embedding_explorer({"stage1": rng.normal(size=(40, 8))}, labels, [str(c) for c in range(10)],
                                       tmp_path, max_points=20)
    assert path == tmp_path / "figures" / "reembed_tsne_5.png"
    assert_drawn(path)
