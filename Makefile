# Two commands a newcomer needs:  make course   and   make test
#
# Inside an activated conda environment (e.g. `conda env create -f environment.yml && conda activate
# sar-three-stage`) everything runs in that environment; otherwise a virtual environment is built in
# .venv from requirements.txt.  Either way `pip install -e .` installs the `helpers` package and
# `python -m helpers.course --install-kernel` registers the environment's Jupyter kernel.
PYTHON ?= python3
PROFILE ?= quick
NAME   ?= $(PROFILE)

ifneq ($(and $(CONDA_PREFIX),$(filter-out base,$(CONDA_DEFAULT_ENV))),)
# an active conda environment other than base
ENV_DIR := $(CONDA_PREFIX)
PY      := $(CONDA_PREFIX)/bin/python
MAKE_ENV =
else
ENV_DIR := .venv
PY      := .venv/bin/python
MAKE_ENV = $(PYTHON) -m venv .venv && $(PY) -m pip install --quiet --upgrade pip &&
endif

.PHONY: install course test test-fast compare sweep benchmark

# The environment, refreshed only when requirements.txt or pyproject.toml changes. pip byte-compiles what it
# installs on one core; compileall does the same on every core (-j 0): the same .pyc files, in less time
# (requirements.txt into a fresh venv, measured under load only: 156 s with pip's compile, 81 s + 50 s without). A file that does not compile (a template) is left, as pip leaves it.
$(ENV_DIR)/.sar-installed: requirements.txt pyproject.toml
	$(MAKE_ENV) $(PY) -m pip install --quiet --no-compile -r requirements.txt
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null || true
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m helpers.course --install-kernel > /dev/null
	touch $@

# reveal.js (for the slide decks) is fetched here, once, so that nothing later needs the network.
install: $(ENV_DIR)/.sar-installed
	@if command -v npm > /dev/null; then $(PY) -m helpers.slides --fetch-only > /dev/null; \
	else echo "note: npm is missing, so the slide decks cannot be built (apt-get install -y npm, then make reveal)"; fi

# The whole course, headless, into runs/$(NAME)/ (refuses to overwrite it; OVERWRITE=1 to replace).
course: install
	$(PY) -m helpers.course --profile $(PROFILE) --name $(NAME) $(if $(OVERWRITE),--overwrite,)

# Unit tests + a smoke run of every notebook: everything, as CI runs it, on one pytest-xdist worker per
# core (tests/conftest.py keeps the smoke course's tests on one worker). pytest's exit code 5 (no tests
# collected) is a broken setup.  `make test-fast` leaves out the tests marked slow (a smoke course,
# a browser, papermill re-runs, the comparison, the benchmarks): under a minute, for a quick answer.
PYTEST = $(PY) -m pytest tests -q -n auto $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the test setup is broken" >&2; exit 1; fi; exit $$rc

test: install
	$(call PYTEST,)

test-fast: install
	$(call PYTEST,-m "not slow")

# The multi-seed comparison of all methods on both built-in data sets (see README for its time).
compare: install
	$(PY) -m helpers.compare --profile $(PROFILE) --data synthetic-sar
	$(PY) -m helpers.compare --profile $(PROFILE) --data digits-lt

# The budget sweep: every method at 1x, 2x and 4x the profile's budget (5 seeds at 1x, 3 above), both
# built-in data sets; the 1x budget is the comparison above. Resumes where it stopped when re-run.
# `python -m helpers.sweep ... --until-converged` doubles the budget until no method gains over a point.
sweep: install
	$(PY) -m helpers.sweep --profile $(PROFILE) --data synthetic-sar
	$(PY) -m helpers.sweep --profile $(PROFILE) --data digits-lt

benchmark: install
	$(PY) -m benchmarks.benchmark --out runs/benchmark

# ---- Teaching and presenting (docs/teaching.md): slide decks, the results page, the course site
# (`make book`) and student copies; NAME picks the run folder as for `make course`.
.PHONY: slides results book student reveal

# reveal.js decks of a finished run: runs/$(NAME)/slides/*.slides.html, one self-contained file per notebook
# (code hidden; CODE=1 shows it). reveal.js is fetched once with npm into vendor/ (`make reveal`).
slides: install
	$(PY) -m helpers.slides --name $(NAME) $(if $(CODE),--code,)

# The results-only report runs/$(NAME)/results.html again (`make course` writes it too).
results: install
	$(PY) -m helpers.results_report --name $(NAME)

# The course site of a finished run: runs/$(NAME)/book/index.html, a static website (Sphinx + myst-nb), one page
# per executed notebook (not re-run), with a sidebar, search and the figures; opens offline. OUT=DIR moves it.
book: install
	$(PY) -m helpers.book --name $(NAME) $(if $(OUT),--out $(OUT),)

# Copies of the notebooks without the exercises' solutions, into student/.
student: install
	$(PY) -m helpers.student --out student

reveal: install
	$(PY) -m helpers.slides --fetch-only
