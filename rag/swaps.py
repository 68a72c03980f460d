"""Near-miss "no answer" questions for training: a question with one of its names swapped.

SQuAD v1.1 always answers, and the other negatives of `rag train-reader` (another paragraph, or
the paragraph less the answer's sentence) teach "this passage is not about that". The questions
the articles cannot answer are usually closer: the passage is about the subject and has an answer
of the right type, but for another person, place or date ("When did French judges issue the
warrant?" beside "the Americans designated him in 2016"). SQuAD 2.0's authors found entity swaps
the commonest kind of such question (Rajpurkar et al., 2018). This module makes them:

    >>> swap = swapped_question(q, q_mentions, pool, random.Random(0))
    "When did the French designate Diaby a terrorist?"   # was "... the Americans designate ..."

A named entity of the question (spaCy NER) that the paragraph says is replaced by another entity
of the same kind from questions about the same article that the paragraph never mentions. The
paragraph then cannot answer the new question: it is a "no answer" example for its paragraph.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rag.squad import SquadQuestion

# Ordinals ("first") are often implied by the text without being written; the rest are safe.
SKIPPED_LABELS = frozenset({"ORDINAL"})


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


def swapped_question(
    question: SquadQuestion, mentions: Sequence[Mention], pool: Sequence[Mention], rng: random.Random
) -> str | None:
    """`question` with one mention the paragraph says replaced by a same-label mention of `pool`
    that the paragraph never says; None when there is no such pair."""
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


def swap_pairs(
    questions: Sequence[SquadQuestion],
    mentions: Sequence[Sequence[Mention]],
    pool_by_doc: dict[str, list[Mention]],
    share: float,
    seed: int,
) -> list[tuple[str, str]]:
    """(swapped question, its paragraph) for about `share` of `questions` (`mentions` parallel)."""
    rng = random.Random(seed + 15485863)
    pairs = []
    for q, found in zip(questions, mentions, strict=True):
        if rng.random() < share and (
            swapped := swapped_question(q, found, pool_by_doc.get(q.doc_id, []), rng)
        ):
            pairs.append((swapped, q.paragraph_text))
    return pairs
