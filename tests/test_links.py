"""Where learners open the course: the notebooks' install cell and the README's Colab / Binder links,
all built from pyproject.toml's repository URL (helpers/publishing/links.py)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from helpers.publishing import links
from helpers.settings.catalog import INSTALL_TAG, NOTEBOOK_DIR, NOTEBOOKS

URL = "https://github.com/someone/sar-course"


def test_notebooks_and_readme_agree_with_pyproject():
    assert links.stale() == [], "run python -m helpers.publishing.links --write"
    readme = links.README.read_text()
    for nb in NOTEBOOKS:
        first = next(c for c in json.loads((NOTEBOOK_DIR / f"{nb}.ipynb").read_text())["cells"] if c["cell_type"] == "code")
        assert first["metadata"]["tags"] == [INSTALL_TAG] and "".join(first["source"]) == links.install_cell()
        assert links.colab(nb) in readme and links.binder(nb) in readme


def test_links_are_built_from_the_url():
    assert links.colab("04_evaluation_tta", URL) == \
        "https://colab.research.google.com/github/someone/sar-course/blob/main/notebooks/04_evaluation_tta.ipynb"
    assert links.binder("04_evaluation_tta", URL) == \
        "https://mybinder.org/v2/gh/someone/sar-course/HEAD?labpath=notebooks%2F04_evaluation_tta.ipynb"
    cell = links.install_cell(URL)
    assert f'"{URL}"' in cell and 'pathlib.Path("sar-course")' in cell


def test_the_install_cell_is_replaced_not_added_twice():
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
                    {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["x = 1"], "outputs": []}]}
    once = links.with_install_cell(nb, links.install_cell(URL))
    assert [c["metadata"].get("tags") for c in once["cells"]] == [None, [INSTALL_TAG], ["parameters"]]
    assert links.with_install_cell(once, links.install_cell(URL)) == once
    other = links.with_install_cell(once, links.install_cell("https://github.com/other/name"))
    assert len(other["cells"]) == 3 and "other/name" in "".join(other["cells"][1]["source"])


def test_a_bad_repository_url_is_one_line(monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://gitlab.com/a/b"\n')
    monkeypatch.setattr(links, "PROJECT_ROOT", tmp_path)
    with pytest.raises(links.LinksError, match="expected https://github.com/<owner>/<name>") as e:
        links.repository()
    assert "\n" not in str(e.value)


def _run_cell(monkeypatch, cwd: Path, importable: bool) -> list:
    """Execute the install cell in `cwd` with `helpers` (not) importable; the commands it would run."""
    calls = []
    monkeypatch.chdir(cwd)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: real(name, *a) if importable or name != "helpers" else None)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd]))
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    exec(links.install_cell(URL), {})
    return calls


def test_the_install_cell_does_nothing_where_the_package_is_importable(monkeypatch, tmp_path):
    assert _run_cell(monkeypatch, tmp_path, importable=True) == []


def test_the_install_cell_installs_the_checkout_it_sits_in(monkeypatch, tmp_path):
    (tmp_path / "repo" / "helpers" / "lessons").mkdir(parents=True)
    (tmp_path / "repo" / "notebooks").mkdir()
    calls = _run_cell(monkeypatch, tmp_path / "repo" / "notebooks", importable=False)
    assert len(calls) == 1 and calls[0][1:] == ["-m", "pip", "install", "--quiet", "-e", str(tmp_path / "repo")]


def test_the_install_cell_clones_on_a_bare_hosted_kernel(monkeypatch, tmp_path):
    calls = _run_cell(monkeypatch, tmp_path, importable=False)
    assert calls[0] == ["git", "clone", "--depth", "1", URL, str(tmp_path / "sar-course")]
    assert calls[1][-2:] == ["-e", str(tmp_path / "sar-course")]


def test_the_readme_is_short_and_its_links_resolve():
    root = links.PROJECT_ROOT
    readme = links.README.read_text()
    assert len(readme.splitlines()) <= 150, "the README is for a newcomer: move long sections into docs/"
    import re
    for page in [links.README, *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r'\]\(([^)#\s]+)[^)]*\)|src="([^"]+)"', page.read_text()):
            target = next(t for t in target if t)
            if not target.startswith(("http://", "https://", "mailto:")):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
