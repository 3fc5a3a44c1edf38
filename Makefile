# Two set-up commands: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first: 2.13.0 is the local CPU wheel; the project's range (torch>=2.6) then installs nothing more.
	$(BIN)/python -m pip install -q torch==2.13.0
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

demo: $(STAMP)
	$(BIN)/python -m labrador.demo --preset cpu-laptop

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) build src/*.egg-info
