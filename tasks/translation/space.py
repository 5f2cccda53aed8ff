"""The seq2seq cell space: an encoder cell and a decoder cell of two-branch blocks (the Evolved Transformer's form).

So, Liang & Le ("The Evolved Transformer", ICML 2019) search a cell of blocks, each block
reading two hidden states of the cell (the cell input or an earlier block), putting each
through one layer (:mod:`tasks.translation.ops`) and joining the two branches with a combiner
(add, concatenation, multiplication). Here a cell reads the two cells before it, as DARTS cells
do (Liu et al., ICLR 2019): state 0 is the output of the cell two back, state 1 that of the
previous cell, state ``i + 2`` is block ``i``. A cell's output is the sum of its loose ends
(blocks no later block reads), so an identity branch is a residual connection and the
pre-norm Transformer layer is a cell exactly (:data:`TRANSFORMER`).

:class:`Seq2SeqGenotype` holds both cells as ``(op1, input1, op2, input2, combiner)`` blocks.
:class:`Seq2SeqSpace` (registered ``seq2seq``) is its decision vector, five decisions per block
(first input, its op, second input, its op, combiner; both branches may read the same state,
as the Transformer's residual does), so every multi-trial strategy searches it unchanged. The
decoder's ops add attention to the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from tasks.translation.ops import COMBINERS, DECODER_OPS, ENCODER_OPS
from zoo.config_values import POSITIVE_INT, Text, check_values
from zoo.space.base import SPACES, SearchSpace
from zoo.space.genotype import GenotypeError, genotype_class

Block = tuple[str, int, str, int, str]  # (op1, input1, op2, input2, combiner)


def loose_ends(blocks: Sequence[Block]) -> list[int]:
    """State indices of the blocks no later block reads (the last block always is one)."""
    read = {src for b in blocks for src in (b[1], b[3])}
    return [i + 2 for i in range(len(blocks)) if i + 2 not in read]


def _check_cell(name: str, blocks: Any, ops: Sequence[str]) -> tuple[Block, ...]:
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise GenotypeError(f"seq2seq genotype field {name!r} must be a non-empty list of blocks")
    out = []
    for i, b in enumerate(blocks):
        if not isinstance(b, (list, tuple)) or len(b) != 5:
            raise GenotypeError(f"seq2seq genotype {name} block {i} must be [op1, input1, op2, input2, combiner], got {b!r}")
        op1, in1, op2, in2, comb = b
        for op in (op1, op2):
            if op not in ops:
                raise GenotypeError(f"seq2seq genotype {name} block {i} has op {op!r}; allowed: {', '.join(ops)}")
        for src in (in1, in2):
            if not isinstance(src, int) or isinstance(src, bool) or not 0 <= src < i + 2:
                raise GenotypeError(f"seq2seq genotype {name} block {i} reads state {src!r}; allowed: 0..{i + 1}")
        if comb not in COMBINERS:
            raise GenotypeError(f"seq2seq genotype {name} block {i} has combiner {comb!r}; allowed: {', '.join(COMBINERS)}")
        out.append((str(op1), int(in1), str(op2), int(in2), str(comb)))
    return tuple(out)


@genotype_class
@dataclass(frozen=True)
class Seq2SeqGenotype:
    """The encoder cell and the decoder cell, each a tuple of ``(op1, input1, op2, input2, combiner)`` blocks."""

    encoder: tuple[Block, ...]
    decoder: tuple[Block, ...]

    space: ClassVar[str] = "seq2seq"
    task: ClassVar[str] = "translation"  # zoo.create_model builds it with the translation task's builder

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoder", _check_cell("encoder", self.encoder, ENCODER_OPS))
        object.__setattr__(self, "decoder", _check_cell("decoder", self.decoder, DECODER_OPS))

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "encoder": [list(b) for b in self.encoder], "decoder": [list(b) for b in self.decoder]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Seq2SeqGenotype:
        for key in ("encoder", "decoder"):
            if key not in data:
                raise GenotypeError(f"seq2seq genotype is missing field {key}")
        return cls(tuple(tuple(b) for b in data["encoder"]), tuple(tuple(b) for b in data["decoder"]))  # type: ignore[arg-type]

    def reads_source(self) -> bool:
        """Whether the decoder attends to the encoder at all (a decoder that never does cannot translate)."""
        return any(op.startswith("cross_attention") for b in self.decoder for op in (b[0], b[2]))

    def draw(self) -> Any:
        """The encoder cell (top) and the decoder cell (bottom); a block's combiner is written on its node."""
        import matplotlib.pyplot as plt

        from zoo.plots import draw_cell

        fig, axes = plt.subplots(2, 1, figsize=(10, 8), dpi=110)
        for ax, name, blocks in ((axes[0], "encoder cell", self.encoder), (axes[1], "decoder cell", self.decoder)):
            edges = [
                (f"{op}" + (f" ({comb})" if k == 1 else ""), src)
                for op1, in1, op2, in2, comb in blocks
                for k, (op, src) in enumerate(((op1, in1), (op2, in2)))
            ]
            draw_cell(ax, edges, loose_ends(blocks), name)
        return fig

    def __str__(self) -> str:
        def cell(blocks: Sequence[Block]) -> str:
            return "; ".join(f"{c}({a}<-{i}, {b}<-{j})" for a, i, b, j, c in blocks)

        return f"encoder=[{cell(self.encoder)}] decoder=[{cell(self.decoder)}]"


@SPACES.register("seq2seq")
class Seq2SeqSpace(SearchSpace):
    """Five decisions per block (input, op, input, op, combiner): the encoder cell's blocks, then the decoder's."""

    name = "seq2seq"

    def __init__(
        self,
        encoder_steps: int = 5,
        decoder_steps: int = 7,
        encoder_ops: Sequence[str] = ENCODER_OPS,
        decoder_ops: Sequence[str] = DECODER_OPS,
        combiners: Sequence[str] = COMBINERS,
        **_: Any,
    ) -> None:
        check_values(
            {
                "encoder_steps": encoder_steps,
                "decoder_steps": decoder_steps,
                "encoder_ops": list(encoder_ops),
                "decoder_ops": list(decoder_ops),
                "combiners": list(combiners),
            },
            {
                "encoder_steps": POSITIVE_INT,
                "decoder_steps": POSITIVE_INT,
                "encoder_ops": Text(items=True),
                "decoder_ops": Text(items=True),
                "combiners": Text(items=True),
            },
            "space",
        )
        for key, given, allowed in (
            ("encoder_ops", encoder_ops, ENCODER_OPS),
            ("decoder_ops", decoder_ops, DECODER_OPS),
            ("combiners", combiners, COMBINERS),
        ):
            odd = [x for x in given if x not in allowed]
            if odd or not given:
                what = repr(odd[0]) if odd else "no entry"
                raise ValueError(f"space.{key} has {what}; allowed: some of {', '.join(allowed)}")
        if not any(op.startswith("cross_attention") for op in decoder_ops):
            raise ValueError(
                f"space.decoder_ops={list(decoder_ops)} has no attention to the encoder, so no decoder could read the source; "
                "allowed: a list with cross_attention_4 or cross_attention_8"
            )
        self.encoder_steps, self.decoder_steps = int(encoder_steps), int(decoder_steps)
        self.encoder_ops, self.decoder_ops, self.combiners = list(encoder_ops), list(decoder_ops), list(combiners)

    def _cells(self) -> tuple[tuple[str, int, list[str]], ...]:
        return (("encoder", self.encoder_steps, self.encoder_ops), ("decoder", self.decoder_steps, self.decoder_ops))

    def cardinalities(self) -> list[int]:
        card: list[int] = []
        for _, steps, ops in self._cells():
            for i in range(steps):
                card += [i + 2, len(ops), i + 2, len(ops), len(self.combiners)]
        return card

    def decision_names(self) -> list[str]:
        return [
            f"{cell}.block{i}.{what}"
            for cell, steps, _ in self._cells()
            for i in range(steps)
            for what in ("in1", "op1", "in2", "op2", "combiner")
        ]

    def groups(self) -> list[list[int]]:
        n = self.encoder_steps + self.decoder_steps
        return [list(range(5 * g, 5 * g + 5)) for g in range(n)]

    def decode(self, choices: Sequence[int]) -> Seq2SeqGenotype:
        x = [int(c) for c in choices]
        cells = []
        offset = 0
        for _, steps, ops in self._cells():
            blocks = []
            for i in range(steps):
                a, oa, b, ob, c = x[offset + 5 * i : offset + 5 * i + 5]
                blocks.append((ops[oa], a, ops[ob], b, self.combiners[c]))
            cells.append(tuple(blocks))
            offset += 5 * steps
        return Seq2SeqGenotype(cells[0], cells[1])

    def encode(self, genotype: Seq2SeqGenotype) -> list[int]:
        if not isinstance(genotype, Seq2SeqGenotype):
            raise GenotypeError(f"space 'seq2seq' takes seq2seq genotypes, got {type(genotype).__name__}")
        x: list[int] = []
        for (cell, steps, ops), blocks in zip(self._cells(), (genotype.encoder, genotype.decoder)):
            if len(blocks) != steps:
                raise GenotypeError(
                    f"genotype's {cell} cell has {len(blocks)} blocks; space 'seq2seq' has {steps} (space.{cell}_steps={len(blocks)} fits it)"
                )
            for i, (op1, in1, op2, in2, comb) in enumerate(blocks):
                for op in (op1, op2):
                    if op not in ops:
                        raise GenotypeError(f"op {op!r} of the {cell} cell is not in space 'seq2seq'; allowed: {', '.join(ops)}")
                if comb not in self.combiners:
                    raise GenotypeError(f"combiner {comb!r} is not in space 'seq2seq'; allowed: {', '.join(self.combiners)}")
                x += [in1, ops.index(op1), in2, ops.index(op2), self.combiners.index(comb)]
        return x

    def genotype_from_json(self, data: dict[str, Any]) -> Seq2SeqGenotype:
        return Seq2SeqGenotype.from_json(data)


def _pad(blocks: list[Block], steps: int) -> tuple[Block, ...]:
    """Fills a cell to ``steps`` blocks with pass-through blocks (identity of the last block + zero), which leave it unchanged."""
    blocks = list(blocks)
    while len(blocks) < steps:
        last = len(blocks) + 1
        blocks.append(("identity", last, "zero", last, "add"))
    return tuple(blocks)


def transformer_genotype(encoder_steps: int = 5, decoder_steps: int = 7, heads: int = 8) -> Seq2SeqGenotype:
    """The pre-norm Transformer layer (Vaswani et al. 2017) as cells: self-attention + residual, then the
    feed-forward layer + residual; the decoder attends to the encoder between them."""
    sa, ca = f"self_attention_{heads}", f"cross_attention_{heads}"
    enc = [(sa, 1, "identity", 1, "add"), ("ffn_relu", 2, "identity", 2, "add")]
    dec = [(sa, 1, "identity", 1, "add"), (ca, 2, "identity", 2, "add"), ("ffn_relu", 3, "identity", 3, "add")]
    return Seq2SeqGenotype(_pad(enc, encoder_steps), _pad(dec, decoder_steps))


TRANSFORMER = transformer_genotype()

# The Evolved Transformer's cells (So et al. 2019, Figure 3) in this space. The paper's branches change
# width (4d dense, d/2 convolutions, 2d separable convolution); here every op keeps the model's width.
EVOLVED_TRANSFORMER = Seq2SeqGenotype(
    encoder=(
        ("glu", 1, "identity", 1, "add"),  # gated linear unit + residual
        ("ffn_relu", 2, "sep_conv_3x1", 2, "add"),  # dense ReLU | 3x1 convolution ReLU
        ("sep_conv_9x1", 3, "identity", 2, "add"),  # separable 9x1 convolution + residual
        ("self_attention_8", 4, "identity", 4, "add"),  # 8-head self-attention + residual
        ("ffn_relu", 5, "identity", 5, "add"),  # feed-forward + residual
    ),
    decoder=(
        ("self_attention_8", 1, "cross_attention_8", 1, "add"),  # self-attention (the paper's has 16 heads) | attention to the encoder
        ("identity", 2, "identity", 1, "add"),  # residual
        ("sep_conv_11x1", 3, "sep_conv_7x1", 3, "add"),  # separable 11x1 ReLU | separable 7x1
        ("sep_conv_7x1", 4, "identity", 3, "add"),  # separable 7x1 + residual
        ("self_attention_8", 5, "identity", 5, "add"),  # 8-head self-attention + residual
        ("cross_attention_8", 6, "identity", 6, "add"),  # attention to the encoder + residual
        ("ffn_swish", 7, "identity", 7, "add"),  # swish feed-forward + residual
    ),
)
