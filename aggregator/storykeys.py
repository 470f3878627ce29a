# ruff: noqa: RUF001, RUF002, RUF003  (Cyrillic and typographic quotes are the data here)
"""The keys an item is compared on for same-story clustering (``stories.py``), and how.

Terms. The title and the first ``TEXT_CHARS`` characters of the text are split into words
(Unicode-aware; look-alike letters from the other script are repaired, "U.S." is "US").
Stopwords go (English, Russian, Ukrainian, headline fillers such as "says" or "watch").
Each word becomes a *key*: English words lose their inflection (crude suffix stripping);
Russian and Ukrainian words lose one case/number ending and are transliterated to Latin
("г"/"и" read the Ukrainian way when the text has Ukrainian letters); then every key is cut
to ``KEY_LENGTH`` characters and loses trailing vowels. Crude, but it lets "Avdiivka",
"Авдіївка" and "Авдіївки" meet, and "Zelenskyy"/"Зеленського", "Syrskyi"/"Сирський".
Russian spellings ("Авдеевка") meet each other, not the Ukrainian or English ones.

Names. A word is a *name* when it is capitalised where a common word would not be (not
first in a clause, in text that is not Title Case), an acronym, or a number of two or more
digits ("31,000 troops", "500 sanctions" are facts of one event). A word seen capitalised
only where every word is (NYT-style Title Case, the start of a sentence) is settled by the
window: a name if other items wrote it as one more often than in lower case.

An item's keys come with flags: where the item has the key (``TITLE``, ``KICKER``, ``TEXT``)
and whether it writes it as a name (``NAMED``), as a common word (``COMMON``), or leaves that
to the window (neither). Small ints, so a window of thousands of items holds one shared
object per flag value instead of an object per key and item.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "COMMON",
    "KEYS_VERSION",
    "KICKER",
    "NAMED",
    "TEXT",
    "TEXT_CHARS",
    "TITLE",
    "ItemKeys",
    "decode_keys",
    "encode_keys",
    "read_keys",
]

TEXT_CHARS = 300  # summaries past this are body text: more noise than evidence
KEY_LENGTH = 6  # keys are cut here: a crude stemmer that works for three languages
KICKER_WORDS = 4  # a title's head before a colon up to this long may be a series label

TITLE = 1  # in the title proper
KICKER = 2  # in the title's kicker ("Middle East Crisis: …")
TEXT = 4  # in the first TEXT_CHARS characters of the text
NAMED = 8  # written as a name somewhere in the item
COMMON = 16  # written only as a common word (never set together with NAMED)


@dataclass(frozen=True, slots=True)
class ItemKeys:
    flags: Mapping[str, int]  # key → flags, in the order the item first has them
    surfaces: Mapping[str, str]  # key → the word as the item first wrote it
    kicker: str  # the title's label before a colon, normalised; "" when there is none


# Bump whenever read_keys would read any item differently: keys stored by another version
# are then read again from the text instead of being restored.
KEYS_VERSION = 1


def encode_keys(keys: ItemKeys) -> str:
    """The keys and flags as compact JSON, for storing (no surfaces: only deciding uses them)."""
    return json.dumps([keys.kicker, keys.flags], ensure_ascii=False, separators=(",", ":"))


def decode_keys(encoded: str) -> ItemKeys:
    """What :func:`encode_keys` stored; ValueError if it is not that."""
    try:
        kicker, flags = json.loads(encoded)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not stored story keys: {encoded[:40]!r}") from exc
    if not isinstance(kicker, str) or not isinstance(flags, dict):
        raise ValueError(f"not stored story keys: {encoded[:40]!r}")
    return ItemKeys(flags, {}, kicker)


def read_keys(title: str, text: str) -> ItemKeys:
    """The keys of an item with this title and (plain) text, with their flags."""
    text = text[:TEXT_CHARS]
    ukrainian = not _UKRAINIAN_LETTERS.isdisjoint((title + text).lower())
    kicker, rest = _split_kicker(title)
    title_words = _words(rest)
    kicker_words = _words(kicker)
    title_case = _is_title_case(kicker_words + title_words)
    flags: dict[str, int] = {}
    surfaces: dict[str, str] = {}
    for field, words, trust_case in (
        (KICKER, kicker_words, not title_case),
        (TITLE, title_words, not title_case),
        (TEXT, _words(text), True),
    ):
        for word, initial in words:
            analysed = _analyse(word, ukrainian=ukrainian)
            if analysed is None:
                continue
            key, is_number = analysed
            name = _name_evidence(word, initial=initial, trust_case=trust_case, number=is_number)
            bits = field | (NAMED if name else COMMON if name is False else 0)
            seen = flags.get(key)
            if seen is None:
                surfaces[key] = word
                flags[key] = bits
            else:
                # "Bank" mid-sentence once is enough to make it a name.
                merged = seen | bits
                flags[key] = merged & ~COMMON if merged & NAMED else merged
    return ItemKeys(flags, surfaces, " ".join(kicker.lower().split()))


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS = _word_set(
    """
    a about above after again against ago all almost also although always am among an and
    another any are aren't around as at away back be became because been before being below
    between both but by can cannot could did do does doing done down during each either else
    even ever every few for from further get gets getting go goes going gone got had has have
    having he her here hers herself him himself his how however i if in including into is it
    its itself just least less like made make makes many may me might more most much must my
    near nearly never new no nor not now of off often on once one only onto or other others
    our ours out over own per perhaps put rather really same say says said see seen she should
    since so some still such than that the their theirs them themselves then there these they
    this those though through thus to too toward towards under until up upon us use used very
    via was we well were what when where whether which while who whom whose why will with
    within without would yet you your yours
    amid according added adds ahead alongside already ask asked asks become becomes big call
    called calls come comes coming day days early first four full give gives good great half
    here's high hit keep key know last late later latest let lets live long look looks major
    man mr mrs ms next news nine old part people plan plans point quickly report reported
    reports reportedly second set seven show shows six take takes taken ten tell tells thing
    things think three time times today told top two update updates video want wants watch
    way ways week weeks what's who's world year years yesterday
    """
)

_CYRILLIC_STOPWORDS = _word_set(
    """
    а без более бы был была были было быть в вам вас весь во вот все всех вы где да даже для
    до его ее её ей если есть еще ещё же за здесь и из или им их к как когда кто ли либо мне
    может мы на над не нет ни них но ну о об однако он она они оно от по под после при про с
    со так также там те тем то того тоже только том ту тут у уже чем что чтобы эта эти это
    этот этого я года году заявил заявила сообщил сообщила сообщили против время
    і й та але або чи що це цей ця ці як від із зі між через після під над при про для його
    її їх він вона воно вони ми ви ти був була було були бути буде також вже ще які який яка
    яке того тому тоді коли де тут усі всі весь може можна має року році заявив заявила
    повідомив повідомила проти час
    """
)

# Headline connectives around which the next word starts a new clause ("Kremlin: Putin …").
_CLAUSE_BREAK = re.compile(r"[.!?:;…|—–]|\s-\s|(?:^|\s)[(\['‘\"“«„]+$")
_DOTTED_ACRONYM = re.compile(r"\b(?:[A-Za-z]\.){2,}")
_WORD = re.compile(r"\d+(?:[.,]\d+)*[^\W\d_]*|[^\W\d_]+(?:['’][^\W\d_]+)*(?:-[^\W\d_]+)*")
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")

# Case, number and verb endings of Russian and Ukrainian, longest first.
_CYRILLIC_ENDINGS = tuple(
    sorted(
        _word_set(
            """
            ами ями ого его ому ему ими ыми ій ий ый ой ей ая яя ое ее ые ие ую юю ом ем ам
            ям ах ях ов ев ів їв ою ею ої ії ть ти ся сь а я о е и ы у ю і ї є ь й
            """
        ),
        key=lambda ending: (-len(ending), ending),
    )
)

_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "ё": "e",
    "є": "ie", "ж": "zh", "з": "z", "и": "i", "і": "i", "ї": "i", "й": "i", "к": "k",
    "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "",
    "ы": "y", "ь": "", "э": "e", "ю": "iu", "я": "ia",
}  # fmt: skip
# Ukrainian spells "г" /h/ and "и" /y/ (Харків → Kharkiv, Київ → Kyiv, Зеленський → Zelenskyi).
_TRANSLIT_UK = {**_TRANSLIT, "г": "h", "и": "y"}
_UKRAINIAN_LETTERS = frozenset("іїєґ")

# Letters that look alike in both scripts: "Сourt" typed with a Cyrillic С is still "Court".
_TO_LATIN = str.maketrans("АВЕКМНОРСТХаеорсухіјѕ", "ABEKMHOPCTXaeopcyxijs")
_TO_CYRILLIC = str.maketrans("ABEKMHOPCTXaeopcyx", "АВЕКМНОРСТХаеорсух")

_VOWELS = frozenset("aeiouy")


def _split_kicker(title: str) -> tuple[str, str]:
    """(kicker, rest): "WATCH: …", "Middle East Crisis: …" label a series, not the event."""
    head, colon, rest = title.partition(":")
    if colon and rest.strip() and 1 <= len(head.split()) <= KICKER_WORDS:
        return head, rest
    return "", title


def _words(text: str) -> list[tuple[str, bool]]:
    """(word, starts a clause) for each word, in order."""
    text = unicodedata.normalize("NFKC", text)
    text = _DOTTED_ACRONYM.sub(lambda m: m.group().replace(".", ""), text)
    words: list[tuple[str, bool]] = []
    end = 0
    for match in _WORD.finditer(text):
        gap = text[end : match.start()]
        # A lone space, the usual gap, never breaks a clause.
        initial = not words or (gap != " " and bool(_CLAUSE_BREAK.search(gap)))
        words.append((_fix_mixed_script(match.group()), initial))
        end = match.end()
    return words


def _is_title_case(words: Sequence[tuple[str, bool]]) -> bool:
    """Whether every content word is capitalised, so capitals there say nothing."""
    content = [w for w, _ in words if len(w) >= 4 and w[0].isalpha() and not w.isupper()]
    if len(content) < 3:
        return False
    capitalised = sum(1 for w in content if w[0].isupper())
    return capitalised >= 0.75 * len(content)


def _name_evidence(word: str, *, initial: bool, trust_case: bool, number: bool) -> bool | None:
    if number:
        return True
    if len(word) >= 2 and word.isupper():
        return True  # an acronym: NATO, ICJ, ЗСУ
    if not word[0].isupper():
        return False if trust_case else None
    if trust_case and not initial:
        return True
    return None


def _fix_mixed_script(word: str) -> str:
    if word.isascii():
        return word
    latin = sum(1 for ch in word if "a" <= ch.lower() <= "z")
    cyrillic = sum(1 for ch in word if "\u0400" <= ch <= "\u04ff")
    if not latin or not cyrillic:
        return word
    return word.translate(_TO_LATIN if latin >= cyrillic else _TO_CYRILLIC)


@lru_cache(maxsize=1 << 16)  # news vocabulary repeats: most words were analysed before
def _analyse(word: str, *, ukrainian: bool) -> tuple[str, bool] | None:
    """(key, is a number) or None for a word that carries no evidence."""
    if word[0].isdigit():
        digits = word.replace(",", "")
        ordinal = _ORDINAL.match(digits)
        if ordinal:
            digits = ordinal.group(1)
        if len(digits) < 2:
            return None  # "3 killed", "2nd": small numbers recur everywhere
        return digits.lower(), True
    lower = word.lower()
    acronym = len(word) >= 2 and word.isupper()
    # "US", "IT", "UN": short acronyms that spell a stopword are still names.
    if (lower in _STOPWORDS or lower in _CYRILLIC_STOPWORDS) and not (acronym and len(word) <= 3):
        return None
    if len(lower) < 2:
        return None
    cyrillic = "\u0400" <= lower[0] <= "\u04ff"
    key = _cyrillic_key(lower, ukrainian=ukrainian) if cyrillic else _latin_key(lower)
    return _trim(key), False


def _latin_key(word: str) -> str:
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "").replace("-", "")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word[-2] in "sui":
                break  # "press", "bus", "Paris", "analysis" keep their s
            word = word[: -len(suffix)] + repl
            break
    return word


def _cyrillic_key(word: str, *, ukrainian: bool) -> str:
    word = word.replace("’", "").replace("'", "").replace("-", "")
    for ending in _CYRILLIC_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            word = word[: -len(ending)]
            break
    table = _TRANSLIT_UK if ukrainian else _TRANSLIT
    return "".join(table.get(ch, ch) for ch in word)


def _trim(key: str) -> str:
    # Cut, then drop trailing vowels: Latin words keep endings that Cyrillic ones lost
    # ("syrskyi" vs "сирськ-ий", "odesa" vs "одес-а").
    key = key[:KEY_LENGTH]
    while len(key) > 4 and key[-1] in _VOWELS:
        key = key[:-1]
    return key
