"""Other names the articles give someone, and answers that only repeat the question's names.

News names one person twice: "Abu Bakr al-Baghdadi, whose real name is Ibrahim Awad". A span
model asked "Who did al-Baghdadi appoint?" can be drawn to the name beside the question's own
("Ibrahim Awad"), which is the question's subject again, not its answer. The heuristic reader
already discounts spans made of the question's words (rag.spans); this module extends that to
the names an article says are the same:

    >>> pairs = alias_pairs(["Abu Bakr al-Baghdadi, whose real name is Ibrahim Awad, said"])
    >>> repeats_question("Who did al-Baghdadi appoint?", "Ibrahim Awad", pairs)
    True
    >>> repeats_question("What is al-Baghdadi's real name?", "Ibrahim Awad", pairs)
    False

A name is linked to its alias only when the question uses its last word (the surname,
"al-Baghdadi", not a shared "Abu" or a title before it), with no other first name before it
("Ahmad al-Baghdadi" is someone else; "President al-Baghdadi" is not); then both names are
the subject's, first names and all unless another person in the passages bears that surname.
Exempt, because there the other name is the answer: questions that ask for a name ("alias", "real
name", "known as", "stand for", "dubbed"), "Who is X?", and either-or questions ("Arsenal or
Chelsea?"). Regex only, linear in the text: well under a
millisecond for the passages of one question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.question import STOPWORDS, analyze

_UPPER = "A-ZÀ-ÖØ-Þ"
# One capitalized word, bounded in length so that a long run of capitals costs linear time.
_CAP = rf"[{_UPPER}][\w'’-]{{0,40}}"
# A name: up to six capitalized words, allowing the particles of Arabic and European names
# ("al-Baghdadi"); it starts at a word boundary, never inside "iPhone".
_NAME = rf"(?<![\w-]){_CAP}(?:[ \t]{{1,3}}(?:(?:al|el|bin|ibn|de|van|von|da)[ \t-])?{_CAP}){{0,5}}"
_QUOTE = r"[“\"'‘]?"
# "X, also known as Y" needs the comma: without it "Trump dubbed Kim Jong Un ..." would link the
# two. "alias" and "aka" are never verbs. "(alias Y)" and "(also known as Y)" too.
_ALIAS = re.compile(
    rf"({_NAME})(?:,[ \t]*(?:also[ \t]+known[ \t]+as|better[ \t]+known[ \t]+as|known[ \t]+as|nicknamed|dubbed"
    rf"|whose[ \t]+real[ \t]+name[ \t]+is)|,?[ \t]+(?:alias|a\.k\.a\.?|aka)"
    rf"|[ \t]*\((?:alias|a\.k\.a\.?|aka|also[ \t]+known[ \t]+as|known[ \t]+as|real[ \t]+name:?|born))"
    rf"[ \t]+{_QUOTE}({_NAME})"
)
_MARKER_HINT = re.compile(r"alias|a\.?k\.?a|known\s+as|nicknamed|dubbed|real\s+name|\(born", re.IGNORECASE)
_ASKS_FOR_A_NAME = re.compile(
    r"\b(?:alias(?:es)?|a\.?k\.?a|known\s+(?:as|by)|real\s+name|nicknamed?|nicknames|nom\s+de\s+guerre"
    r"|pseudonyms?|also\s+called|other\s+names?|go(?:es)?\s+(?:by|under)|calls?\s+(?:him|her|them)sel(?:f|ves)"
    r"|named|dubbed|call(?:s|ed)?|refer(?:s|red)?\s+to\s+as|stands?\s+for|monikers?"
    r"|(?:birth|full|stage|pen|ring|maiden|given|first|last|legal|original|former|new|code|war)\s+names?"
    r"|(?:what|which)\s+names?|names?\s+(?:did|does|do|was|is)\b|changed?\s+(?:\w+\s+){0,2}names?"
    r"|perform(?:s|ed)?\s+as)\b",
    re.IGNORECASE,
)
_NAME_RE = re.compile(_NAME)
_POSSESSIVE = re.compile(r"['’]s?(?=[ \t])[ \t]*")
_EITHER_OR = re.compile(rf"[{_UPPER}][\w'’-]*[ \t]*,?[ \t]+or[ \t]+(?:the[ \t]+)?[{_UPPER}]")
_WORD = re.compile(r"[\w'’-]+")
# Words before a surname that name no one: "Mr. al-Baghdadi", "President Awad".
_TITLES = frozenset(
    "mr mrs ms miss dr prof president prime minister sheikh general gen emir imam king queen prince "
    "princess sir lord lady judge senator sen rep governor gov mayor chancellor pope colonel col "
    "captain capt commander lieutenant sergeant chief saint st rev father brother sister ayatollah "
    "mullah former late".split()
)
# Words that may join two names in an answer without saying anything new: "X, alias Y", "X and Y".
_FILLER = STOPWORDS | {"alias", "aka", "known", "nicknamed", "dubbed", "called", "real", "name"}


@dataclass(frozen=True)
class AliasPair:
    """Two names the articles give one entity, as lowercased words in order ("ibrahim", "awad")."""

    first: tuple[str, ...]
    second: tuple[str, ...]


def _clean(word: str) -> str:
    """A word lowercased, less quotes at its ends and a possessive "'s"."""
    return re.sub(r"['’]s?$", "", word.strip("'’").lower())


def _named(word: str) -> bool:
    return any(c.isupper() for c in word)


def _words(text: str) -> list[str]:
    return [w for raw in _WORD.findall(text) if (w := _clean(raw))]


def name_words(text: str) -> frozenset[str]:
    """The words of `text` with a capital ("al-Baghdadi" too), lowercased, less a possessive "'s"."""
    return frozenset(w for raw in _WORD.findall(text) if _named(raw) and (w := _clean(raw)))


def alias_pairs(texts: Iterable[str]) -> list[AliasPair]:
    """Each "X, alias Y" (or ", also known as", ", nicknamed", "(alias Y)" ...) in `texts`."""
    pairs = []
    for text in texts:
        if not _MARKER_HINT.search(text):
            continue  # most passages: no regex scan at all
        for match in _ALIAS.finditer(text):
            first = tuple(w for w in _words(match.group(1)) if w not in _FILLER)
            second = tuple(w for w in _words(match.group(2)) if w not in _FILLER)
            if first and second and not set(first) & set(second):
                pairs.append(AliasPair(first, second))
    return pairs


def asks_for_a_name(question: str) -> bool:
    """True for "What alias ...?", "What is the real name of ...?", "What does HTS stand for?"."""
    return _ASKS_FOR_A_NAME.search(question) is not None


def repeats_question(question: str, answer: str, pairs: Iterable[AliasPair]) -> bool:
    """True when `answer` is only names, each one the question uses or another name of one, and
    words of the question ("Ibrahim Awad’s son" for "What is the name of al-Baghdadi's son?",
    where the passages say "Abu Bakr al-Baghdadi, whose real name is Ibrahim Awad").

    An answer with any other word ("regulatory T cells" for "What kind of T cells ...?") says
    something new, and one with no name is left to the readers' own judgement. An answer of names
    alone may be what a question that asks for a name wants (another name of its subject).
    """
    words = [w for w in _WORD.findall(answer) if _clean(w) not in _FILLER]
    if not any(_named(w) for w in words):
        return False
    asked = {_clean(w) for w in _WORD.findall(question)}
    restated = [w for w in words if not _named(w)]
    if any(_clean(w) not in asked for w in restated):
        return False
    if not restated and (asks_for_a_name(question) or _EITHER_OR.search(question)):
        return False
    if analyze(question).definition:
        return False
    known = set(name_words(question))
    said = [(raw, _clean(raw)) for raw in _WORD.findall(question)]
    pairs = list(pairs)
    sides = {side for pair in pairs for side in (pair.first, pair.second)}
    for pair in pairs:
        for side, other in ((pair.first, pair.second), (pair.second, pair.first)):
            how = _how_named(said, side)
            if how is None:
                continue
            known.update(other)
            # Its own first names too, when the question spelled them out or no one else in the
            # passages bears that surname ("Who met Awad?" beside Ibrahim Awad and Ali Awad).
            if how == "in full" or sum(s[-1] == side[-1] for s in sides) == 1:
                known.update(side)
    # The subject's own full name: "Ibrahim Awad" for "Who did President Awad accuse?", unless
    # the question spells out other first names or another person of the passages bears them.
    for match in _NAME_RE.finditer(answer):
        full = tuple(w for w in _words(match.group()) if w not in _FILLER and w not in _TITLES)
        how = _how_named(said, full) if full else None
        kin = any(s[-1] == full[-1] and s != full for s in sides) if full else False
        if how == "in full" or (how == "by surname" and not kin):
            known.update(full)
    return name_words(answer) <= known


def whole_name(text: str, start: int, end: int) -> str | None:
    """The name in `text` that the span `text[start:end]` is only part of ("John" in "General John
    Smith"), or None when the span is no part of a longer name. A possessive ends a name: "Anna
    Keller's Blue Hour" is a person and a film."""
    for match in _NAME_RE.finditer(text, max(0, start - 200), min(len(text), end + 200)):
        if match.start() > start:
            break
        if end > match.end():
            continue
        lo, hi = match.start(), match.end()
        for cut in _POSSESSIVE.finditer(text, lo, hi):
            if cut.end() <= start:
                lo = cut.end()
            elif cut.start() >= end:
                hi = min(hi, cut.start())
        return text[lo:hi].strip() if (lo, hi) != (start, end) else None
    return None


def _how_named(said: list[tuple[str, str]], side: tuple[str, ...]) -> str | None:
    """How the question (`said`: its words, raw and cleaned) names `side`: "in full" ("Ibrahim
    Awad"), "by surname" ("Awad", "Mr. Awad"), or None: not at all, or another person of that
    family ("Ali Awad"). Titles before the surname say nothing either way."""
    found = None
    for i, (raw, word) in enumerate(said):
        if word != side[-1] or not _named(raw):
            continue
        before, j = [], i - 1
        while j >= 0 and _named(said[j][0]) and said[j][1] not in _FILLER:
            if said[j][1] not in _TITLES:
                before.append(said[j][1])
            j -= 1
        if before and all(w in side for w in before):
            return "in full"
        if not before:
            found = "by surname"
    return found
