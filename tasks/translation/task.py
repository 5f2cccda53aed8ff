"""Translation: searched encoder and decoder cells (the Evolved Transformer's space), scored by BLEU and chrF.

The data (:mod:`tasks.translation.data`) gives sentence pairs split by their source side; a
BPE vocabulary shared by both languages is trained on the training split alone and travels
with the model (``config.json``'s ``data.tokenizer``). Models train with teacher forcing on
label-smoothed cross-entropy (Szegedy et al. 2016; 0.1 as in the Transformer) with AdamW,
warm-up and cosine decay. Multi-trial candidates are scored by the validation split's
per-token likelihood ``exp(-cross-entropy)`` (the Evolved Transformer's search used perplexity
as fitness). The retrained model and a vanilla Transformer baseline of the same parameter
count (within ``task.baseline.tolerance``; its width is chosen to match) are scored on the test
split by sacrebleu's BLEU and chrF, decoding greedily and with beam search through transformers'
``generate`` (:mod:`tasks.translation.integrations.transformers`), and ten sample translations are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from tasks.translation.data import DATA_SPECS, LengthBuckets, PairDataset, TranslationData, collate, encode, load, train_tokenizer
from tasks.translation.metrics import likelihood, token_loss
from tasks.translation.model import PAD, count_parameters
from tasks.translation.space import transformer_genotype
from zoo.config_values import NON_NEGATIVE_INT, POSITIVE_INT, ConfigError, Flag, Number
from zoo.device import model_device
from zoo.task import COMMON_TRAINER_SPECS, TASKS, DataError, SupervisedTask

FRACTION = Number(integer=False, low=0.0, high=1.0, high_open=True)


@TASKS.register("translation")
class Translation(SupervisedTask):
    name = "translation"
    metric = "BLEU"
    width_keys = {"d_model": 8}  # whole heads of 8
    supernet_kinds = ("darts",)
    second_order = False  # the supernet is small but its loss re-binds nothing: first-order DARTS only
    spaces = ("seq2seq",)
    trainer_specs = {
        **COMMON_TRAINER_SPECS,
        "epochs": Number(integer=True, low=1, null=True),  # null: from trainer.steps and the corpus size
        "steps": Number(integer=True, low=1, null=True),
        "num_workers": NON_NEGATIVE_INT,
        "label_smoothing": FRACTION,
    }
    config_specs = {
        **{f"{part}.{key}": POSITIVE_INT for part in ("model", "estimate_model", "supernet") for key in ("d_model", "layers")},
        **{f"{part}.dropout": FRACTION for part in ("model", "estimate_model", "supernet")},
        "vocab_size": Number(integer=True, low=64),
        "max_len": Number(integer=True, low=4),
        "estimate_pairs": NON_NEGATIVE_INT,
        "supernet.pairs": NON_NEGATIVE_INT,
        "baseline.enabled": Flag(),
        "baseline.tolerance": Number(integer=False, low=0.0, high=1.0, low_open=True),
        "decode.num_beams": POSITIVE_INT,
        "decode.max_new_tokens": POSITIVE_INT,
        "decode.batch_size": POSITIVE_INT,
        "samples": NON_NEGATIVE_INT,
    }
    data_specs = DATA_SPECS
    estimate_split, supernet_split, valid_split = "estimate", "supernet", "valid"
    estimate_metrics = {
        "reward": "likelihood",
        "valid_cross_entropy": "cross_entropy",
        "valid_token_accuracy": "token_accuracy",
        "train_loss": "train_loss",
        "params": "params",
    }
    retrain_metrics = {
        "test_bleu": "bleu",
        "test_chrf": "chrf",
        "test_bleu_greedy": "bleu_greedy",
        "test_chrf_greedy": "chrf_greedy",
        "test_cross_entropy": "test_cross_entropy",
        "test_token_accuracy": "test_token_accuracy",
        "score": "bleu",
        "params": "params",
        "epochs": "epochs",
        "valid_cross_entropy_curve": "valid_cross_entropy_curve",
        "converged": "converged",
        "train_seconds": "train_seconds",
        "bleu_signature": "bleu_signature",
        "chrf_signature": "chrf_signature",
    }
    baseline_metrics = {"test_bleu_baseline": "bleu", "test_chrf_baseline": "chrf", "params_baseline": "params"}
    baseline_omits = ("bleu_signature", "chrf_signature")  # the searched model's, at the top level

    tokenizer_json: dict[str, Any] | None = None  # set before setup() to keep a parent model's vocabulary (fine-tuning)
    # a final training counts as converged when the second half of its epochs gave at most this share of the fall in
    # validation cross-entropy (from ln(vocabulary)); the runs of BENCHMARKS.md that had flattened gave 3-5%
    late_gain: float = 0.1
    usable_bleu: float = 5.0  # a test BLEU below this is reported as not usable

    @classmethod
    def check_trainer(cls, trainer_cfg: Any) -> None:
        super().check_trainer(trainer_cfg)
        if trainer_cfg.get("epochs") is None and trainer_cfg.get("steps") is None:
            raise ConfigError(
                "trainer.epochs=null and trainer.steps=null: the final training needs one; allowed: e.g. trainer.steps=4000 or trainer.epochs=5"
            )

    def train_epochs(self) -> int:
        """``trainer.epochs`` when set; else ``trainer.steps`` optimiser steps turned into whole epochs of this corpus
        (at least one), so that a small corpus trains for more epochs and a large one for fewer."""
        epochs = self.trainer_cfg.get("epochs")
        if epochs is not None:
            return int(epochs)
        steps = self.trainer_cfg.get("steps")
        if steps is None:
            raise ConfigError("trainer.epochs=null and trainer.steps=null: the final training needs one")
        return max(1, round(int(steps) / len(self.loader("train", True))))

    def fit(self, model: nn.Module, split: str, epochs: int, desc: str, checkpoint: Any = None) -> float:
        """:meth:`SupervisedTask.fit`; a final training (``split`` train) also records the validation cross-entropy
        after each epoch, its learning curve (:attr:`curves`, under ``desc``; kept in the epoch checkpoints, so a
        resumed training reports the whole curve)."""
        if split != "train":
            return super().fit(model, split, epochs, desc, checkpoint)
        curve = self.curves[desc] = []  # this training's own curve (a task object may train many models)

        def on_epoch(epoch: int, loss: float) -> dict[str, Any]:
            ce = self.evaluate(model, "valid")["cross_entropy"]
            return {"epoch": epoch + 1, "train_loss": round(loss, 4), "valid_cross_entropy": round(ce, 4)}

        return super().fit(model, split, epochs, desc, checkpoint, on_epoch, curve)

    def converged(self, curve: Sequence[float]) -> bool | None:
        """Whether a learning curve (validation cross-entropy after each epoch) had flattened: the second half of the
        epochs gave at most :attr:`late_gain` of its whole fall from an untrained model's ``ln(vocabulary)``. With the
        cosine decay to zero the last epochs always gain little, so the half, not the last epoch, is compared.
        ``None``: fewer than 2 epochs."""
        if len(curve) < 2:
            return None
        start = math.log(self.vocab_size)
        mid = curve[(len(curve) - 1) // 2]
        return bool(mid - curve[-1] <= self.late_gain * max(start - curve[-1], 1e-9))

    def train_and_test(self, model: nn.Module, key: str, checkpoints: Any = None) -> dict[str, Any]:
        """:meth:`SupervisedTask.train_and_test` with the epochs, the validation learning curve and whether it had
        flattened (:meth:`converged`)."""
        record = super().train_and_test(model, key, checkpoints)
        curve = [c["valid_cross_entropy"] for c in self.curves.get(f"retrain {key}", [])]
        return {**record, "epochs": self.train_epochs(), "valid_cross_entropy_curve": curve, "converged": self.converged(curve)}

    def setup(self) -> None:
        data: TranslationData = load(self.data_cfg)
        for split in ("train", "valid", "test"):
            if not getattr(data, split):
                raise DataError(f"data={self.data_cfg.name}: the {split} split is empty")
        self.data = data
        if self.tokenizer_json is not None:
            from tasks.translation.integrations.transformers import tokenizer_from_json

            self.tokenizer = tokenizer_from_json(self.tokenizer_json)
        else:
            texts = [s for s, _ in data.train] + [t for _, t in data.train]
            self.tokenizer = train_tokenizer(texts, int(self.cfg.vocab_size))
            self.tokenizer_json = json.loads(self.tokenizer.backend_tokenizer.to_str())
        self.vocab_size = len(self.tokenizer)
        max_len = int(self.cfg.max_len)
        self.ids = {
            split: (encode(self.tokenizer, [s for s, _ in pairs], max_len), encode(self.tokenizer, [t for _, t in pairs], max_len))
            for split, pairs in (("train", data.train), ("valid", data.valid), ("test", data.test))
        }
        # the training pairs in a seeded random order: a data set in dictionary (alphabetical) order must not
        # give candidates and the supernet one corner of its vocabulary
        src, tgt = self.ids["train"]
        order = torch.randperm(len(src), generator=torch.Generator().manual_seed(self.seed)).tolist()
        for split, n in (
            ("estimate", int(self.cfg.get("estimate_pairs", 0) or 0)),
            ("supernet", int(self.cfg.supernet.get("pairs", 0) or 0)),
        ):
            pick = order[:n] if n else order
            self.ids[split] = ([src[i] for i in pick], [tgt[i] for i in pick])
        self.samples: dict[str, list[dict[str, str]]] = {}
        self.curves: dict[str, list[dict[str, Any]]] = {}

    def describe_data(self) -> dict[str, Any]:
        d = self.data
        return {
            "name": str(self.data_cfg.name),
            **d.source,
            "src_lang": d.src_lang,
            "tgt_lang": d.tgt_lang,
            "n_train": len(d.train),
            "n_valid": len(d.valid),
            "n_test": len(d.test),
            "vocab_size": self.vocab_size,
            "max_len": int(self.cfg.max_len),
            "tokenizer": self.tokenizer_json,
        }

    def loader(self, split: str, shuffle: bool, batch_size: int | None = None) -> DataLoader:
        src, tgt = self.ids[split]
        g = torch.Generator().manual_seed(self.seed)
        bs = batch_size or int(self.trainer_cfg.batch_size)
        lengths = [max(len(a), len(b)) for a, b in zip(src, tgt)]
        if shuffle:
            batches: Any = LengthBuckets(lengths, bs, g)
        else:  # evaluation: sorted by length, so each batch pads little
            order = sorted(range(len(src)), key=lambda i: lengths[i])
            batches = [order[k : k + bs] for k in range(0, len(order), bs)]
        return self.data_loader(PairDataset(src, tgt), batch_sampler=batches, generator=g, collate_fn=collate)

    # ---- models
    def model_config(self, genotype: Any, final: bool = True) -> dict[str, Any]:
        m = self.size_config(final)
        return {
            "arch": genotype.to_json(),
            "vocab_size": int(self.vocab_size),
            "d_model": int(m.d_model),
            "layers": int(m.layers),
            "dropout": float(m.dropout),
        }

    def build_model(self, genotype: Any, final: bool = True) -> nn.Module:
        from zoo.models import create_model

        torch.manual_seed(self.seed)
        return create_model(task=self.name, **self.model_config(genotype, final))

    def example_input(self) -> torch.Tensor:
        """One validation source sentence (1, S) of token ids."""
        return torch.tensor([self.ids["valid"][0][0]], dtype=torch.long)

    def random_input(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``batch`` random sentences of the example's length (ids of ordinary tokens, ``</s>`` last)."""
        x = torch.randint(4, self.vocab_size, (batch, self.example_input().shape[1]), generator=generator)
        x[:, -1] = 2
        return x

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return token_loss(model, batch, float(self.trainer_cfg.get("label_smoothing", 0.0)))

    def supernet_training(self) -> Any:
        """The supernet's weights train as the translators do: AdamW with warm-up and cosine decay at ``trainer.lr``, on
        the label-smoothed loss (SGD at the strategies' rate barely moves a Transformer's weights in a few epochs)."""
        from zoo.fit import adamw_warmup_training

        return adamw_warmup_training(self.trainer_cfg)

    def make_supernet(self, kind: str = "darts", **_: Any) -> nn.Module:
        from tasks.translation.supernet import SuperTranslator

        s = self.cfg.supernet
        torch.manual_seed(self.seed)
        return SuperTranslator(self.space, self.vocab_size, int(s.d_model), int(s.layers), float(s.dropout))  # type: ignore[arg-type]

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        """Per-token cross-entropy, likelihood and token accuracy on ``split`` (:func:`likelihood`)."""
        return likelihood(model, self.loader(split, False))

    def count_parameters(self, model: nn.Module) -> int:
        return count_parameters(model)

    # ---- decoding and scores
    def translate(self, model: nn.Module, sources: Sequence[str] | Sequence[Sequence[int]], num_beams: int) -> list[str]:
        """Translations of ``sources`` (texts, or their token ids) by transformers' ``generate`` (greedy when ``num_beams`` is 1)."""
        from tasks.translation.integrations.transformers import wrap

        d = self.cfg.decode
        src_ids = (
            [list(s) for s in sources]
            if sources and not isinstance(sources[0], str)
            else encode(self.tokenizer, list(sources), int(self.cfg.max_len))
        )  # type: ignore[arg-type]
        was = model.training
        hf = wrap(model, int(d.max_new_tokens))  # type: ignore[arg-type]
        device = model_device(model)
        out: list[str] = []
        bs = int(d.batch_size)
        with torch.no_grad():
            for k in range(0, len(src_ids), bs):
                batch = collate([(s, [0]) for s in src_ids[k : k + bs]])[0].to(device)
                gen = hf.generate(batch, attention_mask=batch != PAD, num_beams=num_beams, do_sample=False)
                out += self.tokenizer.batch_decode(gen, skip_special_tokens=True)
        model.train(was)
        return [s.strip() for s in out]

    def test(self, model: nn.Module, key: str) -> dict[str, Any]:
        """BLEU and chrF of beam and greedy translations of the test split, test likelihood, and sample translations."""
        from tasks.translation.metrics import translation_scores

        sources = [s for s, _ in self.data.test]
        refs = [t for _, t in self.data.test]
        lang = self.data.tgt_lang
        beam_hyps = self.translate(model, self.ids["test"][0], int(self.cfg.decode.num_beams))
        greedy_hyps = self.translate(model, self.ids["test"][0], 1)
        beam, greedy = translation_scores(beam_hyps, refs, lang), translation_scores(greedy_hyps, refs, lang)
        n = int(self.cfg.get("samples", 10))
        self.samples[key] = [
            {"source": s, "reference": r, "beam": b, "greedy": g} for s, r, b, g in zip(sources, refs, beam_hyps, greedy_hyps)
        ][:n]
        lik = likelihood(model, self.loader("test", False))
        return {
            "bleu": beam["bleu"],
            "chrf": beam["chrf"],
            "bleu_greedy": greedy["bleu"],
            "chrf_greedy": greedy["chrf"],
            "bleu_signature": beam["bleu_signature"],
            "chrf_signature": beam["chrf_signature"],
            "test_cross_entropy": lik["cross_entropy"],
            "test_token_accuracy": lik["token_accuracy"],
        }

    def create_baseline(self, searched_params: int) -> tuple[nn.Module, dict[str, Any]]:
        """The vanilla Transformer (pre-norm, 8 heads, ReLU feed-forward) whose width gives the parameter count closest to
        ``searched_params``, and whether that count is within ``task.baseline.tolerance`` of it."""
        from zoo.models import create_model

        m = self.cfg.model
        arch = transformer_genotype(self.space.encoder_steps, self.space.decoder_steps).to_json()  # type: ignore[attr-defined]

        def args(width: int) -> dict[str, Any]:
            return {"arch": arch, "vocab_size": self.vocab_size, "d_model": width, "layers": int(m.layers), "dropout": float(m.dropout)}

        def size(width: int) -> int:
            return count_parameters(create_model(task=self.name, **args(width)))

        lo, hi = 1, 128  # widths 8 * k; the parameter count grows with the width: bisect for the first k at or above `searched_params`
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if size(8 * mid) < searched_params else (lo, mid)
        width = min((8 * k for k in (lo - 1, lo) if k >= 1), key=lambda w: abs(size(w) - searched_params))
        torch.manual_seed(self.seed)
        base = create_model(task=self.name, **args(width))
        tol = float(self.cfg.baseline.tolerance)
        return base, {
            "model": f"vanilla Transformer (pre-norm, 8 heads), d_model={width}, {int(m.layers)} layers",
            "params_within_tolerance": abs(count_parameters(base) - searched_params) <= tol * searched_params,
        }

    def retrain(self, genotype: Any, checkpoints: Any = None) -> tuple[nn.Module, dict[str, Any]]:
        model, out = super().retrain(genotype, checkpoints)
        decoding = f"beam search, {int(self.cfg.decode.num_beams)} beams (test_bleu, test_chrf); greedy (*_greedy)"
        # the searched model's metrics, how they were decoded, the baseline's, then the sample translations
        searched = {k: out.pop(k) for k in self.retrain_metrics}
        warnings = self.training_warnings(
            "searched model", searched["converged"], searched["valid_cross_entropy_curve"], searched["test_bleu"]
        )
        base = out.get("baseline")
        if isinstance(base, dict):
            warnings += self.training_warnings(
                "baseline", base.get("converged"), base.get("valid_cross_entropy_curve", []), base.get("bleu")
            )
        extra = {"warnings": warnings} if warnings else {}
        return model, {**searched, "decoding": decoding, **out, **extra, "samples": self.samples.get("searched", [])}

    def training_warnings(self, who: str, converged: bool | None, curve: Sequence[float], bleu: float | None) -> list[str]:
        """What the run summary must say of a final training: not converged (with the epochs and steps in effect),
        too short to tell, over-fitted (the curve rose at the end), or a BLEU too low for any use."""
        out = []
        epochs = self.train_epochs()
        steps = epochs * len(self.loader("train", True))
        if converged is False:
            mid = curve[(len(curve) - 1) // 2]
            out.append(
                f"the {who} had not converged: the second half of its {epochs} epochs ({steps} steps) still lowered the validation "
                f"cross-entropy from {mid:.2f} to {curve[-1]:.2f}; train longer (e.g. trainer.steps={2 * steps} or trainer.epochs={2 * epochs})"
            )
        elif converged is None:
            out.append(f"the {who} trained for {len(curve)} epoch(s): too few to tell whether it converged")
        if len(curve) >= 2 and curve[-1] > min(curve) + 0.02:
            out.append(
                f"the {who}'s validation cross-entropy rose from {min(curve):.2f} to {curve[-1]:.2f} at the end (over-fitting): "
                "fewer steps, more dropout or more data"
            )
        if bleu is not None and bleu < self.usable_bleu:
            out.append(f"the {who}'s test BLEU is {bleu:.1f}: below {self.usable_bleu:g}, its translations are not usable")
        return out

    def write_outputs(self, run_dir: str | Path) -> list[str]:
        """``translations.json``: the sample translations of each model (source, reference, beam, greedy)."""
        if not self.samples:
            return []
        from zoo.atomic import save_json_atomic

        save_json_atomic(Path(run_dir) / "translations.json", self.samples)
        return ["translations.json"]
