"""Dense, keyword and fused retrieval over the indexed passages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rag.chunking import Passage
from rag.errors import RagError

if TYPE_CHECKING:  # annotations only: the span reader and training use Hit without faiss
    from embeddings.encoder import Encoder
    from rag.corpus_index import CorpusIndex

MAX_QUESTION_CHARS = 2000
MAX_K = 1000
FUSION_METHODS = ("linear", "rrf")
RRF_K = 60


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with its fused score and 1-based rank."""

    passage: Passage
    title: str
    score: float
    rank: int
    dense_score: float | None = None
    keyword_score: float | None = None


def check_question(question: str) -> str:
    """The question stripped, or a RagError saying precisely what is wrong with it."""
    if not isinstance(question, str):
        raise RagError(f"question must be text, got {type(question).__name__}")
    stripped = question.strip()
    if not stripped:
        raise RagError("question is empty")
    check_text(stripped, "question")
    if len(stripped) > MAX_QUESTION_CHARS:
        raise RagError(
            f"question is too long: {len(stripped):,} characters (the limit is {MAX_QUESTION_CHARS:,})"
        )
    if not any(c.isalnum() for c in stripped):
        shown = stripped if len(stripped) <= 40 else stripped[:40] + "..."
        raise RagError(f"question has no words to search for: '{shown}'")
    return stripped


def check_text(text: str, what: str) -> str:
    """`text`, or a RagError when it holds lone surrogates: bytes that could not be decoded (a CLI
    argument keeps them through surrogateescape), which the tokenizers and spaCy cannot take."""
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise RagError(f"{what} is not valid text: it holds bytes that could not be decoded")
    return text


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RagError(f"k must be between 1 and {MAX_K}, got {k!r}")
    return k


class HybridRetriever:
    """Dense (FAISS cosine) and keyword (BM25) candidates, fused into one ranking.

    `fusion="linear"`: keyword_weight * bm25/max_bm25 + (1 - keyword_weight) * cosine, where
    every candidate gets its exact cosine; `fusion="rrf"`: reciprocal rank fusion. The default
    weight was chosen on data: see `rag tune-fusion` and docs/EVALUATION.md.
    """

    def __init__(
        self,
        index: CorpusIndex,
        encoder: Encoder,
        *,
        fusion: str = "linear",
        keyword_weight: float = 0.5,
        candidates: int = 50,
    ) -> None:
        if fusion not in FUSION_METHODS:
            raise ValueError(f"fusion must be one of {FUSION_METHODS}, got {fusion!r}")
        if not 0.0 <= keyword_weight <= 1.0:
            raise ValueError(f"keyword_weight must be between 0 and 1, got {keyword_weight}")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        if encoder.model_id != index.model_id:
            raise RagError(f"index was built with '{index.model_id}', not '{encoder.model_id}'")
        self.index = index
        self.encoder = encoder
        self.fusion = fusion
        self.keyword_weight = keyword_weight
        self.candidates = candidates

    def retrieve(self, question: str, k: int = 5) -> list[Hit]:
        question = check_question(question)
        k = check_k(k)
        query = self.encoder.encode([question])
        return self.retrieve_encoded(question, query, k)

    def retrieve_encoded(self, question: str, query: np.ndarray, k: int) -> list[Hit]:
        pool = max(k, self.candidates)
        dense = dict(self.index.vectors.search(query, pool)[0])
        keyword = dict(self.index.store.keyword_search(question, pool))
        if self.fusion == "rrf":
            scores = _rrf(dense, keyword, self.keyword_weight)
        else:
            for pid in keyword.keys() - dense.keys():
                dense[pid] = self.index.vectors.similarity(query[0], pid)
            top = max(keyword.values(), default=0.0)
            scores = {
                pid: self.keyword_weight * (keyword.get(pid, 0.0) / top if top > 0 else 0.0)
                + (1.0 - self.keyword_weight) * dense[pid]
                for pid in dense
            }
        best = sorted(scores, key=lambda pid: (-scores[pid], pid))[:k]
        found = self.index.store.passages(best)
        hits: list[Hit] = []
        for pid in best:
            if pid not in found:  # a vector without a passage would mean a torn index
                raise RagError(f"passage {pid} is missing from the store; rebuild the index")
            passage, title = found[pid]
            hits.append(
                Hit(
                    passage,
                    title,
                    float(scores[pid]),
                    len(hits) + 1,
                    dense.get(pid),
                    keyword.get(pid),
                )
            )
        return hits


def _rrf(dense: dict[int, float], keyword: dict[int, float], keyword_weight: float) -> dict[int, float]:
    scores: dict[int, float] = {}
    for weight, ranked in ((1.0 - keyword_weight, dense), (keyword_weight, keyword)):
        for rank, pid in enumerate(sorted(ranked, key=lambda p: -ranked[p]), start=1):
            scores[pid] = scores.get(pid, 0.0) + weight / (RRF_K + rank)
    return scores
