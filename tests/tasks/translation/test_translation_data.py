"""Translation data: the Ding dictionary pairs, tsv files (valid and broken input), the joint BPE tokenizer and BLEU/chrF."""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from pathlib import Path

import pytest
import sacrebleu
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from tasks.translation.data import (
    DATA_SPECS,
    DING_FILE,
    MIN_TRAIN_PAIRS,
    SPECIAL,
    TranslationData,
    ding_pairs,
    encode,
    load,
    normalise,
    strip_annotations,
    train_tokenizer,
)
from tasks.translation.metrics import translation_scores
from zoo.config_values import check_values
from zoo.task import DataError

CONF = Path(__file__).resolve().parents[3] / "tasks" / "translation" / "conf" / "data"
BRACKETS = re.compile(r"[{}\[\]<>()]")
# known dictionary lines (by their start) and the pairs they give with min_words=3
KNOWN = {
    "Aachener {adj} | der Aachener Dom": [("der Aachener Dom", "the Aachen Cathedral")],
    "gut {adv} | besser | am besten": [
        ("Geht es dir gut?", "Are you well?"),
        ("Wie geht es dir? – Sehr gut, danke.", "How are you? – Very well, thanks."),
    ],
    # "Er war einigermaßen zufrieden.; Er war halbwegs zufrieden." (synonyms) and
    # "They were moderately / reasonably safe there." (slash alternatives) are left out
    "einigermaßen; halbwegs {adv} | einigermaßen erfolgreich sein": [
        ("einigermaßen erfolgreich sein", "to be moderately successful"),
        ("das einzige halbwegs interessante Thema", "the only moderately interesting subjet"),
        ("nachdem sie sich von der Operation einigermaßen erholt hatte", "after she had recovered reasonably well from the operation"),
        ("Ich fühle mich einigermaßen hilflos.", "I’m feeling reasonably helpless."),
        ("Er kann einigermaßen mit dem Computer umgehen.", "He can handle the computer reasonably."),
        (
            "Wenn du auch nur einigermaßen Spanisch sprichst, werden sie dich nehmen.",
            "If you speak Spanish even moderately well, they will take you.",
        ),
    ],
    # the only example has slash alternatives; the others are shorter than three words
    "ihr {ppron} {pl} (euer; euch; euch)": [],
}


def _need_ding() -> None:
    if not DING_FILE.is_file():
        pytest.skip(f"needs the Ding dictionary {DING_FILE}: apt-get install trans-de-en (scripts/setup.sh does as root)")


def _defaults(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))


@pytest.fixture(scope="module")
def ding() -> TranslationData:
    _need_ding()
    return load(OmegaConf.create(_defaults("trans_de_en")))


# ---------------------------------------------------------------- config files
@pytest.mark.parametrize("name", ["trans_de_en", "tsv"])
def test_yaml_keys_match_specs(name: str) -> None:
    cfg = _defaults(name)
    assert list(cfg)[0] == "name" and cfg["name"] == name
    assert set(cfg) - {"name"} == set(DATA_SPECS[name])
    check_values(OmegaConf.create(cfg), DATA_SPECS[name], "data")


# ---------------------------------------------------------------- trans_de_en
def test_ding_sizes_disjoint_sources_and_clean_text(ding: TranslationData) -> None:
    cfg = _defaults("trans_de_en")
    assert (len(ding.valid), len(ding.test)) == (cfg["valid_size"], cfg["test_size"])
    assert len(ding.train) + len(ding.valid) + len(ding.test) == cfg["max_pairs"]
    assert ding.source["clean_pairs"] > cfg["max_pairs"] and ding.source["sizes"]["train"] == len(ding.train)
    assert (ding.src_lang, ding.tgt_lang) == ("de", "en")
    sources = [{s for s, _ in split} for split in (ding.train, ding.valid, ding.test)]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    every = ding.train + ding.valid + ding.test
    assert len(set(every)) == len(every)
    for pair in every:
        for text in pair:
            assert text == normalise(text) and 3 <= len(text.split()) <= 30, pair
            assert not BRACKETS.search(text) and ";" not in text and "/" not in text, pair
    json.dumps(ding.source)
    assert "Frank Richter" in ding.source["origin"]


def test_ding_is_deterministic_and_seeded(ding: TranslationData) -> None:
    again = load(OmegaConf.create(_defaults("trans_de_en")))
    assert again == ding
    other = load(OmegaConf.create({**_defaults("trans_de_en"), "split_seed": 1}))
    assert other.test != ding.test and len(other.test) == len(ding.test)


def test_ding_known_lines_parse_to_their_pairs() -> None:
    _need_ding()
    lines = DING_FILE.read_text(encoding="utf-8").splitlines()
    for start, expected in KNOWN.items():
        (line,) = [x for x in lines if x.startswith(start)]
        assert ding_pairs(unicodedata.normalize("NFC", line), 3, 30) == expected, start
    full = load(OmegaConf.create({**_defaults("trans_de_en"), "max_pairs": None, "direction": "en-de"}))
    assert (full.src_lang, full.tgt_lang) == ("en", "de") and full.source["clean_pairs"] == len(full.train + full.valid + full.test)
    every = set(full.train + full.valid + full.test)
    assert all((e, d) in every for pairs in KNOWN.values() for d, e in pairs)


def test_ding_parsing_rules() -> None:
    assert strip_annotations("Wie geht es euch (allen)? {ugs.} [Br.]") == "Wie geht es euch?"
    assert strip_annotations("a (b [c] d) e <f>") == "a e"
    line = "Haus {n} | das Haus am See [geogr.] | ein großes Haus :: house | the house by the lake | a big house; a large house"
    assert ding_pairs(line, 3, 30) == [("das Haus am See", "the house by the lake")]
    assert ding_pairs("a b c | d e f :: a b c") == []  # sub-entry counts differ
    assert ding_pairs("# a b c :: d e f") == []


def test_ding_missing_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load(OmegaConf.create({"name": "trans_de_en", "root": str(tmp_path / "nope")}))
    msg = str(e.value)
    assert msg.startswith(f"data.root={tmp_path / 'nope'} does not exist") and "apt-get install trans-de-en" in msg and "\n" not in msg


# ---------------------------------------------------------------- tsv
def _write(path: Path, lines: list[str]) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def _tsv(**kw) -> TranslationData:
    return load(OmegaConf.create({**_defaults("tsv"), **kw}))


def _pairs(n: int, tag: str = "") -> list[str]:
    return [f"Satz  {tag}{i}\t sentence {tag}{i} " for i in range(n)]


def test_tsv_separate_valid_and_test_files(tmp_path: Path) -> None:
    root = _write(tmp_path / "train.tsv", ["", *_pairs(20), "   "])
    valid = _write(tmp_path / "valid.tsv", _pairs(3, "v"))
    test = _write(tmp_path / "test.tsv", _pairs(4, "t"))
    data = _tsv(root=root, valid=valid, test=test, src_lang="de", tgt_lang="en")
    assert data.train == [(f"Satz {i}", f"sentence {i}") for i in range(20)]
    assert data.valid == [(f"Satz v{i}", f"sentence v{i}") for i in range(3)]
    assert len(data.test) == 4 and (data.src_lang, data.tgt_lang) == ("de", "en")
    assert data.source["sizes"] == {"train": 20, "valid": 3, "test": 4} and data.source["valid_file"] == valid


def test_tsv_hash_split_keeps_each_source_in_one_split(tmp_path: Path) -> None:
    lines = _pairs(100) + [f"Satz {i}\tanother sentence {i}" for i in range(0, 100, 7)]  # sources with two targets
    data = _tsv(root=_write(tmp_path / "all.tsv", lines), valid_size=10, test_size=0.1)
    assert len(lines) == 115 and (len(data.valid), len(data.test), len(data.train)) == (10, 12, 115 - 22)  # 0.1 * 115 pairs: 12
    sources = [{s for s, _ in split} for split in (data.train, data.valid, data.test)]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    assert data == _tsv(root=str(tmp_path / "all.tsv"), valid_size=10, test_size=0.1)
    assert (data.src_lang, data.tgt_lang) == ("src", "tgt")


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        (b"a b\tc d\nno tab here\n", 2, "no tab between source and target"),
        (b"a b\tc d\n\nx\ty\tz\n", 3, "2 tabs"),
        (b"a\tb\n  \tb\n", 2, "empty source"),
        (b"a\tb\nc\t \n", 2, "empty target"),
        (b"a\tb\nc\td\n\xe4\tb\n", 3, "not valid UTF-8"),
    ],
)
def test_tsv_broken_line_names_file_and_line(tmp_path: Path, body: bytes, line: int, problem: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(body)
    with pytest.raises(DataError) as e:
        _tsv(root=str(path))
    msg = str(e.value)
    assert msg.startswith(f"{path}:{line}: {problem}") and "\n" not in msg, msg


def test_tsv_broken_valid_file_is_named(tmp_path: Path) -> None:
    valid = tmp_path / "valid.tsv"
    valid.write_bytes(b"a\tb\r\nc\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(valid))}:2: no tab"):
        _tsv(root=_write(tmp_path / "train.tsv", _pairs(20)), valid=str(valid))


def test_tsv_too_few_pairs_and_missing_files(tmp_path: Path) -> None:
    small = _write(tmp_path / "small.tsv", _pairs(MIN_TRAIN_PAIRS + 1))
    with pytest.raises(DataError) as e:
        _tsv(root=small, valid_size=1, test_size=1)
    msg = str(e.value)
    assert msg.startswith(f"data.root={small}: too few pairs: train {MIN_TRAIN_PAIRS - 1}, valid 1, test 1") and "\n" not in msg
    with pytest.raises(DataError, match="test 0"):
        _tsv(root=_write(tmp_path / "some.tsv", _pairs(20)), test_size=0.01)
    missing = str(tmp_path / "missing.tsv")
    with pytest.raises(DataError, match=rf"^data\.root={re.escape(missing)} does not exist$"):
        _tsv(root=missing)
    with pytest.raises(DataError, match=rf"^data\.test={re.escape(missing)} does not exist$"):
        _tsv(root=small, test=missing)
    with pytest.raises(DataError, match="^data.root is not set"):
        _tsv()


# ---------------------------------------------------------------- tokenizer
def _vocab_digest(tok) -> str:
    return hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest()


def test_tokenizer_round_trip_specials_and_determinism(ding: TranslationData, tmp_path: Path) -> None:
    texts = [t for pair in ding.train[:4000] for t in pair]
    tok = train_tokenizer(texts, 2000)
    assert len(tok) == 2000 and [tok.convert_tokens_to_ids(SPECIAL[k]) for k in ("pad", "bos", "eos", "unk")] == [0, 1, 2, 3]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert _vocab_digest(train_tokenizer(texts, 2000)) == _vocab_digest(tok)
    assert _vocab_digest(train_tokenizer(texts[::-1][:5000], 2000)) != _vocab_digest(tok)

    german = "Die  Größe der Straße überrascht Jörg: äöü ß ÄÖÜ. "
    ids = tok(german)["input_ids"]
    assert ids[-1] == 2 and 3 not in ids and ids.count(2) == 1
    assert tok.decode(ids, skip_special_tokens=True) == normalise(german) == "Die Größe der Straße überrascht Jörg: äöü ß ÄÖÜ."
    for text in texts[:300]:
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert 3 in tok("Größe ☃")["input_ids"]  # a character never seen

    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert encode(again, texts[:500], 64) == encode(tok, texts[:500], 64)
    assert again.decode(again(german)["input_ids"], skip_special_tokens=True) == normalise(german)


def test_encode_ends_in_eos_and_truncates(ding: TranslationData) -> None:
    tok = train_tokenizer([t for pair in ding.train[:2000] for t in pair], 1000)
    texts = [s for s, _ in ding.train[:200]]
    full = encode(tok, texts, 1000)
    assert all(ids[-1] == 2 and 2 not in ids[:-1] for ids in full)
    short = encode(tok, texts, 5)
    assert all(len(ids) <= 5 and ids[-1] == 2 for ids in short)
    assert all(s == f if len(f) <= 5 else s == [*f[:4], 2] for s, f in zip(short, full, strict=True))
    assert any(len(f) > 5 for f in full) and encode(tok, [], 5) == []
    with pytest.raises(ValueError):
        encode(tok, texts, 0)


# ---------------------------------------------------------------- metrics
def test_identical_translations_score_100() -> None:
    refs = ["Das ist ein Test.", "Noch ein Satz, bitte."]
    scores = translation_scores(refs, refs, "de")
    assert math.isclose(scores["bleu"], 100.0) and math.isclose(scores["chrf"], 100.0)
    assert "tok:13a" in scores["bleu_signature"] and "nrefs:1" in scores["bleu_signature"] and "nc:6" in scores["chrf_signature"]


def test_partial_match_against_independent_values() -> None:
    hyps, refs = ["the cat sat on the mat"], ["the cat sat on a mat"]
    scores = translation_scores(hyps, refs)
    # clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty
    assert math.isclose(scores["bleu"], 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel_tol=1e-9)
    assert math.isclose(scores["bleu"], sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert math.isclose(scores["chrf"], sacrebleu.corpus_chrf(hyps, [refs]).score) and 0 < scores["chrf"] < 100
    two = translation_scores(["a house is big", "the dog runs"], ["a house is large", "the dog runs fast"])
    assert 0 < two["bleu"] < 100 and math.isclose(
        two["bleu"], sacrebleu.corpus_bleu(["a house is big", "the dog runs"], [["a house is large", "the dog runs fast"]]).score
    )


def test_length_mismatch_names_both_lengths() -> None:
    with pytest.raises(ValueError, match=r"^3 hypotheses but 2 references"):
        translation_scores(["a", "b", "c"], ["a", "b"])
