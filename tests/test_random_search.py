"""Random search: ask/tell, JSON state_dict, exact resume."""

from __future__ import annotations

import json

import pytest

from zoo.search import STRATEGIES, ConfigError
from zoo.space import SPACES


def reward(g) -> float:
    """A real, deterministic objective of the genotype: the share of separable convs."""
    ops = [op for op, _ in g.normal + g.reduce]
    return sum(op.startswith("sep_conv") for op in ops) / len(ops)


def test_resume_from_state_dict_continues_identically() -> None:
    space = SPACES.get("darts")()
    cls = STRATEGIES.get("random")
    full = cls(space, budget=20, seed=3)
    seq_full = []
    while not full.done:
        (g,) = full.ask()
        full.tell(g, {"reward": reward(g)})
        seq_full.append(g)

    part = cls(space, budget=20, seed=3)
    for _ in range(8):
        (g,) = part.ask()
        part.tell(g, {"reward": reward(g)})
    state = json.loads(json.dumps(part.state_dict()))  # must survive JSON
    resumed = cls(space, budget=20, seed=999)  # a different seed: the state must win
    resumed.load_state_dict(state)
    seq = [g for g, _ in resumed.history]
    while not resumed.done:
        (g,) = resumed.ask()
        resumed.tell(g, {"reward": reward(g)})
        seq.append(g)
    assert seq == seq_full
    assert resumed.best() == full.best()


def test_batch_asks_are_distinct_and_pending_is_tracked() -> None:
    s = STRATEGIES.get("random")(SPACES.get("darts")(), budget=5, seed=0)
    batch = s.ask(4)
    assert len(set(batch)) == 4 and len(s.pending) == 4
    s.tell(batch[2], {"reward": 1.0})
    assert len(s.pending) == 3 and s.best()[0] == batch[2]


def test_bad_budget_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"search.budget=0 is invalid; allowed: a positive integer"):
        STRATEGIES.get("random")(SPACES.get("darts")(), budget=0)


def test_unknown_strategy_name_lists_the_allowed_ones() -> None:
    with pytest.raises(KeyError, match="unknown search strategy 'nope'; allowed: .*darts.*random"):
        STRATEGIES.get("nope")
