# Two commands on a fresh machine: `make train` (set up, then one default run) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST_DEB := /usr/share/datasets/fashion-mnist

.PHONY: train test test-all lint bench data clean campaign campaign-stop tuning

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --editable ".[test]"
	touch $(STAMP)

# Fashion-MNIST from Debian's dataset-fashion-mnist where apt is available (root); otherwise the
# loader falls back to the torchvision download.
data:
	@if [ ! -d $(FASHION_MNIST_DEB) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

train: $(STAMP) data
	$(PY) train.py $(ARGS)

test: $(STAMP) data
	$(PY) -m pytest

test-all: $(STAMP) data
	$(PY) -m pytest -m ""

# A results campaign (docs/campaigns.md; default campaigns/fmnist.yaml, docs/results.md): runs or
# continues its stages in order of priority; `make campaign STAGES="ir100"` runs the ones named,
# `make campaign CAMPAIGN=cifar` another campaign file.
CAMPAIGN ?= fmnist
campaign: $(STAMP) data
	$(PY) -m imbloss.results run --campaign $(CAMPAIGN) $(STAGES)

# Stop a running `make campaign` and every process of its multirun (docs/resuming-and-clusters.md).
campaign-stop: $(STAMP)
	$(PY) -m imbloss.results stop --campaign $(CAMPAIGN)

# What tuning costs (docs/halving.md): sweep=wce as a full grid and by successive halving, into
# results/tuning/ (re-running continues both).
tuning: $(STAMP) data
	$(PY) train.py -m campaign=tuning sweep=wce hydra.sweep.dir=results/tuning/wce_grid
	$(PY) train.py -m campaign=tuning sweep=wce hydra/sweeper=halving hydra.sweeper.min_epochs=1 \
		hydra.sweep.dir=results/tuning/wce_halving
	$(PY) train.py -m campaign=tuning loss=pf hydra.sweep.dir=results/tuning/pf
	$(PY) train.py -m campaign=tuning sweep=focal_alpha hydra/sweeper=halving hydra.sweeper.min_epochs=1 \
		hydra.sweep.dir=results/tuning/focal_alpha_halving
	$(PY) -m imbloss.results compact results/tuning

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP) data
	$(PY) benchmarks/bench_malloc.py
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_intervals.py
	$(PY) benchmarks/bench_stacked.py --members 1,8,32 --steps 10 --sweep-steps 10
	$(PY) benchmarks/bench_precision_layout.py
	$(PY) benchmarks/bench_step.py
	$(PY) benchmarks/bench_epoch.py
	$(PY) benchmarks/bench_report.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
