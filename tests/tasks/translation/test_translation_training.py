"""Translation's training scales to the corpus, records its learning curve and says when it has not converged;
the one-shot supernet trains with the task's optimiser (AdamW with warm-up) instead of the strategies' SGD."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from helpers.pairs import reversal_pairs, write_tsv
from helpers.tasks import build_task
from omegaconf import OmegaConf

from tasks.translation.space import transformer_genotype
from tasks.translation.task import Translation
from zoo.config_values import ConfigError
from zoo.search.darts import DARTS

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "task=translation",
    "data=tsv",
    "data.valid_size=16",
    "data.test_size=16",
    "task.vocab_size=64",
    "task.max_len=12",
    *(f"task.{part}.{key}={value}" for part in ("model", "estimate_model", "supernet") for key, value in (("d_model", 16), ("layers", 1))),
    "task.baseline.enabled=false",
    "task.decode.num_beams=2",
    "task.decode.max_new_tokens=10",
    "trainer.batch_size=16",
]


def _task(root: Path, pairs: int, *overrides: str) -> Translation:
    data = write_tsv(root / f"pairs{pairs}.tsv", reversal_pairs(pairs))
    return build_task([*TINY, f"data.root={data}", *overrides])


def test_epochs_follow_the_corpus_size_unless_set(tmp_path: Path) -> None:
    small = _task(tmp_path, 200, "trainer.epochs=null", "trainer.steps=120")
    large = _task(tmp_path, 800, "trainer.epochs=null", "trainer.steps=120")
    batches = {t: len(t.loader("train", True)) for t in (small, large)}
    assert batches[large] > 3 * batches[small]
    assert small.train_epochs() == round(120 / batches[small]) and large.train_epochs() == max(1, round(120 / batches[large]))
    assert small.train_epochs() > 3 * large.train_epochs()
    assert _task(tmp_path, 200, "trainer.epochs=3", "trainer.steps=120").train_epochs() == 3


def test_epochs_and_steps_both_null_fail_in_one_line() -> None:
    trainer = OmegaConf.load(Path(__file__).resolve().parents[3] / "tasks" / "translation" / "conf" / "trainer" / "translation.yaml")
    trainer.epochs, trainer.steps = None, None
    with pytest.raises(ConfigError, match=r"^trainer.epochs=null and trainer.steps=null: the final training needs one; allowed: "):
        Translation.check_trainer(trainer)


@pytest.mark.slow  # two real trainings, checked for what they learn
def test_an_undertrained_translator_is_reported_and_a_trained_one_is_not(tmp_path: Path) -> None:
    genotype = transformer_genotype(5, 7)
    short = _task(tmp_path, 400, "trainer.epochs=2", "trainer.lr=0.002")
    _, out = short.retrain(genotype)
    curve = out["valid_cross_entropy_curve"]
    assert out["epochs"] == 2 and len(curve) == 2 and curve[1] < curve[0]
    assert out["converged"] is False
    assert any(
        w.startswith("the searched model had not converged: the second half of its 2 epochs (") and "trainer.steps=" in w
        for w in out["warnings"]
    )
    assert any("its translations are not usable" in w for w in out["warnings"])
    short_bleu = out["test_bleu"]

    long = _task(tmp_path, 400, "trainer.epochs=40", "trainer.lr=0.01")
    _, out = long.retrain(genotype)
    assert out["converged"] is True and len(out["valid_cross_entropy_curve"]) == 40
    assert not any("had not converged" in w for w in out.get("warnings", []))
    assert out["test_bleu"] > short_bleu + 5


@pytest.mark.slow  # two real supernet searches, checked for what they learn
def test_darts_trains_the_supernet_with_the_tasks_optimiser(tmp_path: Path) -> None:
    """The same supernet and data, 3 epochs of first-order DARTS: with translation's AdamW warm-up recipe the supernet's
    validation cross-entropy ends far below where the strategy's own SGD (search.lr 0.05) leaves it."""
    task = _task(tmp_path, 400, "trainer.lr=0.005")
    problem = task.one_shot_problem()
    assert problem.weight_training is not None

    def valid_ce(prob: object) -> float:
        torch.manual_seed(0)
        DARTS(seed=0, epochs=3, lr=0.05, warmup_epochs=1, progress=False).search(prob)  # type: ignore[arg-type]
        return float(task.evaluate(prob.supernet, "valid")["cross_entropy"])  # type: ignore[attr-defined]

    adam = valid_ce(problem)
    sgd = valid_ce(dataclasses.replace(task.one_shot_problem(), weight_training=None))
    assert adam < sgd - 0.2, (adam, sgd)
