"""SQuAD v1.1 as an external benchmark: each Wikipedia article becomes one document.

>>> squad = load_squad(Path("../shared/datasets/squad-v1.1-dev/dev-v1.1.json.zip"))
>>> sample = sample_questions(squad.questions, 500, seed=0)
"""

from __future__ import annotations

import gzip
import json
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from rag.chunking import split_sentences
from rag.errors import RagError
from rag.evaluation import Question

PARAGRAPH_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class SquadDocument:
    """One article: `text` is the title, then its paragraphs, joined by blank lines.

    Invariant: `text[start:end]` is paragraph i for `(start, end) = paragraph_spans[i]`.
    """

    doc_id: str  # the SQuAD title as stored, e.g. "Super_Bowl_50"
    title: str  # readable: percent-decoded, underscores as spaces
    text: str
    paragraph_spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SquadQuestion:
    """One question with its gold answers; `answer_starts[i]` indexes `paragraph_text`."""

    id: str
    question: str
    answers: tuple[str, ...]  # one per annotator, duplicates kept (parallel to answer_starts)
    doc_id: str
    paragraph_index: int
    paragraph_text: str
    answer_starts: tuple[int, ...]

    def as_question(self) -> Question:
        """The evaluation form, with duplicate answers dropped."""
        return Question(self.id, self.question, tuple(dict.fromkeys(self.answers)), self.doc_id)


@dataclass(frozen=True)
class SquadSet:
    """A loaded SQuAD file: its articles as documents, and every question in file order."""

    documents: tuple[SquadDocument, ...]
    questions: tuple[SquadQuestion, ...]


def load_squad(path: Path) -> SquadSet:
    """Load a SQuAD v1.1 json file, plain, gzipped (.gz) or zipped (.zip, read in place)."""
    data = _read_json(Path(path))
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise RagError(f"not a SQuAD file (no 'data' list): {str(path)!r}")
    documents: list[SquadDocument] = []
    questions: list[SquadQuestion] = []
    try:
        for article in articles:
            document = _document(article)
            documents.append(document)
            for index, paragraph in enumerate(article["paragraphs"]):
                questions.extend(_questions(document.doc_id, index, paragraph))
    except (KeyError, TypeError) as exc:
        raise RagError(f"malformed SQuAD file {str(path)!r}: bad or missing field {exc}") from exc
    return SquadSet(tuple(documents), tuple(questions))


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise RagError(f"SQuAD file not found: {str(path)!r}")
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(".json")]
                if len(names) != 1:
                    raise RagError(f"expected one .json file in {str(path)!r}, found {names}")
                with archive.open(names[0]) as file:
                    return json.load(file)
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as file:
                return json.load(file)
        with path.open("rb") as file:
            return json.load(file)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise RagError(f"cannot read SQuAD file {str(path)!r}: {exc}") from exc


def _document(article: dict[str, Any]) -> SquadDocument:
    doc_id = article["title"]
    title = unquote(doc_id).replace("_", " ")
    parts = [title]
    spans: list[tuple[int, int]] = []
    offset = len(title)
    for paragraph in article["paragraphs"]:
        offset += len(PARAGRAPH_SEPARATOR)
        context = paragraph["context"]
        spans.append((offset, offset + len(context)))
        parts.append(context)
        offset += len(context)
    return SquadDocument(doc_id, title, PARAGRAPH_SEPARATOR.join(parts), tuple(spans))


def _questions(doc_id: str, index: int, paragraph: dict[str, Any]) -> list[SquadQuestion]:
    context = paragraph["context"]
    return [
        SquadQuestion(
            id=qa["id"],
            question=qa["question"],
            answers=tuple(answer["text"] for answer in qa["answers"]),
            doc_id=doc_id,
            paragraph_index=index,
            paragraph_text=context,
            answer_starts=tuple(int(answer["answer_start"]) for answer in qa["answers"]),
        )
        for qa in paragraph["qas"]
    ]


def sample_questions(questions: Sequence[SquadQuestion], n: int, seed: int = 0) -> list[SquadQuestion]:
    """A fixed sample: `random.Random(seed).sample(sorted-by-id questions, n)`.

    Sorting first makes the sample independent of file order; same seed, same questions.
    """
    if not 0 <= n <= len(questions):
        raise ValueError(f"n must be between 0 and {len(questions)}, got {n}")
    ordered = sorted(questions, key=lambda q: q.id)
    return random.Random(seed).sample(ordered, n)


def cut_answer(paragraph: str, start: int, end: int) -> str | None:
    """`paragraph` without the sentence(s) overlapping [start, end); None when nothing else is left."""
    kept = [paragraph[s:e] for s, e in split_sentences(paragraph) if e <= start or s >= end]
    rest = " ".join(kept).strip()
    return rest or None


def answer_span(question: SquadQuestion) -> tuple[int, int] | None:
    """Paragraph offsets of the first gold answer; None when its text is blank or not there."""
    text, at = question.answers[0], question.answer_starts[0]
    if question.paragraph_text[at : at + len(text)] != text:
        at = question.paragraph_text.find(text)  # a recomputed offset that drifted: trust the text
    return (at, at + len(text)) if at >= 0 and text.strip() else None


def unanswerable_twin(question: SquadQuestion) -> str | None:
    """The question's paragraph less its first answer's sentence: still about the question's
    subject, no longer holding the fact asked for. None when no such text is left, or when a gold
    answer still occurs in it (then it would not be a true "no answer")."""
    span = answer_span(question)
    if span is None:
        return None
    rest = cut_answer(question.paragraph_text, *span)
    if rest is None or any(a and a in rest for a in question.answers):
        return None
    return rest
