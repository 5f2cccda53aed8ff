# Two commands on a fresh machine: `make demo` (default search on embedded data) and
# `make test` (the test suite). Each sets the machine up first, idempotently.
.PHONY: setup mmdet demo test test-fast bench

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
# The full suite includes the MMDetection hand-off (ZOO_REQUIRE_MMDET=1: those tests fail rather
# than skip if mmdet is missing).
test: setup mmdet
	ZOO_REQUIRE_MMDET=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest -q -ra --durations=15

test-fast: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest -q -m "not slow"

bench: setup
	.venv/bin/python bench/supernet_step.py
