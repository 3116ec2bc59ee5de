# Two commands a newcomer needs:  make course   and   make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= quick
NAME   ?= $(PROFILE)

.PHONY: install course test compare benchmark clean-runs

# The virtual environment, rebuilt only when requirements.txt changes.
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $@

install: $(VENV)/.installed

# The whole course, headless, into runs/$(NAME)/ (refuses to overwrite it; OVERWRITE=1 to replace).
course: install
	$(PY) -m helpers.course --profile $(PROFILE) --name $(NAME) $(if $(OVERWRITE),--overwrite,)

# Unit tests + a smoke run of every notebook. pytest's exit code 5 (no tests collected) is a broken setup.
test: install
	$(PY) -m pytest tests -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the test setup is broken" >&2; exit 1; fi; exit $$rc

# The multi-seed comparison of all methods on both built-in data sets (see README for its time).
compare: install
	$(PY) -m helpers.compare --profile $(PROFILE) --data synthetic-sar
	$(PY) -m helpers.compare --profile $(PROFILE) --data digits-lt

benchmark: install
	$(PY) -m benchmarks.benchmark --out runs/benchmark

# ---- Teaching and presenting (README "Teaching and presenting"); NAME picks the run folder as for `make course`.
.PHONY: slides results student reveal

# reveal.js decks of a finished run: runs/$(NAME)/slides/*.slides.html, one self-contained file per notebook
# (code hidden; CODE=1 shows it). reveal.js is fetched once with npm into vendor/ (`make reveal`).
slides: install
	$(PY) -m helpers.slides --name $(NAME) $(if $(CODE),--code,)

# The results-only report runs/$(NAME)/results.html again (`make course` writes it too).
results: install
	$(PY) -m helpers.results_report --name $(NAME)

# Copies of the notebooks without the exercises' solutions, into student/.
student: install
	$(PY) -m helpers.student --out student

reveal: install
	$(PY) -m helpers.slides --fetch-only
