"""Other names the articles give someone, and answers that only repeat the question's names.

News names one person twice: "Oumar Diaby, alias Omar Omsen". A span model asked "Who accused
Diaby of kidnapping a girl?" is drawn to the name beside the question's own ("Omar Omsen"), which
is the question's subject again, not its answer. The heuristic reader already discounts spans
made of the question's words (rag.spans); this module extends that to the names an article says
are the same:

    >>> groups = alias_groups(["whose leader, Oumar Diaby, alias Omar Omsen, they accuse"])
    >>> repeats_question("Who accused Diaby of kidnapping a girl?", "Omar Omsen", groups)
    True
    >>> repeats_question("What alias is Oumar Diaby known by?", "Omar Omsen", groups)
    False

A question that asks for a name ("alias", "real name", "known as") is exempt: there the other
name is the answer. Pure regex: it costs microseconds per question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.question import STOPWORDS

# A run of capitalized words, allowing the particles inside Arabic and European names.
_NAME = r"[A-Z][\w'’-]*(?:[ \t]+(?:(?:al|el|bin|ibn|de|van|von|da)[ \t-])?[A-Z][\w'’-]*)*"
_MARKER = (
    r"(?:alias|a\.k\.a\.?|aka|also\s+known\s+as|better\s+known\s+as|known\s+as|nicknamed|dubbed"
    r"|whose\s+real\s+name\s+is|real\s+name)"
)
_ALIAS = re.compile(rf"({_NAME}),?\s+{_MARKER}\s+[“\"']?({_NAME})")
_ASKS_FOR_A_NAME = re.compile(
    r"\b(?:alias(?:es)?|a\.?k\.?a|known\s+(?:as|by)|real\s+name|nicknamed?|nicknames|nom\s+de\s+guerre"
    r"|pseudonyms?|also\s+called|other\s+names?|go(?:es)?\s+by|calls?\s+(?:him|her|them)sel(?:f|ves)|named)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w'’-]+")
# Words that may join two names in an answer without saying anything new: "X, alias Y", "X and Y".
_FILLER = STOPWORDS | {"alias", "aka", "known", "nicknamed", "dubbed", "called", "real", "name"}


def name_words(text: str) -> frozenset[str]:
    """The words of `text` with a capital ("al-Mouhajer" too), lowercased, less a possessive "'s"."""
    words = set()
    for word in _WORD.findall(text):
        if any(c.isupper() for c in word):
            word = re.sub(r"['’]s?$", "", word.lower())
            if word:
                words.add(word)
    return frozenset(words)


def alias_groups(texts: Iterable[str]) -> list[frozenset[str]]:
    """The name words of each "X, alias Y" (or "also known as", "nicknamed" ...) in `texts`."""
    groups = []
    for text in texts:
        for match in _ALIAS.finditer(text):
            first, second = name_words(match.group(1)), name_words(match.group(2))
            if first and second and not first & second:
                groups.append(first | second)
    return groups


def asks_for_a_name(question: str) -> bool:
    """True for "What alias ...?", "What is the real name of ...?", "... known as?"."""
    return _ASKS_FOR_A_NAME.search(question) is not None


def repeats_question(question: str, answer: str, groups: Iterable[frozenset[str]]) -> bool:
    """True when `answer` is only names, each one the question uses or another name of one.

    An answer with any other word ("regulatory T cells" for "What kind of T cells ...?") says
    something new, and one with no name is left to the readers' own judgement.
    """
    if asks_for_a_name(question):
        return False
    words = [w for w in _WORD.findall(answer) if w.lower() not in _FILLER]
    if not words or any(not any(c.isupper() for c in w) for w in words):
        return False
    asked = name_words(question)
    known = set(asked)
    for group in groups:
        if group & asked:
            known |= group
    return name_words(answer) <= known
