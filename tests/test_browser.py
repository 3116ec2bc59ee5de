"""The course in a real browser: Playwright driving the Debian Chromium (not Playwright's own download).

* the results-only report, the full report and every slide deck of the session's smoke run open
  from local files: every image loads, nothing is asked of the network, the console has no error,
  and the slides move forward;
* JupyterLab on a free local port runs notebook 04 through its menu (smoke profile, a copy of the
  smoke run folder): no cell shows an error, and the prediction explorer's widgets appear and react.

Chromium: /usr/bin/chromium (Debian: apt-get install -y chromium), or CHROMIUM=/path/to/chromium.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# the `browser` fixture (the Debian Chromium, one per session) is in tests/conftest.py
ROOT = Path(__file__).resolve().parents[1]
LAB_NOTEBOOK = "04_evaluation_tta.ipynb"


class Watched:
    """A fresh page that records console errors, uncaught exceptions and every request to the network."""

    def __init__(self, browser, local_port: int | None = None):
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.errors, self.requests, self.local_port = [], [], local_port
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route):
        url = route.request.url
        local = url.startswith(("file:", "data:", "blob:")) or (
            self.local_port and url.startswith(f"http://127.0.0.1:{self.local_port}/"))
        if local:
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def images(self) -> list[tuple[str, int]]:
        """(start of src, naturalWidth) of every <img> once decoded; 0 = broken."""
        self.page.wait_for_load_state("load")
        return self.page.evaluate("""() => Promise.all(Array.from(document.images).map(img =>
            img.decode().then(() => [img.src.slice(0, 50), img.naturalWidth], () => [img.src.slice(0, 50), 0])))""")

    def close(self):
        self.context.close()


@pytest.fixture(scope="session")
def decks(smoke_run, reveal_js):
    from helpers.publishing import slides
    return slides.make_slides(smoke_run, log=lambda _: None)


def _figures(run_dir: Path) -> list[Path]:
    """Figures the notebooks saved, exercises' solutions left out (the reports leave those out too)."""
    return [p for p in (run_dir / "figures").glob("*.png") if not p.name.startswith("exercise_")]


def _assert_clean(w: Watched, what: str):
    images = w.images()
    broken = [src for src, width in images if width == 0]
    assert not broken, f"{what}: {len(broken)} of {len(images)} images do not load: {broken[:3]}"
    assert not w.requests, f"{what} asked the network for {w.requests[:3]} (it must open offline)"
    assert not w.errors, f"{what}: console errors {w.errors[:3]}"
    return images


def test_results_report_in_browser(browser, smoke_run):
    w = Watched(browser)
    w.page.goto((smoke_run / "results.html").as_uri())
    images = _assert_clean(w, "results.html")
    gallery = w.page.locator(".gallery figure")
    figures = _figures(smoke_run)
    assert gallery.count() == len(figures) == len(images) - gallery.count(), \
        "results.html should show every saved figure once in the text and once in the gallery"
    captions = w.page.locator(".gallery figcaption").all_inner_texts()
    assert all(re.fullmatch(r"Figure \d+\. .+ \(notebook 0\d\)", c) for c in captions), captions[:3]
    assert w.page.locator(".jp-CodeCell .jp-InputArea").count() == 0, "results.html shows code"
    for nb in ("00_data_audit", "05_feature_plots"):
        assert w.page.locator(f'a[href="report.html#{nb}"]').count() == 1
        assert w.page.locator(f'a[href="notebooks/{nb}.ipynb"]').count() == 1
    w.page.locator(".gallery a").first.click()   # a thumbnail jumps to its figure in the text
    assert w.page.evaluate("location.hash") == "#fig-1"
    w.close()


def test_full_report_in_browser(browser, smoke_run):
    w = Watched(browser)
    w.page.goto((smoke_run / "report.html").as_uri())
    images = _assert_clean(w, "report.html")
    assert len(images) >= len(_figures(smoke_run))
    assert w.page.locator(".jp-CodeCell .jp-InputArea").count() > 10, "the full report shows the code"
    w.close()


@pytest.mark.parametrize("notebook", ["00_data_audit", "04_evaluation_tta", "05_feature_plots"])
def test_slide_deck_in_browser(browser, decks, notebook):
    deck = next(d for d in decks if d.name.startswith(notebook))
    w = Watched(browser)
    w.page.goto(deck.as_uri())
    w.page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=15000)
    _assert_clean(w, deck.name)
    assert w.page.evaluate("Reveal.getTotalSlides()") >= 5
    assert w.page.locator("section .jp-CodeCell .jp-InputArea").count() == 0, "code is shown although it should be hidden"
    assert w.page.locator("section img").count() >= 2
    seen = [w.page.evaluate("Reveal.getProgress()")]
    for _ in range(3):
        w.page.keyboard.press("ArrowRight")
        w.page.wait_for_timeout(150)
        seen.append(w.page.evaluate("Reveal.getProgress()"))
    assert seen == sorted(seen) and seen[-1] > seen[0], f"the arrow key does not move the deck forward: {seen}"
    assert not w.errors
    w.close()


# ---------------------------------------------------------------- JupyterLab
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(folder: Path) -> Path:
    """User settings: every cell in the page (no windowing), and no news or update checks."""
    settings = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
                "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                    {"fetchNews": "false", "checkForUpdates": False}}
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return folder


def _point_at(notebook: Path, run_dir: Path) -> None:
    """Edit the copy's parameters cell: this run folder, smoke profile."""
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    source = re.sub(r'^run_dir = .*$', f'run_dir = "{run_dir}"', source, count=1, flags=re.M)
    source = re.sub(r'^profile = .*$', 'profile = "smoke"', source, count=1, flags=re.M)
    cell["source"] = source
    notebook.write_text(json.dumps(nb, indent=1))


@pytest.fixture
def lab(tmp_path, smoke_run, session_cache):
    """JupyterLab on a free port (no token) over a tmp folder holding a copy of one notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run, ignore=shutil.ignore_patterns("notebooks", "slides", "*.html"))
    shutil.copy(ROOT / "notebooks" / LAB_NOTEBOOK, root / LAB_NOTEBOOK)
    _point_at(root / LAB_NOTEBOOK, run)
    (root / "helpers").symlink_to(ROOT / "helpers", target_is_directory=True)   # the set-up cell finds it
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SAR_DATA_DIR": str(session_cache),
           "JUPYTERLAB_SETTINGS_DIR": str(_lab_settings(tmp_path / "settings")),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           # As the course runner does: idle OpenMP threads must not spin on two shared cores (with a browser).
           "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    env.pop("SAR_HEADLESS", None)
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                             "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
                             "--ServerApp.port_retries=0", "--LabApp.news_url=None", "--allow-root"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-1500:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer on {url} within 60 s")
        yield url, port, root
    finally:
        _stop(proc)
        log.close()


def _stop(proc) -> None:
    """End JupyterLab and its kernels (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _prompts(page) -> list[str]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'))
        .map(e => e.textContent.trim())""")


def test_notebook_runs_in_jupyterlab(browser, lab):
    url, port, root = lab
    w = Watched(browser, local_port=port)
    page = w.page
    page.goto(f"{url}/lab/tree/{LAB_NOTEBOOK}?reset")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60000)
    page.wait_for_function("() => document.querySelector('.jp-StatusBar-Widget') && "
                           "document.body.innerText.includes('| Idle')", timeout=90000)   # kernel ready
    for attempt in range(2):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function("() => /\\[(\\*|\\d+)\\]/.test(document.querySelector("
                                   "'.jp-Notebook .jp-CodeCell .jp-InputPrompt').textContent)", timeout=30000)
            break
        except Exception:
            if attempt:
                page.screenshot(path=str(root.parent / "lab.png"))
                pytest.fail(f"Run > Run All Cells started nothing in JupyterLab (screenshot {root.parent / 'lab.png'})")
    deadline, quiet = time.time() + 300, 0
    while time.time() < deadline:
        prompts = _prompts(page)
        busy = any("*" in p for p in prompts)
        quiet = 0 if busy or not re.fullmatch(r"\[\d+\]:", prompts[0]) else quiet + 1
        if quiet >= 3:
            break
        page.wait_for_timeout(1000)
    else:
        pytest.fail(f"the notebook did not finish in JupyterLab within 300 s: prompts {prompts}")
    prompts = _prompts(page)
    shown_errors = page.locator(".jp-OutputArea-output .ansi-red-fg, .jp-OutputArea-output:has-text('Traceback')")
    assert shown_errors.count() == 0, f"a cell shows an error: {shown_errors.first.inner_text()[:800]}"
    assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"not every cell ran: {prompts}"

    # The explorer: widgets in Lab (not the static fallback), and they react.
    selects = page.locator(".jp-OutputArea .widget-dropdown select")
    assert selects.count() >= 2, "the prediction explorer shows no dropdowns in JupyterLab"
    explorer = page.locator(".jp-OutputArea .widget-output").first
    explorer.locator("img").first.wait_for(timeout=30000)
    before = explorer.locator("img").first.get_attribute("src")
    selects.first.select_option("stage1")
    page.wait_for_function("""(before) => { const img = document.querySelector('.jp-OutputArea .widget-output img');
        return img && img.src !== before; }""", arg=before, timeout=60000)

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save Notebook$")).click()
    for _ in range(40):   # the saved file: every code cell executed, none with an error output
        try:
            saved = json.loads((root / LAB_NOTEBOOK).read_text())
        except json.JSONDecodeError:   # caught mid-write
            continue
        codes = [c for c in saved["cells"] if c["cell_type"] == "code"]
        if all(c["execution_count"] for c in codes):
            break
        page.wait_for_timeout(250)
    else:
        pytest.fail("JupyterLab did not save the executed notebook")
    errors = [o for c in saved["cells"] if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{errors[0]['ename']}: {errors[0]['evalue']}"
    assert not w.requests, f"JupyterLab asked the network for {w.requests[:3]}"
    w.close()
