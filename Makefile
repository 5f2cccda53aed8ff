# Two commands on a fresh machine: `make demo` (default search on embedded data) and
# `make test` (the test suite). Each sets the machine up first, idempotently.
.PHONY: setup mmdet demo test test-fast lint format bench

setup:
	@bash scripts/setup.sh

# Optional extra for the MMDetection hand-off: builds mmcv 2.1.0 once per machine (about 11-15
# minutes on 2 cores) and reuses the wheel from ~/.cache/zoo/wheels afterwards.
mmdet: setup
	@bash scripts/install_mmdet.sh

demo: setup
	.venv/bin/python -m zoo

# One BLAS/OpenMP thread per process: the end-to-end tests run the CLI in subprocesses, and on a
# 2-core machine that is busy with anything else, multi-threaded small convolutions slow down by
# orders of magnitude (threads spinning against each other).
# The full suite includes the optional extras (MMDetection hand-off, ONNX, Hugging Face Hub):
# ZOO_REQUIRE_OPTIONAL=1 makes a test marked `requires(...)` fail rather than skip if its library is missing.
# It runs on both cores (pytest-xdist, -n 2); --dist loadgroup keeps every test that starts process
# pools, Ray or torchrun on one worker (the `multiprocess` group, tests/helpers/tiers.py), so they never
# compete with each other for the cores. --durations=25 lists the slowest tests.
PYTEST_XDIST = -n 2 --dist loadgroup
test: setup mmdet lint
	ZOO_REQUIRE_OPTIONAL=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest -q -ra --durations=25 $(PYTEST_XDIST)

# The tree is kept formatted and lint-clean by ruff (configured in pyproject.toml); `make format` fixes it.
lint: setup
	.venv/bin/ruff format --check --quiet .
	.venv/bin/ruff check --quiet .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

# Unit and contract tests: no test that starts the CLI (`e2e`) or process pools, Ray or torchrun
# (`multiprocess`), both marks set from the fixtures a test uses (tests/helpers/tiers.py), and none of the
# in-process searches checked for what they learn over many seeds or epochs (`slow`, marked by hand).
test-fast: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest -q -ra -m "not e2e and not multiprocess and not slow" $(PYTEST_XDIST)

bench: setup
	.venv/bin/python bench/supernet_step.py
