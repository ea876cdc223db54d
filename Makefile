# The two commands of the README: `make demo` (main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test demo benchmark clean

install:
	@VENV=$(VENV) bash tools/setup_env.sh

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py

benchmark: install
	$(PY) tools/analysis/benchmark.py

clean:
	rm -rf work_dirs
