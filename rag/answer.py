"""The typed answer: a verbatim span of an article, or None when the articles do not say."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NOT_FOUND_MESSAGE = "The articles don't say."


@dataclass(frozen=True)
class Citation:
    """A cited passage; offsets are character offsets in the cleaned article text."""

    doc_id: str
    title: str
    passage_start: int
    passage_end: int
    passage_text: str
    answer_start: int | None = None  # in the article; None when this passage holds no answer
    answer_end: int | None = None

    @property
    def answer_span_in_passage(self) -> tuple[int, int] | None:
        """The answer's offsets inside `passage_text`."""
        if self.answer_start is None or self.answer_end is None:
            return None
        return self.answer_start - self.passage_start, self.answer_end - self.passage_start


@dataclass(frozen=True)
class Answer:
    """An extractive answer. `text is None` means the articles do not answer the question.

    When `text` is set: `article.text[start:end] == text`, `doc_id` names that article, and
    `citations[0]` is the passage it was read from. `question` is the question answered: for a
    follow-up rewritten from the chat history, that is the rewritten text, also in `interpreted_as`
    (None when the question was answered as asked).
    """

    question: str
    text: str | None
    score: float  # in [0, 1]
    doc_id: str | None = None
    start: int | None = None
    end: int | None = None
    sentence: str | None = None
    sentence_start: int | None = None  # article offsets of the supporting sentence
    sentence_end: int | None = None
    citations: tuple[Citation, ...] = ()
    alternatives: tuple[Answer, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    interpreted_as: str | None = None

    @property
    def found(self) -> bool:
        return self.text is not None

    @property
    def others(self) -> tuple[Answer, ...]:
        """The other candidates as the app and `rag ask` list them, best first: the alternatives
        with a text, other than this answer's (all of them when the articles do not say)."""
        return tuple(a for a in self.alternatives if a.text and a.text != self.text)


def citation_json(citation: Citation) -> dict[str, Any]:
    return {
        "doc_id": citation.doc_id,
        "title": citation.title,
        "passage_start": citation.passage_start,
        "passage_end": citation.passage_end,
        "passage_text": citation.passage_text,
        "answer_start": citation.answer_start,
        "answer_end": citation.answer_end,
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    """The documented JSON shape of `rag ask --json`; offsets are in the cleaned article text."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "score": round(answer.score, 4),
        "doc_id": answer.doc_id,
        "answer_start": answer.start,
        "answer_end": answer.end,
        "sentence": answer.sentence,
        "sentence_start": answer.sentence_start,
        "sentence_end": answer.sentence_end,
        "citations": [citation_json(c) for c in answer.citations],
        "alternatives": [
            {
                "answer": a.text,
                "score": round(a.score, 4),
                "doc_id": a.doc_id,
                "answer_start": a.start,
                "answer_end": a.end,
            }
            for a in answer.alternatives
        ],
        "timings_ms": dict(answer.timings_ms),
        "interpreted_as": answer.interpreted_as,
    }
