# The two commands of the README: `make demo` (main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# e.g. make demo DEMO_ARGS=--with-maskrcnn (see python tools/demo.py --help)
DEMO_ARGS ?=

.PHONY: install lint test test-fast demo benchmark clean

install:
	@VENV=$(VENV) bash tools/setup_env.sh

# ruff.toml: flake8's and isort's rules, as OpenMMLab projects lint.
lint: install
	$(PY) -m ruff check .

test: install lint
	$(PY) -m pytest tests $(PYTEST_ARGS)

# The edit loop: everything but the end-to-end runs (pytest.ini's markers).
test-fast: install lint
	$(PY) -m pytest tests -m "not e2e" $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py $(DEMO_ARGS)

benchmark: install
	$(PY) tools/analysis/benchmark.py

clean:
	rm -rf work_dirs
