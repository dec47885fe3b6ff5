# `make demo` and `make test` set up a local virtual environment on first use, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	@# numba compiles the training loops once into its on-disk cache (~30 s), here, not in
	@# the first run
	$(BIN)/python -c "from nn.fused import main; main()"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chainrule train

test: $(STAMP)
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/scalar_engine.py
	$(BIN)/python benchmarks/tensor_engine.py
	$(BIN)/python benchmarks/train_digits.py

clean:
	rm -rf $(VENV) build *.egg-info
