"""reveal.js slide decks from a finished run: one self-contained HTML file per notebook.

    python -m helpers.slides [--name NAME] [--code] [--only NOTEBOOK ...]

reads the executed notebooks of runs/<name>/notebooks/ and writes runs/<name>/slides/<notebook>.slides.html
and runs/<name>/slides/index.html (a list of the decks). Cells carry `metadata.slideshow.slide_type`
(title slide, one figure per slide, takeaways as fragments, set-up code skipped); code is hidden
unless --code is given.

reveal.js is bundled, not fetched: `fetch_reveal` takes the npm package `reveal.js` (REVEAL_VERSION)
with `npm pack` once into vendor/ (ignored by git), and every deck inlines its css and js, so a deck
opens from a local file with no network. Keys: arrows or space move, `s` opens the speaker view,
`?` lists the keys.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from . import cli
from ..settings.catalog import INSTALL_TAG
from ..settings.paths import PROJECT_ROOT, resolve_path
from .results_report import notebook_title

REVEAL_VERSION = "5.2.1"
VENDOR_DIR = PROJECT_ROOT / "vendor"
TEMPLATES = Path(__file__).with_name("templates")
THEME = "white"


class SlidesError(RuntimeError):
    """A missing run folder, notebook or reveal.js; the message says what to do."""


def reveal_dir() -> Path:
    return VENDOR_DIR / f"reveal.js-{REVEAL_VERSION}"


def fetch_reveal(quiet: bool = False) -> Path:
    """vendor/reveal.js-<REVEAL_VERSION>/ (the npm package's files), fetched with `npm pack` if missing."""
    target = reveal_dir()
    if (target / "dist" / "reveal.js").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SlidesError(f"reveal.js {REVEAL_VERSION} is not in {VENDOR_DIR} and npm is missing: install Node.js "
                          f"and npm (Debian: apt-get install -y npm), then run `make reveal`")
    if not quiet:
        print(f"fetching reveal.js {REVEAL_VERSION} with npm into {target} (once)")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", "--silent", f"reveal.js@{REVEAL_VERSION}", "--pack-destination", tmp],
                              capture_output=True, text=True)
        packs = list(Path(tmp).glob("reveal.js-*.tgz"))
        if done.returncode != 0 or not packs:
            raise SlidesError(f"`npm pack reveal.js@{REVEAL_VERSION}` failed: "
                              f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        with tarfile.open(packs[0]) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}   # Python >= 3.11.4
            tar.extractall(tmp, **safe)
        VENDOR_DIR.mkdir(exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(Path(tmp) / "package"), target)
    return target


def offline_assets(root: Path | None = None) -> dict:
    """reveal.js's css, theme and js (and its speaker-notes plugin) as strings, ready to inline.

    The theme's @import of web fonts is dropped: it would be a request; the deck falls back to the
    theme's sans-serif font list.
    """
    root = root or fetch_reveal()
    read = lambda rel: (root / rel).read_text(encoding="utf-8")
    theme = re.sub(r"@import\s+url\([^)]*\)\s*;", "", read(f"dist/theme/{THEME}.css"))
    assets = {"reveal_css": read("dist/reveal.css"), "theme_css": theme,
              "reveal_js": read("dist/reveal.js"), "notes_js": read("plugin/notes/notes.js")}
    for name, text in assets.items():
        closing = "</script" if name.endswith("_js") else "</style"
        if closing in text.lower():
            raise SlidesError(f"reveal.js {REVEAL_VERSION} {name} cannot be inlined (it contains a closing tag)")
    return assets


def slides_exporter(show_code: bool = False):
    """nbconvert's SlidesExporter with the offline template of helpers/publishing/templates/offline_reveal."""
    from nbconvert import SlidesExporter
    exporter = SlidesExporter(template_name="offline_reveal", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    exporter.reveal_theme = THEME
    exporter.reveal_scroll = True
    return exporter


SKIP_TAGS = {"parameters", "injected-parameters", "solution", "navigation", INSTALL_TAG}


def deck_notebook(path: Path):
    """The executed notebook, ready for a deck: noise outputs (progress bars, widget views, stderr)
    dropped and every cell given a slide type (`infer_slide_types`)."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _noise(o)]
    nb.metadata.pop("widgets", None)
    nb.metadata["title"] = notebook_title(nb, path.stem)
    infer_slide_types(nb)
    return nb


def _big(output) -> bool:
    return any(k in output.get("data", {}) for k in ("image/png", "image/svg+xml", "text/html"))


def infer_slide_types(nb) -> None:
    """Give every cell without `metadata.slideshow.slide_type` one, in place:

    the first cell is the title slide; a "## " heading starts a slide; a figure or table starts a
    sub-slide when the current one already holds one (one figure per slide); a takeaway is a
    fragment; the parameters, the "## Setup" section, solutions, navigation and code cells with no
    output left are skipped. A slide type set in the notebook wins (except that solutions and
    navigation are always skipped).
    """
    heading, has_big = "", False
    for i, cell in enumerate(nb.cells):
        text = cell.source.lstrip()
        if cell.cell_type == "markdown" and text.startswith("## "):
            heading, has_big = text.splitlines()[0][3:].strip().lower(), False
        explicit = cell.metadata.get("slideshow", {}).get("slide_type")
        big = cell.cell_type == "code" and any(_big(o) for o in cell.outputs)
        if SKIP_TAGS & set(cell.metadata.get("tags", [])):
            kind = "skip"
        elif explicit:
            kind = explicit
        elif i == 0:
            kind = "slide"
        elif heading == "setup" or (cell.cell_type == "code" and not cell.outputs):
            kind = "skip"
        elif cell.cell_type == "markdown" and text.startswith("## "):
            kind = "slide"
        elif cell.cell_type == "markdown":
            kind = "fragment" if text.startswith("**Takeaway") else "-"
        else:
            kind = "subslide" if big and has_big else "-"
        if kind in ("slide", "subslide"):
            has_big = False
        has_big = has_big or (big and kind != "skip")
        cell.metadata["slideshow"] = {"slide_type": kind}


def _noise(output) -> bool:
    if output.get("output_type") == "stream":
        return output.get("name") == "stderr"
    data = output.get("data", {})
    return "application/vnd.jupyter.widget-view+json" in data or output.get("output_type") == "error"


def executed_notebooks(run_dir: Path, only=None) -> list[Path]:
    from ..settings.catalog import NOTEBOOKS
    folder = run_dir / "notebooks"
    if not folder.is_dir():
        raise SlidesError(f"no executed notebooks in {folder}: run the course first (make course NAME={run_dir.name})")
    names = [nb for nb in NOTEBOOKS if not only or any(nb == o or nb.startswith(o) for o in only)]
    found = [folder / f"{nb}.ipynb" for nb in names if (folder / f"{nb}.ipynb").is_file()]
    if not found:
        raise SlidesError(f"none of {', '.join(only or names)} is in {folder}; valid notebooks: {', '.join(NOTEBOOKS)}")
    return found


def make_slides(run_dir, show_code: bool = False, only=None, log=print) -> list[Path]:
    """One deck per executed notebook in <run_dir>/slides/, plus an index page; returns the deck paths."""
    run_dir = resolve_path(run_dir)
    notebooks = executed_notebooks(run_dir, only)
    exporter = slides_exporter(show_code)
    assets = offline_assets()
    out = run_dir / "slides"
    out.mkdir(exist_ok=True)
    decks = []
    for path in notebooks:
        nb = deck_notebook(path)
        body, _ = exporter.from_notebook_node(nb, resources={"offline": assets, "metadata": {"name": path.stem}})
        deck = out / f"{path.stem}.slides.html"
        deck.write_text(body, encoding="utf-8")
        decks.append(deck)
        log(f"slides: {deck}")
    _write_index(out, decks, run_dir)
    return decks


def _write_index(out: Path, decks: list[Path], run_dir: Path) -> Path:
    items = "\n".join(f'<li><a href="{d.name}">{html.escape(d.name.removesuffix(".slides.html"))}</a></li>'
                      for d in decks)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Slides: {html.escape(run_dir.name)}'
            f'</title></head><body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">'
            f'<h1>Slides of run {html.escape(run_dir.name)}</h1><ol>{items}</ol>'
            f'<p>Arrow keys or space move; <kbd>s</kbd> opens the speaker view; <kbd>?</kbd> lists the keys.</p>'
            f'</body></html>')
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.slides", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="quick", help="run folder runs/<name> (an absolute path is used as is)")
    parser.add_argument("--code", action="store_true", help="show the code cells too (hidden by default)")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="only these notebooks (name or prefix)")
    parser.add_argument("--fetch-only", action="store_true", help="only fetch reveal.js into vendor/")
    args = parser.parse_args(argv)
    if args.fetch_only:
        return cli.guarded(lambda: print(fetch_reveal()), SlidesError, 1, "interrupted")
    return cli.guarded(lambda: make_slides(Path("runs") / args.name, show_code=args.code, only=args.only),
                       SlidesError, 1, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
