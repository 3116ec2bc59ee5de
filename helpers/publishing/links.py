"""Where a learner opens the course: the notebooks' install cell and the README's Colab / Binder links.

    python -m helpers.publishing.links --check    # do the notebooks and the README agree with pyproject.toml?
    python -m helpers.publishing.links --write    # rewrite them from it

One setting: `[project.urls] Repository` in pyproject.toml.  Every notebook's first code cell (tag
INSTALL_TAG) installs the package on a hosted kernel that does not have it (Colab, Binder, a hub): from
the checkout the notebook sits in, or else from a clone of the repository; with `pip install -e`, whose
lower bounds keep the kernel's own torch.  Where `helpers` is importable, the cell does nothing.
The README's table of links sits between LINKS_START and LINKS_END.
"""
from __future__ import annotations

import argparse
import json
import sys
import tomllib
from urllib.parse import quote

from ..settings.catalog import INSTALL_TAG, NOTEBOOK_DIR, NOTEBOOKS
from ..settings.paths import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
LINKS_START, LINKS_END = "<!-- links: start (python -m helpers.publishing.links --write) -->", "<!-- links: end -->"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"

INSTALL_CELL = '''\
# On Colab, Binder or a hub without the course package, this cell installs it (next to the kernel's
# own torch: the package asks for lower bounds only); where `helpers` is importable it does nothing.
import importlib.util, pathlib, subprocess, sys
if importlib.util.find_spec("helpers") is None:
    home = pathlib.Path.cwd().parent                        # the checkout this notebook sits in
    if not (home / "helpers" / "lessons").is_dir():
        home = pathlib.Path("{name}").resolve()
        if not home.is_dir():
            subprocess.run(["git", "clone", "--depth", "1", "{repository}", str(home)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", str(home)], check=True)
    sys.path.insert(0, str(home))'''


class LinksError(RuntimeError):
    """pyproject.toml has no repository URL, or it is not a GitHub one."""


def repository() -> str:
    """The repository URL from pyproject.toml, e.g. https://github.com/owner/name."""
    path = PROJECT_ROOT / "pyproject.toml"
    if not path.is_file():
        raise LinksError(f"{path} is missing: the links are built from a checkout of the repository")
    url = tomllib.loads(path.read_text()).get("project", {}).get("urls", {}).get("Repository", "")
    if not url.startswith("https://github.com/") or url.rstrip("/").count("/") != 4:
        raise LinksError(f"pyproject.toml [project.urls] Repository = {url!r}: expected https://github.com/<owner>/<name>")
    return url.rstrip("/")


def _slug(url: str) -> str:
    return url.removeprefix("https://github.com/")


def install_cell(url: str | None = None) -> str:
    url = url or repository()
    return INSTALL_CELL.format(repository=url, name=_slug(url).split("/")[1])


def colab(notebook: str, url: str | None = None) -> str:
    return f"https://colab.research.google.com/github/{_slug(url or repository())}/blob/main/notebooks/{notebook}.ipynb"


def binder(notebook: str, url: str | None = None) -> str:
    return f"https://mybinder.org/v2/gh/{_slug(url or repository())}/HEAD?labpath={quote(f'notebooks/{notebook}.ipynb', safe='')}"


def readme_table(url: str | None = None) -> str:
    url = url or repository()
    rows = [f"| `{nb}` | [![Open in Colab]({COLAB_BADGE})]({colab(nb, url)}) | "
            f"[![Binder]({BINDER_BADGE})]({binder(nb, url)}) |" for nb in NOTEBOOKS]
    return "\n".join([LINKS_START, "| notebook | Colab | Binder |", "|---|---|---|", *rows, LINKS_END])


def _cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {"tags": [INSTALL_TAG]},
            "outputs": [], "source": source.splitlines(keepends=True)}


def with_install_cell(nb: dict, source: str, cell_id: str = INSTALL_TAG) -> dict:
    """`nb` whose first code cell is the install cell (replaced if there is one, else put before the others);
    `cell_id` unique across the course (the full report puts every notebook in one page)."""
    cells = [c for c in nb["cells"] if INSTALL_TAG not in c.get("metadata", {}).get("tags", [])]
    first = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    return {**nb, "cells": cells[:first] + [_cell(source, cell_id)] + cells[first:]}


def cell_id(notebook: str) -> str:
    """The install cell's id in `notebook`: "00-install" ..., in the style of the notebooks' other ids."""
    return f"{notebook[:2]}-install"


def _readme_with(text: str, table: str) -> str:
    if LINKS_START not in text or LINKS_END not in text:
        raise LinksError(f"{README.name} has no links block: put the lines {LINKS_START!r} and {LINKS_END!r} where it goes")
    head, rest = text.split(LINKS_START, 1)
    return head + table + rest.split(LINKS_END, 1)[1]


def stale() -> list[str]:
    """The files that do not match pyproject.toml's repository (empty: all agree)."""
    url, out = repository(), []
    for nb in NOTEBOOKS:
        path = NOTEBOOK_DIR / f"{nb}.ipynb"
        notebook = json.loads(path.read_text())
        if with_install_cell(notebook, install_cell(url), cell_id(nb)) != notebook:
            out.append(str(path.relative_to(PROJECT_ROOT)))
    if _readme_with(README.read_text(), readme_table(url)) != README.read_text():
        out.append(README.name)
    return out


def write() -> list[str]:
    url, written = repository(), stale()
    for nb in NOTEBOOKS:
        path = NOTEBOOK_DIR / f"{nb}.ipynb"
        if str(path.relative_to(PROJECT_ROOT)) in written:
            notebook = with_install_cell(json.loads(path.read_text()), install_cell(url), cell_id(nb))
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    if README.name in written:
        README.write_text(_readme_with(README.read_text(), readme_table(url)))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.publishing.links", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="say which files disagree (the default; exit 1 if any)")
    mode.add_argument("--write", action="store_true", help="rewrite the notebooks' install cells and the README's links")
    args = parser.parse_args(argv)
    try:
        files = write() if args.write else stale()
    except LinksError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.write:
        print("rewrote: " + ", ".join(files) if files else "nothing to rewrite")
        return 0
    if files:
        print("out of date (python -m helpers.publishing.links --write): " + ", ".join(files), file=sys.stderr)
        return 1
    print(f"the notebooks and the README agree with {repository()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
