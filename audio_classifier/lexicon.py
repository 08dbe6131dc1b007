"""The prompt lexicon: phrases carriers say, mapped to labels, as data files per language.

Files are ``<language>.tsv`` (``label<TAB>priority<TAB>phrase``, ``#`` comments) in the
package's ``lexicons/`` folder and in any extra folder the user adds. Matching a
transcript against the lexicon is tolerant: spaces and punctuation are ignored, longer
phrases (three Chinese characters, four words) may have one wrong, missing or extra unit,
and Chinese characters that sound alike (same toneless pinyin) count as equal.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .errors import ConfigError
from .labels import LABELS

BUILTIN_DIR = Path(__file__).with_name("lexicons")
FILLER = "-"
"""Label of filler phrases: in the recogniser's grammar, mapped to no label."""

FUZZY_MIN_UNITS = {"zh": 3, "other": 4}
"""Phrases at least this long (Chinese characters; words elsewhere) tolerate one edit.
An English word is a larger unit than a character: one edit in three words can drop a
whole content word."""

EDIT_PENALTY = 20
"""Priority points one edit costs when ranking matches, so an exact 无法接通 (70) beats a
one-edit 无法接听 (75), while a one-edit 空号 phrase (100) still beats 请稍后再拨 (10)."""

EXACT_SCORE = {"final": 0.95, "partial": 0.85}
ONE_EDIT_SCORE = {"final": 0.88, "partial": 0.75}
"""Evidence score of a match, by match quality and by whether the recogniser's result was
final or partial. A partial hypothesis may still change, so it stays below the decision
threshold: it decides early only with another channel agreeing."""

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NOT_WORD = re.compile(r"[^\w\s']+")


@dataclass(frozen=True)
class Entry:
    label: str
    priority: int
    phrase: str
    language: str
    source: str
    """file:line, for error messages."""


@dataclass(frozen=True)
class Match:
    entry: Entry
    edits: int
    matched_text: str


def is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


@cache
def _pinyin(char: str) -> str:
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:  # homophone matching needs pypinyin; exact matching does not
        return char
    return lazy_pinyin(char, style=Style.NORMAL)[0]


def units(text: str) -> tuple[str, ...]:
    """Comparable units of *text*: characters for Chinese, lower-case words otherwise."""
    text = unicodedata.normalize("NFKC", text).lower()
    if is_chinese(text):
        return tuple(ch for ch in text if _CJK.match(ch) or ch.isalnum())
    return tuple(_NOT_WORD.sub(" ", text).split())


HOMOPHONE_MIN_UNITS = 2
"""Phrases at least this long match characters that sound alike; a one-character phrase
matches only itself: 喂 would otherwise be found in every 位, 为 and 未 ("未能成功")."""


def _same(a: str, b: str, homophones: bool = True) -> bool:
    return a == b or (
        homophones
        and len(a) == 1
        and len(b) == 1
        and bool(_CJK.match(a))
        and bool(_CJK.match(b))
        and _pinyin(a) == _pinyin(b)
    )


def find(pattern: tuple[str, ...], text: tuple[str, ...], max_edits: int) -> tuple[int, int] | None:
    """Best approximate occurrence of *pattern* in *text* (edit distance, free start and
    end in *text*; characters that sound alike are equal in a pattern of at least
    ``HOMOPHONE_MIN_UNITS``): ``(edits, end index)`` or None if more than *max_edits* are
    needed."""
    m = len(pattern)
    if m == 0:
        return None
    homophones = m >= HOMOPHONE_MIN_UNITS
    previous = list(range(m + 1))  # column for text position 0: pattern prefix vs nothing
    best: tuple[int, int] | None = (previous[m], 0) if previous[m] <= max_edits else None
    for j, unit in enumerate(text, start=1):
        current = [0] * (m + 1)  # a match may start anywhere: cost 0 at the top
        for i in range(1, m + 1):
            cost = 0 if _same(pattern[i - 1], unit, homophones) else 1
            current[i] = min(previous[i - 1] + cost, previous[i] + 1, current[i - 1] + 1)
        if current[m] <= max_edits and (best is None or current[m] <= best[0]):
            best = (current[m], j)
        previous = current
    return best


@dataclass
class Lexicon:
    """All entries of the loaded files; see :meth:`match`."""

    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def load(cls, folders: Iterable[str | os.PathLike[str]] = ()) -> Lexicon:
        """The built-in lexicon plus the ``*.tsv`` files of *folders* (later folders add
        phrases; they do not replace the built-in ones)."""
        lexicon = cls()
        for folder in [BUILTIN_DIR, *map(Path, folders)]:
            if not Path(folder).is_dir():
                raise ConfigError(f"lexicon folder not found: {folder}")
            for path in sorted(Path(folder).glob("*.tsv")):
                lexicon.entries += read_file(path)
        return lexicon

    def languages(self) -> list[str]:
        return sorted({e.language for e in self.entries})

    def phrases(self, language: str | None = None) -> list[Entry]:
        return [e for e in self.entries if language is None or e.language == language]

    def match(self, text: str) -> Match | None:
        """The best entry found in *text*: highest priority less ``EDIT_PENALTY`` per edit,
        then fewest edits, then the longest phrase. Filler entries never match."""
        found = units(text)
        if not found:
            return None
        chinese = is_chinese(text)
        best: tuple[tuple, Match] | None = None
        for entry in self.entries:
            if entry.label == FILLER or is_chinese(entry.phrase) != chinese:
                continue
            pattern = units(entry.phrase)
            allowed = 1 if len(pattern) >= FUZZY_MIN_UNITS["zh" if chinese else "other"] else 0
            hit = find(pattern, found, allowed)
            if hit is None:
                continue
            edits, end = hit
            key = (entry.priority - EDIT_PENALTY * edits, -edits, len(pattern))
            if best is None or key > best[0]:
                joiner = "" if chinese else " "
                start = max(0, end - len(pattern))
                best = (key, Match(entry, edits, joiner.join(found[start:end])))
        return best[1] if best else None

    def check(self) -> list[str]:
        """Problems: the same phrase under two labels, or under one label twice."""
        problems = []
        seen: dict[tuple[str, ...], Entry] = {}
        for entry in self.entries:
            key = units(entry.phrase)
            if key in seen:
                other = seen[key]
                kind = "conflict" if other.label != entry.label else "duplicate"
                problems.append(
                    f"{kind}: {entry.phrase!r} ({entry.label}, {entry.source}) "
                    f"and ({other.label}, {other.source})"
                )
            else:
                seen[key] = entry
        return problems


def read_file(path: Path) -> list[Entry]:
    """Entries of one lexicon file; raises :class:`ConfigError` naming the bad line."""
    language = path.stem
    entries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{path}:{number}"
            parts = line.split("\t")
            if len(parts) != 3:
                raise ConfigError(f"{where}: expected label<TAB>priority<TAB>phrase, got {line!r}")
            label, priority, phrase = (p.strip() for p in parts)
            if label != FILLER and label not in LABELS:
                raise ConfigError(f"{where}: unknown label {label!r}")
            try:
                rank = int(priority)
            except ValueError:
                raise ConfigError(f"{where}: priority must be an integer, got {priority!r}") from None
            if not units(phrase):
                raise ConfigError(f"{where}: empty phrase")
            entries.append(Entry(label, rank, phrase, language, where))
    return entries


def segment(
    phrase: str, in_vocabulary: Callable[[str], bool], longest: int = 6
) -> tuple[list[str], list[str]]:
    """Split *phrase* into recogniser words: forward maximum matching for Chinese, spaces
    for others. Returns (words, pieces missing from the vocabulary)."""
    if not is_chinese(phrase):
        words = list(units(phrase))
        return words, [w for w in words if not in_vocabulary(w)]
    chars = "".join(units(phrase))
    words: list[str] = []
    missing: list[str] = []
    i = 0
    while i < len(chars):
        for size in range(min(longest, len(chars) - i), 0, -1):
            if in_vocabulary(chars[i : i + size]):
                words.append(chars[i : i + size])
                i += size
                break
        else:
            missing.append(chars[i])
            i += 1
    return words, missing
