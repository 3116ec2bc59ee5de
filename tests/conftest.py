"""Shared fixtures: tiny data (a few 16-px chips in tmp folders), tiny settings, one CPU thread.

Nothing here writes into the repository: every data set goes to a tmp folder (SAR_DATA_DIR is
pointed there by the `sar_data_dir` fixture, which each unit-test module uses).
"""
from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Two cores, often shared: one thread is both faster and steadier for these tiny models. The kernels and
# commands that the tests start inherit it, so that the suite's parallel workers do not fight over cores.
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"

from helpers.settings import config
from helpers.datasets.data import ChipSet, eval_transform, train_transform

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(data_size=100, val_per_class=2, test_per_class=2, image_size=16, batch_size=8)


def assert_drawn(path: Path, min_side: int = 200) -> None:
    """`path` is a PNG that decodes, at least `min_side` px a side, with a drawing on it (many grey levels,
    not one flat colour)."""
    with Image.open(path) as im:
        assert im.format == "PNG", f"{path}: not a PNG"
        assert min(im.size) >= min_side, f"{path}: only {im.size}"
        grey = im.convert("L")
        assert len(grey.getcolors(maxcolors=256)) > 16, f"{path}: blank or nearly so"


def assert_one_line(excinfo) -> str:
    """The helpers' errors are one line (README Troubleshooting quotes them)."""
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sar_data_cache")


@pytest.fixture
def sar_data_dir(session_cache, monkeypatch) -> Path:
    """Built-in data sets are generated in a tmp folder shared by the session, never in the repo."""
    monkeypatch.setenv("SAR_DATA_DIR", str(session_cache))
    return session_cache


@pytest.fixture
def tiny_settings():
    """Smoke settings made smaller still; keyword overrides as for config.resolve."""
    def make(**overrides):
        return config.resolve("smoke", **{**TINY, **overrides})
    return make


def chips(per_class, size: int = 16, seed: int = 0, transform: str = "train") -> ChipSet:
    """An in-memory ChipSet of random chips: `per_class` (an int or a list of ten counts)."""
    counts = [per_class] * 10 if isinstance(per_class, int) else list(per_class)
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(counts)])
    images = torch.randint(0, 256, (len(labels), 1, size, size), dtype=torch.uint8, generator=g)
    # Make classes slightly separable so a step of training changes something sensible.
    images[:, :, : size // 2] = (images[:, :, : size // 2] // 2 + (labels * 12).view(-1, 1, 1, 1)).to(torch.uint8)
    t = train_transform(size, 0.5, 0.25) if transform == "train" else eval_transform(0.5, 0.25)
    return ChipSet(images, labels, [f"chip{i}" for i in range(len(labels))], t)


@pytest.fixture
def tiny_chips():
    return chips


def write_image(path: Path, size: int = 20, mode: str = "L", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGB":
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(path)
    else:
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(path)
    return path


def make_folder_data(root: Path, per_class: int = 2, splits=("train", "val", "test"), classes=range(10),
                     size: int = 20) -> Path:
    """A MAVOC-style folder tree: <root>/<split>/<class>/<split>_<class>_<i>.png."""
    for split in splits:
        for c in classes:
            for i in range(per_class):
                write_image(root / split / str(c) / f"{split}_{c}_{i}.png", size=size, seed=zlib.crc32(f"{split}/{c}/{i}".encode()))
    return root


@pytest.fixture
def folder_data():
    return make_folder_data


@pytest.fixture
def image_writer():
    return write_image


@pytest.fixture(scope="session")
def reveal_js() -> Path:
    """reveal.js as `make install` fetched it into vendor/; the tests never fetch it themselves (no network).
    Missing: a failure in CI, a skip with the one-line hint elsewhere."""
    from helpers.publishing import slides
    root = slides.reveal_dir()
    if not (root / "dist" / "reveal.js").is_file():
        hint = f"reveal.js is not in {root}: `make install` (or `make reveal`) fetches it with npm"
        if os.environ.get("CI"):
            pytest.fail(hint)
        pytest.skip(hint)
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, session_cache):
    """The whole course once with the smoke profile (`python -m helpers.course`), into a tmp folder;
    shared by tests/test_notebooks.py and tests/test_browser.py. SAR_SMOKE_RUN=<folder of a finished
    smoke run> reuses that run instead (for iterating on the tests; the full suite makes its own)."""
    reuse = os.environ.get("SAR_SMOKE_RUN")
    if reuse:
        return Path(reuse)
    run = tmp_path_factory.mktemp("course") / "smoke"
    env = {**os.environ, "SAR_DATA_DIR": str(session_cache)}   # helpers: installed with pip install -e .
    before = git_status()
    result = subprocess.run([sys.executable, "-m", "helpers.course", "--profile", "smoke", "--name", str(run)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"the smoke course failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert str(run / "report.html") in result.stdout
    GIT_STATUS.update(before=before, after=git_status())
    return run


# The course on a user's archive tree (tests/test_tail.py, test_challenge.py): the notebooks that read the
# data, train on it, score it and predict it. Notebook 05 (Figure 2, a minute of t-SNE/UMAP), the stage
# ablations and the classifier learning-rate grid do not depend on the layout and run in the session's smoke
# course; here every classifier-only stage trains once, at stage3b_lr.
ARCHIVE_COURSE = ["--only", "00", "01", "02", "03", "04", "06", "-p", "notebook_ablations", "false",
                  "-p", "classifier_lr_grid", ""]


# ---------------------------------------------------------------- the browser (tests/test_browser.py, test_book.py)
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL = (f"Chromium is missing at {CHROMIUM}: install it with `apt-get update && apt-get install -y chromium` "
           f"(or set CHROMIUM=/path/to/chromium); the browser tests need it")


@pytest.fixture(scope="session")
def browser():
    """The Debian Chromium driven by Playwright, once per session: Playwright's sync API allows one at a time."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):              # CI installs it (.ci/run): missing there is a broken setup
            pytest.fail(INSTALL)
        pytest.skip(INSTALL)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield chromium
        chromium.close()


# Fixtures that cost minutes: every test that uses one is marked slow (`make test-fast` leaves it out).
SLOW_FIXTURES = {"smoke_run", "decks", "lab", "browser", "trained", "paper_runs"}


# `make test` runs the suite on pytest-xdist workers. Each scope below runs whole on one worker, so that
# a session or module fixture is built once: the files whose tests use the smoke course share the scope
# "smoke" (one smoke course per run); every other file is its own scope.
SMOKE_FIXTURES = {"smoke_run", "decks", "lab"}
SMOKE_FILES = {"test_book.py", "test_browser.py", "test_notebooks.py", "test_teaching.py"}


# The scopes that take a minute or more, longest first (measured with --durations on the 2-core machine):
# xdist hands scopes out in collection order, so these start first and the short files fill in after them
# (longest-processing-time-first), instead of one long scope starting last and running alone.
LONGEST_FIRST = ["smoke", "test_distributed.py", "test_tail.py", "test_compare.py", "test_challenge.py",
                 "test_input_size.py", "test_parallel_training.py", "test_submission.py", "test_budget.py"]


def _scope(path: Path) -> str:
    return "smoke" if path.name in SMOKE_FILES else path.name


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_scope(item.path), len(rank)))     # stable: the rest keep their order
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if SLOW_FIXTURES & used:
            item.add_marker(pytest.mark.slow)
        if SMOKE_FIXTURES & used and item.path.name not in SMOKE_FILES:
            raise pytest.UsageError(f"{item.nodeid} uses the smoke course: add {item.path.name} to "
                                    f"SMOKE_FILES in tests/conftest.py (one smoke course per run)")


try:
    from xdist.scheduler import LoadFileScheduling
except ImportError:                       # without pytest-xdist the suite runs in one process
    LoadFileScheduling = None

if LoadFileScheduling is not None:
    class SmokeTogether(LoadFileScheduling):
        """pytest-xdist's per-file scheduling, with the smoke-course files in one scope, handed out in the
        collection's order (LONGEST_FIRST) rather than by the number of tests in a scope."""

        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "smoke" if Path(path).name in SMOKE_FILES else path

    @pytest.hookimpl(optionalhook=True)      # `-p no:xdist` leaves the hook unknown: fine
    def pytest_xdist_make_scheduler(config, log):
        return SmokeTogether(config, log)


GIT_STATUS = {}      # the checkout's `git status` before and after the smoke run (the run must change nothing)


def git_status():
    """`git status --porcelain` of the checkout (ignored paths such as runs/ and data/ left out), or None."""
    try:
        r = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return r.stdout if r.returncode == 0 else None
