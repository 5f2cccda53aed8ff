"""Translation's contract fixture: 80 generated reversal pairs as a TSV file, a 60-token vocabulary,
1-layer translators 8 wide; broken TSV files and bad values."""

from __future__ import annotations

from pathlib import Path

from fixtures import BadData, TaskFixture, contract_fixture
from helpers.pairs import reversal_pairs, write_tsv

from zoo.config_values import ConfigError


def _lines(text: bytes) -> object:
    def write(root: Path) -> list[str]:
        good = "".join(f"{s}\t{t}\n" for s, t in reversal_pairs(20)).encode()
        (root / "pairs.tsv").write_bytes(good + text)
        return [f"data.root={root}/pairs.tsv"]

    return write


@contract_fixture("translation")
def translation(root: Path) -> TaskFixture:
    data = write_tsv(root / "pairs.tsv", reversal_pairs(80))
    return TaskFixture(
        overrides=[
            "task=translation",
            "data=tsv",
            f"data.root={data}",
            "data.valid_size=8",
            "data.test_size=8",
            "task.vocab_size=64",
            "task.max_len=12",
            *(
                f"task.{part}.{key}={value}"
                for part in ("model", "estimate_model", "supernet")
                for key, value in (("d_model", 8), ("layers", 1))
            ),
            "task.baseline.enabled=false",
            "task.decode.num_beams=2",
            "task.decode.max_new_tokens=10",
            "task.samples=2",
            "trainer.epochs=2",
            "trainer.estimate_epochs=1",
            "trainer.batch_size=16",
            "progress=false",
        ],
        bad_data=[
            BadData("no tab", "{root}/pairs.tsv:21: no tab between source and target", write=_lines(b"just one side\n")),
            BadData("empty target", "{root}/pairs.tsv:21: empty target", write=_lines(b"ka lo\t \n")),
            BadData("invalid UTF-8", "{root}/pairs.tsv:21: not valid UTF-8", write=_lines(b"k\xe4se\tcheese\n")),
            BadData(
                "too few pairs",
                "data.root={root}/pairs.tsv: too few pairs",
                overrides=("data.valid_size=8", "data.test_size=8"),
                write=_lines(b""),
            ),
            BadData("missing file", "data.root={root}/nothing.tsv does not exist", overrides=("data.root={root}/nothing.tsv",)),
            BadData(
                "vocabulary too small",
                "task.vocab_size=8 is invalid; allowed: an integer >= 64",
                overrides=("task.vocab_size=8",),
                error=ConfigError,
            ),
            BadData(
                "segmentation data",
                "data=masks is not translation data; allowed with task=translation: bible, trans_de_en, tsv",
                overrides=("data=masks",),
                error=ConfigError,
            ),
        ],
    )
