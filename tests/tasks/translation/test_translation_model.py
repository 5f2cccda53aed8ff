"""The translator's ops, cells and supernet: causality in the decoder, incremental decoding, padding,
the space's encoding, and the published cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tasks.translation  # noqa: F401  (registers the ops)
from tasks.translation.model import Translator
from tasks.translation.ops import DECODER_OPS, ENCODER_OPS, SeqContext
from tasks.translation.space import EVOLVED_TRANSFORMER, TRANSFORMER, Seq2SeqGenotype, Seq2SeqSpace, loose_ends, transformer_genotype
from tasks.translation.supernet import SuperTranslator
from zoo.space.genotype import GenotypeError, genotype_from_json
from zoo.space.ops import OPS

pytestmark = pytest.mark.usefixtures("one_thread")
C, L, S = 16, 9, 7


def _perturbed(module: torch.nn.Module, seed: int, scale: float = 0.3) -> torch.nn.Module:
    """Weights moved off their initial values, so that every op's output depends on its input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return module.eval()


def _decoder_ctx(g: torch.Generator) -> SeqContext:
    memory = torch.randn(2, S, C, generator=g)
    mask = torch.ones(2, S, dtype=torch.bool)
    mask[1, 5:] = False
    return SeqContext(causal=True, memory=memory, memory_mask=mask)


@pytest.mark.parametrize("name", DECODER_OPS)
def test_every_decoder_op_is_causal_and_computes_new_positions_alone(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    op = _perturbed(OPS.get(name)(C), 1)
    ctx = _decoder_ctx(g)
    x = torch.randn(2, L, C, generator=g)
    with torch.no_grad():
        full = op(x, ctx)
        for t in range(L):
            changed = x.clone()
            changed[:, t:] = torch.randn(2, L - t, C, generator=g)
            out = op(changed, ctx)
            assert torch.equal(out[:, :t], full[:, :t]), f"{name}: output before position {t} changed with the input at and after {t}"
            # the same op asked for the positions from t on reads the earlier ones as history (incremental decoding)
            assert torch.allclose(op(changed, ctx, start=t), out[:, t:], atol=1e-5), f"{name}: start={t} differs from the full pass"
        if name not in ("zero",):
            assert not torch.equal(op(changed, ctx), full), f"{name}: the output ignores its input"


@pytest.mark.parametrize("name", ENCODER_OPS)
def test_encoder_ops_ignore_padding(name: str) -> None:
    """A sentence's outputs are the same alone and in a batch padded with garbage behind it."""
    g = torch.Generator().manual_seed(2)
    op = _perturbed(OPS.get(name)(C), 3)
    x = torch.randn(1, 5, C, generator=g)
    padded = torch.cat([x, 100 * torch.randn(1, 4, C, generator=g)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 4])
    with torch.no_grad():
        alone = op(x, SeqContext(mask=torch.ones(1, 5, dtype=torch.bool)))
        batched = op(padded, SeqContext(mask=mask))[:, :5]
    assert torch.allclose(alone, batched, atol=1e-5), (
        f"{name}: padding changed a real position by {float((alone - batched).abs().max()):.3g}"
    )


def test_cross_attention_is_refused_in_the_encoder() -> None:
    with pytest.raises(ValueError, match="decoder op"):
        OPS.get("cross_attention_4")(C)(torch.zeros(1, 3, C), SeqContext())


def _random_genotype(seed: int) -> Seq2SeqGenotype:
    space = Seq2SeqSpace()
    rng = np.random.default_rng(seed)
    return space.decode([int(rng.integers(c)) for c in space.cardinalities()])


@pytest.mark.parametrize("genotype", [TRANSFORMER, EVOLVED_TRANSFORMER, _random_genotype(5)], ids=["transformer", "evolved", "random"])
def test_translator_decoder_is_causal_and_incremental_decoding_matches(genotype: Seq2SeqGenotype) -> None:
    g = torch.Generator().manual_seed(4)
    model = _perturbed(Translator(genotype, 50, C, 2, 0.0), 6, 0.1)
    src = torch.randint(4, 50, (2, S), generator=g)
    src[1, 5:] = 0
    tgt = torch.randint(4, 50, (2, L), generator=g)
    with torch.no_grad():
        full = model(src, tgt)
        later = tgt.clone()
        later[:, 6:] = torch.randint(4, 50, (2, L - 6), generator=g)
        assert torch.equal(model(src, later)[:, :6], full[:, :6])
        memory, mask = model.encode(src), src != 0
        past, steps = None, []
        for t in range(L):
            logits, rows = model.decode(tgt[:, t : t + 1], memory, mask, past, keep=True)
            past = rows if past is None else [torch.cat([p, r], dim=1) for p, r in zip(past, rows)]
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-4)


def test_darts_supernet_mixtures_stay_causal_and_derive_a_genotype_that_reads_the_source() -> None:
    space = Seq2SeqSpace()
    torch.manual_seed(0)
    net = SuperTranslator(space, 40, d_model=8, layers=1)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for a in net.arch_parameters():
            a.copy_(torch.randn(a.shape, generator=g))
        src = torch.randint(4, 40, (2, 6), generator=g)
        tgt = torch.randint(4, 40, (2, 8), generator=g)
        full = net(src, tgt)
        later = tgt.clone()
        later[:, 4:] = torch.randint(4, 40, (2, 4), generator=g)
        assert torch.equal(net(src, later)[:, :4], full[:, :4])
        assert not torch.equal(net(src, later)[:, 4:], full[:, 4:])
        # with the attention-to-encoder ops out of favour, the derived decoder still attends to the encoder
        ops = space.decoder_ops
        for k, op in enumerate(ops):
            if op.startswith("cross_attention"):
                net.alphas["decoder"].ops[:, k] = -10.0
    genotype = net.genotype()
    assert space.decode(space.encode(genotype)) == genotype
    assert genotype.reads_source()
    assert all(op != "zero" for b in (*genotype.encoder, *genotype.decoder) for op in (b[0], b[2]))


def test_space_round_trips_and_names_its_decisions() -> None:
    space = Seq2SeqSpace()
    assert len(space.cardinalities()) == len(space.decision_names()) == 5 * (5 + 7)
    for g in (TRANSFORMER, EVOLVED_TRANSFORMER, _random_genotype(1), _random_genotype(2)):
        assert space.decode(space.encode(g)) == g
        assert genotype_from_json(g.to_json()) == g
    small = Seq2SeqSpace(encoder_steps=2, decoder_steps=3)
    assert small.decode(small.encode(transformer_genotype(2, 3))) == transformer_genotype(2, 3)
    with pytest.raises(GenotypeError, match="space.encoder_steps=5 fits it"):
        small.encode(TRANSFORMER)
    with pytest.raises(GenotypeError, match="has op 'cross_attention_4'; allowed"):
        Seq2SeqGenotype((("cross_attention_4", 1, "identity", 1, "add"),), TRANSFORMER.decoder)
    with pytest.raises(GenotypeError, match="reads state 3; allowed: 0..1"):
        Seq2SeqGenotype((("glu", 3, "identity", 1, "add"),), TRANSFORMER.decoder)


def test_transformer_cell_is_the_pre_norm_transformer_layer() -> None:
    """The padded Transformer cell computes x + SA(LN x), then h + FFN(LN h): its loose end is the FFN block."""
    assert loose_ends(TRANSFORMER.encoder) == [6] and loose_ends(EVOLVED_TRANSFORMER.decoder) == [8]
    torch.manual_seed(0)
    model = _perturbed(Translator(TRANSFORMER, 30, C, 1, 0.0), 9, 0.1)
    cell = model.encoder[0]
    sa, ffn = cell.ops[0], cell.ops[2]
    x = torch.randn(2, 5, C)
    ctx = SeqContext(mask=torch.ones(2, 5, dtype=torch.bool))
    with torch.no_grad():
        h = x + sa(x, ctx)
        expected = h + ffn(h, ctx)
        assert torch.allclose(cell(x, x, ctx)[0], expected, atol=1e-6)


def test_a_decoder_without_attention_to_the_encoder_is_refused() -> None:
    ops = [op for op in DECODER_OPS if not op.startswith("cross_attention")]
    with pytest.raises(ValueError, match="has no attention to the encoder"):
        Seq2SeqSpace(decoder_ops=ops)


def test_evolution_seeded_with_the_transformer_starts_from_its_cells() -> None:
    from zoo.search import STRATEGIES

    space = Seq2SeqSpace()
    evo = STRATEGIES.get("evolution")(space, budget=8, seed=0, population_size=4, sample_size=2, seed_arch="transformer")
    first = [evo.ask()[0] for _ in range(4)]
    assert first[0] == TRANSFORMER
    assert all(sum(a != b for a, b in zip(space.encode(g), space.encode(TRANSFORMER))) == 1 for g in first[1:])


def test_a_sentence_translates_the_same_alone_and_in_a_padded_batch() -> None:
    g = torch.Generator().manual_seed(8)
    model = _perturbed(Translator(EVOLVED_TRANSFORMER, 50, C, 2, 0.0), 10, 0.1)
    src = torch.randint(4, 50, (1, 5), generator=g)
    tgt = torch.randint(4, 50, (1, 6), generator=g)
    batch = torch.cat([torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], 1), torch.randint(4, 50, (1, 9), generator=g)])
    with torch.no_grad():
        alone = model(src, tgt)
        together = model(batch, torch.cat([tgt, torch.randint(4, 50, (1, 6), generator=g)]))[:1]
    assert torch.allclose(alone, together, atol=1e-4), float((alone - together).abs().max())
