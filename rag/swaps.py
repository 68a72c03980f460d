"""Near-miss "no answer" questions for training: a question with one of its names swapped.

SQuAD v1.1 always answers, and the other negatives of `rag train-reader` (another paragraph, or
the paragraph less the answer's sentence) teach "this passage is not about that". The questions
the articles cannot answer are usually closer: the passage is about the subject and has an answer
of the right type, but for another person, place or date ("When did French judges issue the
warrant?" beside "the Americans designated him in 2016"). SQuAD 2.0's authors found entity swaps
the commonest kind of such question (Rajpurkar et al., 2018). This module makes them:

    >>> swap = swapped_question(q, q_mentions, pool, random.Random(0))
    "When did the French designate Awad a terrorist?"   # was "... the Americans designate ..."

A named entity of the question (spaCy NER) that the paragraph says is replaced by another entity
of the same kind from questions about the same article that the paragraph never mentions. The
paragraph then cannot answer the new question: it is a "no answer" example for its paragraph.

Two rules, kept so that a recorded stage trains on the same questions again (`rag reproduce-reader`):

- rule 1 (reader stage 9) compares lowercased substrings: "US" counts as said by "Thus", and
  "President Obama" may replace "Barack Obama", a question the paragraph does answer;
- rule 2 compares whole words, folded (case, accents, curly quotes, a plural "s"): the mention
  must be said as whole words, and the replacement may share no content word with the mention,
  with the paragraph, or with another name the article gives the mention ("X, alias Y" anywhere
  in it, by `rag.aliases`). A possessive "'s" of the replacement is dropped ("Eddington's's").
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.aliases import AliasPair

if TYPE_CHECKING:  # the CLI reads SWAP_RULES at startup: no SQuAD loader (blingfire) for that
    from rag.squad import SquadQuestion

# Ordinals ("first") are often implied by the text without being written; the rest are safe.
SKIPPED_LABELS = frozenset({"ORDINAL"})
SWAP_RULES = (1, 2)
LATEST_RULE = 2
# Words two names may share without naming the same thing ("the Bank of England", "the Americans").
_FUNCTION_WORDS = frozenset(
    "the a an of and in on at for to by from with s de la le du des van von da al el bin ibn".split()
)
_POSSESSIVE = re.compile(r"\s*['’]s$")


@dataclass(frozen=True)
class Mention:
    """A named entity of a question: `question[start:end] == text`."""

    text: str
    label: str
    start: int
    end: int


def question_mentions(nlp: Any, texts: Iterable[str], batch_size: int = 256) -> list[list[Mention]]:
    """The named entities of each text (spaCy NER alone: in en_core_web_sm it has its own token
    vectors, so the shared tok2vec, the tagger and the parser are not run)."""
    others = [name for name in nlp.pipe_names if name != "ner"]
    with nlp.select_pipes(disable=others):
        return [
            [
                Mention(e.text, e.label_, e.start_char, e.end_char)
                for e in doc.ents
                if e.label_ not in SKIPPED_LABELS
            ]
            for doc in nlp.pipe(texts, batch_size=batch_size)
        ]


def folded_words(text: str) -> tuple[str, ...]:
    """The words of `text` compared by rule 2: casefolded, accents off, a plural "s" off
    ("Américains" -> "americain", "treaties" -> "treaty"); "US" and "Thus" stay apart."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return tuple(_singular(w) for w in re.findall(r"\w+", plain.casefold()))


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _says(words: Sequence[str], part: Sequence[str]) -> bool:
    """True when `part` occurs in `words` as consecutive whole words."""
    part, n = tuple(part), len(part)
    return n > 0 and any(tuple(words[i : i + n]) == part for i in range(len(words) - n + 1))


def _content(words: Iterable[str]) -> set[str]:
    return {w for w in words if w not in _FUNCTION_WORDS}


def swapped_question(
    question: SquadQuestion,
    mentions: Sequence[Mention],
    pool: Sequence[Mention],
    rng: random.Random,
    rule: int = 1,
    aliases: Collection[AliasPair] = (),
) -> str | None:
    """`question` with one mention the paragraph says replaced by a same-label mention of `pool`
    that the paragraph never says; None when there is no such pair. `aliases` (rule 2): the
    article's "X, alias Y" pairs, so that Y never replaces X."""
    if rule == 2:
        return _swapped_whole_words(question, mentions, pool, rng, aliases)
    if rule != 1:
        raise ValueError(f"unknown swap rule {rule}; known: {SWAP_RULES}")
    paragraph = question.paragraph_text.lower()
    grounded = [m for m in mentions if m.text.lower() in paragraph]
    if not grounded:
        return None
    chosen = rng.choice(grounded)
    options = sorted(
        {
            m.text
            for m in pool
            if m.label == chosen.label
            and m.text.lower() not in paragraph  # so never a part of `chosen` either
            and chosen.text.lower() not in m.text.lower()
        }
    )
    if not options:
        return None
    text = question.question
    return text[: chosen.start] + rng.choice(options) + text[chosen.end :]


def _swapped_whole_words(
    question: SquadQuestion,
    mentions: Sequence[Mention],
    pool: Sequence[Mention],
    rng: random.Random,
    aliases: Collection[AliasPair],
) -> str | None:
    paragraph = folded_words(question.paragraph_text)
    grounded = [m for m in mentions if _says(paragraph, folded_words(m.text))]
    if not grounded:
        return None
    chosen = rng.choice(grounded)
    taken = _content(folded_words(chosen.text))
    for pair in aliases:  # another name of the same person or thing is no swap
        names = [_content(folded_words(" ".join(side))) for side in (pair.first, pair.second)]
        if any(name & taken for name in names):
            taken |= names[0] | names[1]
    taken |= set(paragraph)
    options = sorted(
        {
            text
            for m in pool
            if m.label == chosen.label
            and (text := _POSSESSIVE.sub("", m.text))
            and (words := _content(folded_words(text)))
            and not words & taken
        }
    )
    if not options:
        return None
    text = question.question
    return text[: chosen.start] + rng.choice(options) + text[chosen.end :]


def swap_pairs(
    questions: Sequence[SquadQuestion],
    mentions: Sequence[Sequence[Mention]],
    pool_by_doc: dict[str, list[Mention]],
    share: float,
    seed: int,
    rule: int = 1,
    aliases_by_doc: dict[str, list[AliasPair]] | None = None,
) -> list[tuple[str, str]]:
    """(swapped question, its paragraph) for about `share` of `questions` (`mentions` parallel)."""
    rng = random.Random(seed + 15485863)
    aliases_by_doc = aliases_by_doc or {}
    pairs = []
    for q, found in zip(questions, mentions, strict=True):
        if rng.random() < share and (
            swapped := swapped_question(
                q, found, pool_by_doc.get(q.doc_id, []), rng, rule, aliases_by_doc.get(q.doc_id, ())
            )
        ):
            pairs.append((swapped, q.paragraph_text))
    return pairs
