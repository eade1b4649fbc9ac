# Two commands on a fresh machine: `make sweep` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN    ?= results/$(shell date +%Y%m%d-%H%M%S)
# Expand once: a recursive variable would call date again at every use.
RUN    := $(RUN)
CONFIG ?= configs/default.toml

.PHONY: sweep test test-peers docs install dev clean gpu-check bench bench-stability bench-gate regret adaptive-bench

# The venv is rebuilt when pyproject.toml changes.
$(BIN)/symbench: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[opencv,plot]"
	touch $@

install: $(BIN)/symbench

$(VENV)/.dev: $(BIN)/symbench
	$(BIN)/python -m pip install -q -e ".[opencv,plot,dev,docs]"
	touch $@

dev: $(VENV)/.dev

## sweep: install, run the default sweep, print its report, write its figures; last line: the run directory
sweep: install
	$(BIN)/symbench sweep --config $(CONFIG) --out $(RUN)
	$(BIN)/symbench report $(RUN) --format table --plot $(RUN)/figures.png
	@echo $(RUN)

## test: install the test dependencies, check the import contracts and the docs build, run the whole suite (no GPU needed)
test: dev
	$(BIN)/lint-imports
	$(BIN)/python -m mkdocs build --strict -q -d build/site
	$(BIN)/python -m pytest -q -n 2 --timeout 600

## docs: build the documentation site into build/site (mkdocs serve for a live preview)
docs: dev
	$(BIN)/python -m mkdocs build --strict -d build/site

## test-peers: install PyTorch (the torch extra, pinned by constraints/peers.txt) into the venv and
## run the peer-kernel tests (PyTorch, OpenCV DFT, scipy.ndimage); `make test` stays free of PyTorch
test-peers: dev
	$(BIN)/python -m pip install -q -c constraints/peers.txt -e ".[opencv,plot,dev,torch]"
	$(BIN)/python -m pytest -q -n 2 --timeout 600 tests/test_peers.py \
		$$(grep -l 'mark.torch' tests/test_*.py | grep -v test_peers.py)

## bench: the fast-kernel comparisons (bench/bench.toml) through symbench's sweep, GEMM measured
## in the same process; writes $(BENCH_OUT)/report.md (Markdown tables of ratios, GFLOP/s, % of GEMM)
BENCH_OUT ?= results/bench-$(shell date +%Y%m%d-%H%M%S)
BENCH_OUT := $(BENCH_OUT)
bench: install
	$(BIN)/python bench/run.py --out $(BENCH_OUT)

## bench-stability: three consecutive runs of $(CONFIG); share of (pair, n) cells whose k* bracket agrees
STABILITY_OUT ?= results/stability-$(shell date +%Y%m%d-%H%M%S)
STABILITY_OUT := $(STABILITY_OUT)
bench-stability: install
	$(BIN)/python bench/stability.py --config $(CONFIG) --runs 3 --out $(STABILITY_OUT)

## bench-gate: false alarms of symbench ab and of stored-run compare (A/A, GATE_JOBS jobs each), and the
## share of a plug-in kernel's rows caught when made 10/25/50% slower, with and without a noisy
## neighbour; writes $(GATE_OUT)/gate.md (tens of minutes with the defaults; GATE_ARGS="--jobs 3 --n 4096" is quicker)
GATE_OUT ?= results/gate-$(shell date +%Y%m%d-%H%M%S)
GATE_OUT := $(GATE_OUT)
GATE_JOBS ?= 10
GATE_ARGS ?=
bench-gate: install
	$(BIN)/python bench/gate.py --jobs $(GATE_JOBS) --out $(GATE_OUT) $(GATE_ARGS)

## gpu-check: on an NVIDIA GPU machine with CuPy already installed (nothing is installed):
## verify the GPU kernels, sweep configs/gpu.toml, report and plot into $(GPU_OUT)
GPU_OUT ?= results/gpu-$(shell hostname -s 2>/dev/null || echo host)-$(shell date +%Y%m%d-%H%M)
gpu-check:
	PYTHON=$(PYTHON) bash scripts/gpu-check.sh $(GPU_OUT)

## regret: tune on a 1-D and a 2-D grid, then time symbench.convolve's dispatch on random held-out
## problems against the fastest kernel and scipy.signal.convolve (a few minutes; tables in bench/regret.md)
regret: install
	$(BIN)/python bench/regret.py --out-dir $(RUN) --markdown bench/regret.md

## adaptive-bench: grid vs --adaptive sweeps of the same problems: rows measured and bracket found
adaptive-bench: install
	$(BIN)/python bench/adaptive.py --out-dir $(RUN) --markdown bench/adaptive.md

clean:
	rm -rf $(VENV) build dist *.egg-info
