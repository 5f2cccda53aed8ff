"""The RL candidates' estimate: the area under the learning curve over training seeds (a candidate that learns fast
and then collapses loses to one that keeps its return), or the last point only with ``trainer.estimate_score=final``;
widths left null follow the observations (32 dense units, 8 image channels)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tasks.rl.metrics import curve_score
from tasks.rl.space import PolicyGenotype

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "task=rl",
    "data.env=CartPole-v1",
    "task.gif=false",
    "trainer.steps=2048",
    "trainer.estimate_steps=1024",
    "trainer.estimate_seeds=2",
    "trainer.curve_episodes=3",
    "trainer.n_envs=2",
    "trainer.n_steps=64",
    "trainer.batch_size=64",
    "trainer.n_epochs=2",
]


def _task(*extra: str) -> Any:
    from helpers.tasks import build_task

    return build_task([*TINY, *extra])


def _curve(*returns: float, every: int = 100) -> list[dict[str, Any]]:
    return [{"steps": every * (i + 1), "eval_return": r} for i, r in enumerate(returns)]


def test_the_area_under_the_curve_counts_every_evaluation() -> None:
    steady, late_spike = _curve(200, 250, 280, 290), _curve(0, 0, 0, 300)
    assert curve_score(late_spike, "final") > curve_score(steady, "final")  # one lucky last evaluation wins
    assert curve_score(steady, "auc") > curve_score(late_spike, "auc")  # ... but is one point of four here
    held, collapsed = _curve(50, 400, 500, 500), _curve(50, 400, 500, 60)
    assert curve_score(held, "auc") - curve_score(collapsed, "auc") == pytest.approx((500 - 60) / 4)
    assert curve_score(steady, "auc") == pytest.approx((200 + 250 + 280 + 290) / 4)
    # unequal spacing: each return holds from the previous point to its own
    assert curve_score([{"steps": 100, "eval_return": 10.0}, {"steps": 400, "eval_return": 30.0}]) == pytest.approx(
        (100 * 10 + 300 * 30) / 400
    )
    with pytest.raises(ValueError, match="empty"):
        curve_score([], "auc")


def test_a_candidates_reward_is_the_mean_area_under_its_curves_over_seeds() -> None:
    task = _task("trainer.estimate_evals=4")
    genotype = task.space.sample(np.random.default_rng(0))
    assert isinstance(genotype, PolicyGenotype)
    out = task.estimate(genotype)
    assert out["score_kind"] == "auc" and out["estimate_steps"] == 1024 and len(out["curves"]) == 2
    for curve in out["curves"]:
        steps = [h["steps"] for h in curve]
        assert len(curve) == 4 and steps == sorted(steps) and steps[-1] == 1024
    assert out["scores_per_seed"] == pytest.approx([curve_score(c) for c in out["curves"]])
    assert out["reward"] == pytest.approx(float(np.mean(out["scores_per_seed"])))
    assert out["curves"][0] != out["curves"][1]  # two training seeds, two curves
    again = task.estimate(genotype)
    assert again["curves"] == out["curves"]  # seeded: the same candidate scores the same

    final = _task("trainer.estimate_score=final").estimate(genotype)
    assert final["score_kind"] == "final" and all(len(c) == 1 and c[0]["steps"] == 1024 for c in final["curves"])
    # evaluating along the way leaves the training as it was: the same last evaluation either way
    assert [c[-1] for c in final["curves"]] == [c[-1] for c in out["curves"]]
    assert final["reward"] == pytest.approx(float(np.mean([c[-1]["eval_return"] for c in final["curves"]])))


def test_widths_left_null_follow_the_observations() -> None:
    def widths(task: Any) -> list[int]:
        return [int(task.size_config(True).width), int(task.size_config(False).width), int(task.supernet_size().width)]

    vector = _task()
    assert widths(vector) == [32, 32, 32] and vector.model_config(vector.space.sample(np.random.default_rng(0)))["width"] == 32
    image = _task("data.env=MinAtar/Breakout-v1", "task.supernet.width=4")
    assert widths(image) == [8, 8, 4]
    assert image.cfg.model.width is None  # the config keeps what the user gave: a resume compares that
