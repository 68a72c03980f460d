"""Dense, keyword and fused retrieval over the indexed passages.

SKELETON: Hit is the contract; the retrievers are being written.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.chunking import Passage


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with its fused score and 1-based rank."""

    passage: Passage
    title: str
    score: float
    rank: int
    dense_score: float | None = None
    keyword_score: float | None = None
