"""The course site (`make book`, helpers/publishing/book.py) of the session's smoke run, in a real browser.

Built into a tmp folder and opened from file:// with the Debian Chromium, as tests/test_browser.py opens
the reports (its `browser` fixture and `Watched` page, which refuses and records every request outside
file://): every page loads with no console error and no network request, every image decodes, the
sidebar lists the notebooks in course order, search finds notebook 03, and the links at the top of each
notebook page (notebook, slide deck, results) point to files inside the site. A missing or unfinished
run folder is a one-line error (no browser).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import assert_one_line
from helpers.publishing import book, slides
from helpers.settings.catalog import NOTEBOOKS
from test_browser import Watched, _assert_clean    # `browser`: the session's Chromium, tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
SEARCH_WORD = "decoupling"       # in notebook 03's markdown only
SEARCH_PAGE = "03_stage3_balanced_finetune"


@pytest.fixture(scope="module")
def site(smoke_run, tmp_path_factory) -> Path:
    """The site of the smoke run; the run gets its slide decks first (as `make slides` would) when reveal.js is
    there, so that the deck links are checked too."""
    has_reveal = slides.reveal_dir().joinpath("dist", "reveal.js").is_file()
    if has_reveal and not any((smoke_run / "slides").glob("*.slides.html")):
        slides.make_slides(smoke_run, log=lambda _: None)
    index = book.make_book(smoke_run, tmp_path_factory.mktemp("book") / "site", log=lambda _: None)
    assert index.is_file()
    assert not (smoke_run / "jupyter_execute").exists(), "the build left myst-nb's jupyter_execute/ in the run folder"
    return index.parent


def _notebooks(run: Path) -> list[str]:
    return [nb for nb in NOTEBOOKS if (run / "notebooks" / f"{nb}.ipynb").is_file()]


def _has_figures(run: Path, nb: str) -> bool:
    cells = json.loads((run / "notebooks" / f"{nb}.ipynb").read_text())["cells"]
    return any("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))


def _open(browser, page: Path) -> Watched:
    w = Watched(browser)
    w.page.goto(page.as_uri())
    w.page.wait_for_load_state("load")
    return w


def test_missing_or_unfinished_run_is_one_line(tmp_path, capsys):
    with pytest.raises(book.BookError) as e:
        book.make_book(tmp_path / "nowhere", tmp_path / "out")
    assert "nowhere" in assert_one_line(e) and "make course NAME=nowhere" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(book.BookError) as e:
        book.make_book(tmp_path / "empty")
    assert "has no executed notebooks" in assert_one_line(e)
    (tmp_path / "half" / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / f"{NOTEBOOKS[0]}.ipynb", tmp_path / "half" / "notebooks")
    with pytest.raises(book.BookError) as e:
        book.make_book(tmp_path / "half")
    assert "results.html" in assert_one_line(e) and str(tmp_path / "half") in str(e.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "half" / "book").exists()
    (tmp_path / "half" / "results.html").write_text("<html></html>")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("not a site")
    with pytest.raises(book.BookError) as e:      # a folder that is not an old site is never replaced
        book.make_book(tmp_path / "half", tmp_path / "mine")
    assert "is not a course site" in assert_one_line(e) and (tmp_path / "mine" / "keep.txt").is_file()
    assert book.main(["--name", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_every_page_loads_offline_with_its_figures(browser, site, smoke_run):
    for page in ["index", *_notebooks(smoke_run)]:
        w = _open(browser, site / f"{page}.html")
        _assert_clean(w, f"book page {page}")
        if page != "index" and _has_figures(smoke_run, page):
            assert w.page.locator("article img").count() >= 1, f"book page {page} shows none of its figures"
        assert "Run " in w.page.locator(".book-machine").last.inner_text(), f"book page {page}: no run line"
        w.close()


def test_sidebar_lists_the_notebooks_in_course_order(browser, site, smoke_run):
    for page in ("index", SEARCH_PAGE):
        w = _open(browser, site / f"{page}.html")
        hrefs = w.page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal", "els => els.map(a => a.href)")
        names = [Path(urlparse(h).path).stem for h in hrefs]
        names = [SEARCH_PAGE if h.endswith("#") else n for h, n in zip(hrefs, names)]   # the current page
        assert names == _notebooks(smoke_run), f"sidebar of {page}: {names}"
        w.close()


def test_search_finds_notebook_03(browser, site):
    w = Watched(browser)
    w.page.goto(f"{(site / 'search.html').as_uri()}?q={SEARCH_WORD}")
    w.page.wait_for_function("() => document.querySelectorAll('#search-results ul.search li').length > 0",
                             timeout=15000)
    found = w.page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(a => a.href)")
    assert any(Path(urlparse(h).path).stem == SEARCH_PAGE for h in found), f"search for {SEARCH_WORD!r}: {found}"
    assert not w.requests and not w.errors, (w.requests[:3], w.errors[:3])
    w.close()


def test_page_links_point_to_files_in_the_site(browser, site, smoke_run):
    for nb in _notebooks(smoke_run):
        w = _open(browser, site / f"{nb}.html")
        hrefs = w.page.eval_on_selector_all(".book-links a", "els => els.map(a => a.href)")
        targets = [Path(unquote(urlparse(h).path)) for h in hrefs]
        expected = {f"{nb}.ipynb", "results.html"} | (
            {f"{nb}.slides.html"} if (smoke_run / "slides" / f"{nb}.slides.html").is_file() else set())
        assert {t.name for t in targets} == expected, f"book page {nb} links {hrefs}"
        missing = [str(t) for t in targets if not t.is_file() or site.resolve() not in t.resolve().parents]
        assert not missing, f"book page {nb} links to files that are not in the site: {missing}"
        w.close()
