"""A resumed multi-trial search's earlier time, read from its log: the union of the logged candidates' spans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.pipeline import _logged_before


def _log(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_two_earlier_processes_count_their_candidates_not_the_pauses_between_them(tmp_path: Path) -> None:
    log = _log(
        tmp_path / "search_log.jsonl",
        [
            {"trial": 0, "seconds": 40.0, "finished_at": 1040.0},  # first process: 1000-1100
            {"trial": 1, "seconds": 60.0, "finished_at": 1100.0},
            {"trial": 2, "seconds": 150.0, "finished_at": 2150.0},  # second process after a pause: 2000-2200
            {"trial": 3, "seconds": 120.0, "finished_at": 2200.0},  # overlapped trial 2 (two workers)
            {"trial": 4, "seconds": 30.0, "finished_at": 5030.0},  # this process's own (after `started`)
            {"epoch": 0, "seconds": 99.0, "finished_at": 1500.0},  # not a candidate
            {"trial": 5, "finished_at": 1200.0},  # an older record without seconds
        ],
    )
    assert _logged_before(log, started=5000.0) == pytest.approx(100.0 + 200.0)
    assert _logged_before(log, started=1500.0) == pytest.approx(100.0)
    assert _logged_before(tmp_path / "missing.jsonl", started=5000.0) == 0.0
