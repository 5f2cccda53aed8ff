"""Generated parallel text for the translation tests: a source sentence of made-up words and its reversal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = ("ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "vo", "ze", "bam", "dol", "fen", "gur", "hix", "jop")


def reversal_pairs(n: int, seed: int = 0, lengths: tuple[int, int] = (3, 6)) -> list[tuple[str, str]]:
    """``n`` distinct (source, target) pairs: target = source's words in reverse order."""
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    while len(out) < n:
        words = [WORDS[int(i)] for i in rng.integers(len(WORDS), size=int(rng.integers(lengths[0], lengths[1] + 1)))]
        out.setdefault(" ".join(words), " ".join(reversed(words)))
    return list(out.items())


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path
