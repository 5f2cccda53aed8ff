# Two commands on a fresh machine: `make demo` (default search on embedded data) and
# `make test` (the test suite). Each sets the machine up first, idempotently.
.PHONY: setup demo test test-fast bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python -m zoo

test: setup
	.venv/bin/python -m pytest -q -ra --durations=15

test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow"

bench: setup
	.venv/bin/python bench/supernet_step.py
