"""The course site of a finished run: a static website with one page per executed notebook.

    python -m helpers.book [--name NAME] [--out DIR]

reads the executed notebooks of runs/<name>/notebooks/ and builds runs/<name>/book/ (or DIR) with
Sphinx, myst-nb and sphinx-book-theme: an index page (the run's machine and time, from env.json and
timings.json, and the notebooks in course order), one page per notebook with its outputs as executed
(myst-nb's nb_execution_mode "off": nothing is re-run), a sidebar, search and the figures. At the top
of each page: links to its executed .ipynb, its slide deck (if `make slides` made one) and the
results page, all copied into the site (under files/); the footer names the run's machine and time.
The notebooks' own navigation cells are left out (the sidebar and the next/previous links replace them),
and so is the cell that installs the package on a hosted kernel.

Nothing is loaded from the network, so the site opens from file://: the theme bundles its fonts and
icons, the ipywidgets manager (a CDN script) is switched off, and no notebook has maths (Sphinx adds
MathJax, from a CDN, only to a page with maths; tests/test_book.py would catch one).
"""
from __future__ import annotations

import argparse
import html
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import cli
from ..settings.catalog import INSTALL_TAG, NOTEBOOKS
from ..settings.paths import resolve_path
from .results_report import notebook_title

COURSE_TITLE = "Three-stage training for long-tailed SAR classification"
FILES = "files"          # the site's folder of copied files: notebooks/, slides/, results.html, report.html
LEFT_OUT_TAGS = {"navigation", INSTALL_TAG}   # the hosted-install cell does nothing here


class BookError(RuntimeError):
    """A missing or unfinished run folder, or a failed Sphinx build; the message says what to do."""


def run_notebooks(run_dir: Path) -> list[Path]:
    """The executed notebooks of a finished run, in course order."""
    again = f"run `make course NAME={run_dir.name}` first"
    if not run_dir.is_dir():
        raise BookError(f"{run_dir} does not exist: {again}")
    found = [run_dir / "notebooks" / f"{nb}.ipynb" for nb in NOTEBOOKS]
    found = [p for p in found if p.is_file()]
    if not found:
        raise BookError(f"{run_dir} has no executed notebooks: {again}")
    if not (run_dir / "results.html").is_file():
        raise BookError(f"{run_dir} has no results.html (the run did not finish): {again}")
    return found


def run_line(run_dir: Path) -> str:
    """The run's machine and time in one sentence, from env.json and timings.json."""
    env_path, timings_path = run_dir / "env.json", run_dir / "timings.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    machine = env.get("platform", "an unrecorded machine")
    details = [f"{env['device']}" if "device" in env else None,
               f"{env['torch_threads']} torch threads" if "torch_threads" in env else None,
               env.get("precision"), f"Python {env['python']}" if "python" in env else None,
               f"torch {env['torch']}" if "torch" in env else None]
    details = ", ".join(d for d in details if d)
    when = ""
    if timings_path.is_file():
        finished = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(timings_path.stat().st_mtime))
        when = f", finished {finished} ({len(timings)} notebooks in {sum(timings.values()):.0f} s)"
    commit = f", commit {env['git_commit'][:12]}" if env.get("git_commit") else ""
    return f"Run {run_dir.name}: executed on {machine}" + (f" ({details})" if details else "") + when + commit


def _link(href: str, text: str) -> str:
    return f'<a class="reference external" href="{html.escape(href)}">{html.escape(text)}</a>'


def page_links(stem: str, has_deck: bool) -> str:
    """The links at the top of a notebook page, as an HTML block (a raw link: Sphinx leaves it alone)."""
    links = [_link(f"{FILES}/notebooks/{stem}.ipynb", "executed notebook (.ipynb)")]
    if has_deck:
        links.append(_link(f"{FILES}/slides/{stem}.slides.html", "slide deck"))
    links.append(_link(f"{FILES}/results.html", "results of the run"))
    return f'<p class="book-links">{" · ".join(links)}</p>'


def page_notebook(path: Path, has_deck: bool):
    """A copy of the executed notebook for its page: the links on top, the navigation and install cells left out."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not LEFT_OUT_TAGS & set(c.metadata.get("tags", []))]
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(page_links(path.stem, has_deck)))
    nb.metadata.pop("widgets", None)   # no widget state to load: the site has no widget manager
    return nb


def index_page(run_dir: Path, notebooks: list[Path], titles: dict, has_slides: bool) -> str:
    timings_path = run_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    config_path = run_dir / "config.json"
    profile = json.loads(config_path.read_text()).get("profile") if config_path.is_file() else None
    rows = "\n".join(f"| [{titles[p.stem]}]({p.name}) | " + (f"{timings[p.stem]:.0f} s |" if p.stem in timings else "|")
                     for p in notebooks)
    files = [_link(f"{FILES}/results.html", "results only")]
    if (run_dir / "report.html").is_file():
        files.append(_link(f"{FILES}/report.html", "full report (one page)"))
    if has_slides:
        files.append(_link(f"{FILES}/slides/index.html", "slide decks"))
    toc = "\n".join(p.stem for p in notebooks)
    return (f"# {COURSE_TITLE}\n\n"
            f"The course's notebooks as run `{run_dir.name}`" + (f" (profile `{profile}`)" if profile else "")
            + f" executed them, with their outputs.\n\n"
            f"<p class=\"book-machine\">{html.escape(run_line(run_dir))}.</p>\n\n"
            f"| notebook | time |\n|---|---|\n{rows}\n\n"
            f"<p class=\"book-links\">{' · '.join(files)}</p>\n\n"
            f"```{{toctree}}\n:maxdepth: 1\n:caption: Notebooks\n:hidden:\n\n{toc}\n```\n")


def conf_py(run_dir: Path) -> str:
    footer = f"<p class=\"book-machine\">{html.escape(run_line(run_dir))}.</p>"
    settings = {
        "project": COURSE_TITLE, "html_title": f"{COURSE_TITLE}: run {run_dir.name}", "copyright": "",
        "extensions": ["myst_nb"],
        "nb_execution_mode": "off",              # the site shows the run's executed copies
        "nb_ipywidgets_js": {},                  # no widget manager from a CDN
        "html_theme": "sphinx_book_theme",
        "html_theme_options": {"extra_footer": footer, "use_download_button": False,
                               "use_fullscreen_button": False, "show_navbar_depth": 1,
                               "navbar_persistent": [],   # one search box (the sidebar's), not two
                               "footer_content_items": ["extra-footer.html"]},
        "html_extra_path": ["_extra"], "exclude_patterns": ["_extra", "_build"],
        "html_context": {"default_mode": "light"},   # unset, the theme's script logs an error on every page
        "html_show_search_summary": False,           # summaries are fetch()ed, which file:// refuses
        "html_copy_source": False, "html_show_sourcelink": False, "html_last_updated_fmt": None,
    }
    return "".join(f"{key} = {value!r}\n" for key, value in settings.items())


def write_source(run_dir: Path, src: Path) -> list[Path]:
    """The Sphinx source tree of the site in `src`; returns the notebooks it holds."""
    import nbformat
    notebooks = run_notebooks(run_dir)
    decks = run_dir / "slides"
    extra = src / "_extra" / FILES
    (extra / "notebooks").mkdir(parents=True)
    titles = {}
    for path in notebooks:
        has_deck = (decks / f"{path.stem}.slides.html").is_file()
        nb = page_notebook(path, has_deck)
        titles[path.stem] = notebook_title(nb, path.stem)
        nbformat.write(nb, src / path.name)
        shutil.copy(path, extra / "notebooks" / path.name)
    for name in ("results.html", "report.html"):
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, extra / name)
    has_slides = decks.is_dir() and any(decks.glob("*.slides.html"))
    if has_slides:
        shutil.copytree(decks, extra / "slides")
    (src / "index.md").write_text(index_page(run_dir, notebooks, titles, has_slides), encoding="utf-8")
    (src / "conf.py").write_text(conf_py(run_dir), encoding="utf-8")
    return notebooks


def _check_tools_and_out(out: Path) -> None:
    """Sphinx and its extensions are installed, and `out` is free or an old site (which the new one replaces)."""
    import importlib.util
    missing = [m for m in ("sphinx", "myst_nb", "sphinx_book_theme") if importlib.util.find_spec(m) is None]
    if missing:
        raise BookError(f"{', '.join(missing)} not installed: `make install` (or pip install -r requirements.txt)")
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / ".buildinfo").is_file()):
        raise BookError(f"{out} exists and is not a course site: give another --out (or remove it)")


def make_book(run_dir, out=None, log=print) -> Path:
    """Build the site of `run_dir` into `out` (default <run_dir>/book/); returns the path of its index.html."""
    run_dir = resolve_path(run_dir)
    out = resolve_path(out) if out else run_dir / "book"
    run_notebooks(run_dir)      # a missing or unfinished run fails here, before anything is written
    _check_tools_and_out(out)
    with tempfile.TemporaryDirectory(prefix="sar-book-") as tmp:
        src = Path(tmp) / "source"
        src.mkdir()
        notebooks = write_source(run_dir, src)
        built = Path(tmp) / "build" / "html"    # myst-nb writes build/jupyter_execute/ beside it: it stays in tmp
        done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", str(Path(tmp) / "doctrees"),
                               str(src), str(built)], capture_output=True, text=True)
        if done.returncode == 0:    # the old site goes only once the new one is built
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(built), str(out))
    problems = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    if done.returncode != 0:
        raise BookError(f"sphinx-build failed (exit {done.returncode}): {(problems or ['no output'])[-1]}")
    for line in problems:       # warnings: the site is built, but something in it may be off
        log(f"sphinx: {line}")
    index = out / "index.html"
    log(f"book: {len(notebooks)} notebook pages")
    log(str(index))
    return index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.book", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="quick", help="run folder runs/<name> (an absolute path is used as is)")
    parser.add_argument("--out", default=None,
                        help="where the site goes (default: runs/<name>/book/; relative to the project root)")
    args = parser.parse_args(argv)
    return cli.guarded(lambda: make_book(Path("runs") / args.name, args.out), BookError, 1, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
