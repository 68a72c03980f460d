"""Split articles into sentence-aligned passages that fit the embedder's token window.

Sentences come from blingfire (a compiled splitter: microseconds per article, with character
offsets), one paragraph line at a time. Passage size is measured in the embedder's own word
pieces, so no passage is ever silently truncated by the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import blingfire

from embeddings.model_files import MAX_SEQ_TOKENS


@dataclass(frozen=True)
class Passage:
    """A slice of one article: `article.text[start:end] == text` always holds."""

    doc_id: str
    start: int
    end: int
    text: str


class TokenCounter(Protocol):
    def count(self, texts: list[str]) -> list[int]: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of `text`, never crossing a line break, trimmed of surrounding spaces."""
    spans: list[tuple[int, int]] = []
    line_start = 0
    for line in text.split("\n"):
        if line.strip():
            for start, end in _line_sentences(line):
                spans.extend(_trimmed(text, line_start + start, line_start + end))
        line_start += len(line) + 1
    return spans


def crosses_sentences(text: str, start: int, end: int) -> bool:
    """True when text[start:end] runs over the start of a sentence of `text` (split_sentences): a
    headline into its paragraph ("the final\n\nJohn Smith won"), or one sentence into the next.
    Such a span is not an answer: of 9,303 answers in 2,000 SQuAD train paragraphs, 14 (0.15%)
    do, nearly all where the splitter cuts after "v." or an initial."""
    return any(start < s < end for s, _ in split_sentences(text))


def _line_sentences(line: str) -> list[tuple[int, int]]:
    """Sentence offsets in one line. blingfire's own offset variant maps bytes to characters in a
    Python loop (half the cost of indexing without the model), so the sentences are located in
    order with str.find; a line where that cannot match exactly uses the offset variant."""
    offsets = []
    position = 0
    for sentence in blingfire.text_to_sentences(line).split("\n"):
        found = line.find(sentence, position) if sentence else -1
        if found < 0 or line[position:found].strip():
            return list(blingfire.text_to_sentences_and_offsets(line)[1])
        offsets.append((found, found + len(sentence)))
        position = found + len(sentence)
    if line[position:].strip():
        return list(blingfire.text_to_sentences_and_offsets(line)[1])
    return offsets


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if start < end else []


class Chunker:
    """Packs whole sentences into passages of at most `chunk_size` word pieces.

    Consecutive passages share `chunk_overlap` sentences. A sentence longer than `chunk_size`
    is cut at word-piece boundaries into pieces of `chunk_size`.

    >>> chunker = Chunker(counter, chunk_size=200, chunk_overlap=1)
    >>> passages = chunker.split("a.txt", article_text)
    """

    def __init__(self, counter: TokenCounter, chunk_size: int = 200, chunk_overlap: int = 1):
        limit = MAX_SEQ_TOKENS - 2  # [CLS] and [SEP]
        if not 1 <= chunk_size <= limit:
            raise ValueError(f"chunk_size must be between 1 and {limit} word pieces, got {chunk_size}")
        if chunk_overlap < 0:
            raise ValueError(f"chunk_overlap must be >= 0 sentences, got {chunk_overlap}")
        self.counter = counter
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    @property
    def settings(self) -> dict[str, int | str]:
        return {
            "splitter": f"blingfire=={blingfire_version()}",
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
        }

    def split(self, doc_id: str, text: str) -> list[Passage]:
        units = self._units(text)
        return [Passage(doc_id, s, e, text[s:e]) for s, e in self._pack(units)]

    def split_many(self, docs: Sequence[tuple[str, str]]) -> list[list[Passage]]:
        """Chunk several (doc_id, text) pairs; one batched tokenizer call for all sentences."""
        spans = [split_sentences(text) for _, text in docs]
        flat = [text[s:e] for (_, text), doc_spans in zip(docs, spans, strict=True) for s, e in doc_spans]
        counts = iter(self.counter.count(flat))
        result = []
        for (doc_id, text), doc_spans in zip(docs, spans, strict=True):
            units = self._fit(text, [(s, e, next(counts)) for s, e in doc_spans])
            result.append([Passage(doc_id, s, e, text[s:e]) for s, e in self._pack(units)])
        return result

    def _units(self, text: str) -> list[tuple[int, int, int]]:
        spans = split_sentences(text)
        counts = self.counter.count([text[s:e] for s, e in spans])
        return self._fit(text, [(s, e, n) for (s, e), n in zip(spans, counts, strict=True)])

    def _fit(self, text: str, units: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        """Cut any sentence longer than chunk_size at word-piece boundaries."""
        fitted: list[tuple[int, int, int]] = []
        for start, end, n in units:
            if n <= self.chunk_size:
                fitted.append((start, end, n))
                continue
            pieces = self.counter.token_spans(text[start:end])
            i = 0
            while i < len(pieces):
                # A cut word re-tokenizes on its own ("##oo" alone is "o", "##o"), so a window is
                # recounted and narrowed until its text fits (a lone piece is kept whatever it counts).
                take = min(self.chunk_size, len(pieces) - i)
                while True:
                    cut = pieces[i + take][0] if i + take < len(pieces) else end - start
                    window = _trimmed(text, start + (pieces[i][0] if i else 0), start + cut)
                    counted = self.counter.count([text[s:e] for s, e in window]) if window else []
                    if take == 1 or all(k <= self.chunk_size for k in counted):
                        break
                    take -= 1
                fitted.extend((s, e, k) for (s, e), k in zip(window, counted, strict=True))
                i += take
        return fitted

    def _pack(self, units: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        passages: list[tuple[int, int]] = []
        first = 0
        while first < len(units):
            last, total = first, units[first][2]
            while last + 1 < len(units) and total + units[last + 1][2] <= self.chunk_size:
                last += 1
                total += units[last][2]
            passages.append((units[first][0], units[last][1]))
            if last + 1 >= len(units):
                break
            # Overlap as many sentences as fit beside the next new one, never the whole passage.
            first = max(first + 1, last + 1 - self.chunk_overlap)
            while first <= last and sum(u[2] for u in units[first : last + 2]) > self.chunk_size:
                first += 1
        return passages


def blingfire_version() -> str:
    from importlib.metadata import version

    return version("blingfire")
