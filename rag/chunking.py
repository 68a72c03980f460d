"""Split articles into sentence-aligned passages that fit the embedder's token window.

SKELETON: Passage is the contract; the chunker is being written.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Passage:
    """A slice of one article: `article.text[start:end] == text` always holds."""

    doc_id: str
    start: int
    end: int
    text: str
