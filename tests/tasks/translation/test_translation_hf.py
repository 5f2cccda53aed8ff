"""The transformers hand-off: generation through transformers equals hand-written decoding, the cache
changes nothing, save_pretrained / from_pretrained round trips in a fresh process, and the Auto classes
know the model after ``import zoo`` in either import order. The end-to-end reversal run and its fine-tuning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.cli import ZooCli
from helpers.pairs import reversal_pairs, write_tsv

import tasks.translation  # noqa: F401
from tasks.translation.data import train_tokenizer
from tasks.translation.integrations.transformers import wrap
from tasks.translation.model import BOS, EOS, PAD, Translator
from tasks.translation.space import EVOLVED_TRANSFORMER, TRANSFORMER
from zoo.hub.bundle import save_bundle

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[3]
V = 60


def _model(genotype: object, seed: int = 0) -> Translator:
    """A translator whose weights are moved far enough from initialisation that it emits varied tokens."""
    torch.manual_seed(seed)
    model = Translator(genotype, V, 16, 2, 0.0)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    return model.eval()


def _sources() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    src = torch.randint(4, V, (4, 9), generator=g)
    src[:, -1] = EOS
    src[1, 6:] = PAD
    src[1, 5] = EOS
    return src


@torch.no_grad()
def _greedy(model: Translator, src: torch.Tensor, steps: int) -> torch.Tensor:
    """Greedy decoding written out: the whole prefix re-decoded at every step, no cache; finished rows get padding."""
    memory, mask = model.encode(src), src != PAD
    ys = torch.full((src.shape[0], 1), BOS)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    for _ in range(steps):
        nxt = model.decode(ys, memory, mask)[0][:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        ys = torch.cat([ys, nxt[:, None]], dim=1)
        done |= nxt == EOS
        if done.all():
            break
    return ys


@pytest.mark.parametrize("genotype", [TRANSFORMER, EVOLVED_TRANSFORMER], ids=["transformer", "evolved"])
def test_generate_greedy_equals_a_hand_written_loop_and_beam_search_ignores_the_cache(genotype: object) -> None:
    model = _model(genotype)
    hf = wrap(model, max_new_tokens=12)
    src = _sources()
    with torch.no_grad():
        by_hand = _greedy(model, src, 12)
        # without the cache generate re-decodes the prefix as the loop does: the same computation, the same tokens
        assert torch.equal(hf.generate(src, attention_mask=src != PAD, num_beams=1, do_sample=False, use_cache=False), by_hand)
        greedy = hf.generate(src, attention_mask=src != PAD, num_beams=1, do_sample=False)
        assert len({tuple(r) for r in greedy[:, 1:].tolist()}) > 1, "the model emits the same tokens for every source"
        assert torch.equal(greedy, by_hand)
        cached = hf.generate(src, attention_mask=src != PAD, num_beams=4, use_cache=True)
        uncached = hf.generate(src, attention_mask=src != PAD, num_beams=4, use_cache=False)
    assert torch.equal(cached, uncached)


def _bundle(tmp: Path) -> Path:
    pairs = reversal_pairs(40)
    tok = train_tokenizer([s for s, _ in pairs] + [t for _, t in pairs], V)
    model = _model(EVOLVED_TRANSFORMER)
    assert len(tok) <= V
    args = {"arch": EVOLVED_TRANSFORMER.to_json(), "vocab_size": V, "d_model": 16, "layers": 2, "dropout": 0.0}
    data = {"name": "tsv", "src_lang": "src", "tgt_lang": "tgt", "tokenizer": json.loads(tok.backend_tokenizer.to_str())}
    return save_bundle(tmp / "bundle", model, {"task": "translation", "model": args, "data": data, "metrics": {"score": 0.0}})


_RELOAD = """
import sys, json, torch
{imports}
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
model = AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1]).eval()
tok = AutoTokenizer.from_pretrained(sys.argv[1])
batch = tok(["ka lo mi nu", "ze vo"], return_tensors="pt", padding=True)
with torch.no_grad():
    beams = model.generate(**batch, num_beams=4, max_new_tokens=10)
    logits = model(**batch, decoder_input_ids=torch.tensor([[1, 5, 6], [1, 7, 8]])).logits
print(json.dumps({{"type": type(model).__name__, "ids": batch["input_ids"].tolist(), "beams": beams.tolist(), "logits": logits.tolist()}}))
"""


@pytest.mark.parametrize("order", ["zoo first", "transformers first"])
def test_save_pretrained_loads_with_the_auto_classes_in_a_fresh_process(tmp_path: Path, order: str) -> None:
    from tasks.translation.integrations.transformers import save_pretrained, to_transformers

    out = save_pretrained(_bundle(tmp_path), tmp_path / "hf")
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()
    imports = "import zoo\nimport transformers" if order == "zoo first" else "import transformers\nimport zoo"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", _RELOAD.format(imports=imports), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["type"] == "ZooForTranslation"

    model, tok = to_transformers(tmp_path / "bundle")
    batch = tok(["ka lo mi nu", "ze vo"], return_tensors="pt", padding=True)
    assert batch["input_ids"].tolist() == got["ids"]
    assert all(row[-1] in (EOS, PAD) for row in got["ids"])
    with torch.no_grad():
        beams = model.generate(**batch, num_beams=4, max_new_tokens=10)
        logits = model(**batch, decoder_input_ids=torch.tensor([[1, 5, 6], [1, 7, 8]])).logits
    assert beams.tolist() == got["beams"]
    assert torch.equal(logits, torch.tensor(got["logits"]))


def test_reversal_task_reaches_near_perfect_translations_and_fine_tunes_to_copying(tmp_path: Path, zoo_cli: ZooCli) -> None:
    """A 2-layer Transformer learns to reverse word sequences (BLEU ~100 on unseen test sentences); fine-tuned
    on copying, its BLEU on the copy task rises from what reversing gives."""
    rev = write_tsv(tmp_path / "rev.tsv", reversal_pairs(1500))
    copy = write_tsv(tmp_path / "copy.tsv", [(s, s) for s, _ in reversal_pairs(600, seed=1)])
    small = ["task.vocab_size=64", "task.model.d_model=32", "task.model.layers=2", "trainer.batch_size=32", "threads=1", "progress=false"]
    outside: dict[str, Any] = {"cwd": tmp_path, "env": {"PYTHONPATH": str(ROOT)}, "timeout": 900}  # run from another directory
    r = zoo_cli.run(
        "task=translation",
        "search=fixed",
        "search.arch=transformer",
        "data=tsv",
        f"data.root={rev}",
        "data.valid_size=50",
        "data.test_size=100",
        "task.baseline.enabled=false",
        "trainer.epochs=30",
        *small,
        f"hydra.run.dir={tmp_path / 'run'}",
        **outside,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_bleu"] > 90 and metrics["test_token_accuracy"] > 0.97, metrics
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    samples = metrics["samples"]
    assert len(samples) == 10 and sum(s["beam"] == s["reference"] for s in samples) >= 8, samples

    f = zoo_cli.run(
        "task=translation",
        "mode=finetune",
        f"checkpoint={tmp_path / 'run'}",
        "data=tsv",
        f"data.root={copy}",
        "data.valid_size=30",
        "data.test_size=60",
        "finetune.epochs=6",
        "finetune.freeze_epochs=1",
        *small,
        f"hydra.run.dir={tmp_path / 'ft'}",
        **outside,
    )
    assert f.returncode == 0, f.stderr[-3000:]
    ft = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert ft["test_bleu"] > ft["test_bleu_before"] + 20, ft
