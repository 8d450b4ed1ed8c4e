# Two commands for a fresh clone:  `make demo`  and  `make test`.
# Each creates .venv and installs the project with the pinned CPU torch on first use.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.recgen-installed
PIP_INSTALL = $(PY) -m pip install --disable-pip-version-check -c requirements/constraints.txt
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1

.PHONY: install system-deps demo demo-movielens test test-slow bench clean

$(STAMP): pyproject.toml requirements/constraints.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --upgrade pip
	$(PIP_INSTALL) -r requirements/dev.txt
	$(PIP_INSTALL) -e '.[cpu,serve,ray,cf,postgres,spark,dev]'
	touch $(STAMP)

install: $(STAMP)          ## create .venv and install recgen (CPU) + test tools

system-deps:               ## as root: Debian packages of the real-component tests (PostgreSQL, JDK, Chromium, wrk)
	.ci/system-deps

demo: $(STAMP)             ## run `recgen demo` on the bundled sample catalog -> recgen-demo/report.html
	$(VENV)/bin/recgen demo --out recgen-demo

demo-movielens: $(STAMP)   ## the same on ../shared/data/movielens-posters
	$(VENV)/bin/recgen demo --dataset movielens --path ../shared/data/movielens-posters --out recgen-demo-movielens

test: $(STAMP)             ## fast test suite (what CI runs), one worker per core (pytest-xdist)
	$(PY) -m pytest -m "not slow and not gpu" -q -n auto --dist worksteal

test-slow: $(STAMP)        ## long tests on real data (minutes)
	$(PY) -m pytest -m "slow" -q -n auto --dist worksteal

bench: $(STAMP)            ## standalone benchmarks, figures go to benchmarks/RESULTS.md
	$(PY) benchmarks/bench_index.py
	$(PY) benchmarks/bench_encode.py
	$(PY) benchmarks/bench_enrich.py --work .cache/bench-enrich

clean:
	rm -rf $(VENV) recgen-demo recgen-demo-movielens .pytest_cache
