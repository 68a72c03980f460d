"""The question-answering pipeline: corpus -> index -> retrieval (-> reader), one object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embeddings.encoder import Encoder, SentenceTransformerEncoder
from embeddings.tokens import default_counter
from rag.chunking import Chunker
from rag.corpus_index import CorpusIndex
from rag.indexing import IndexReport, sync_index
from rag.manifest import default_index_dir
from rag.retrieval import Hit, HybridRetriever


@dataclass(frozen=True)
class PipelineSettings:
    """Tunable knobs with the defaults chosen from measurements (docs/EVALUATION.md)."""

    chunk_size: int = 200
    chunk_overlap: int = 1
    fusion: str = "linear"
    keyword_weight: float = 0.5
    candidates: int = 50


class QAPipeline:
    """Index a folder of articles and query it.

    >>> qa = QAPipeline.from_corpus("seeds")
    >>> hits = qa.retrieve("Who is Jibril al-Mouhajer?", k=5)
    >>> hits[0].title, hits[0].passage.start
    """

    def __init__(
        self,
        index: CorpusIndex,
        encoder: Encoder,
        settings: PipelineSettings | None = None,
        report: IndexReport | None = None,
    ) -> None:
        self.settings = settings or PipelineSettings()
        self.index = index
        self.encoder = encoder
        self.report = report
        self.retriever = HybridRetriever(
            index,
            encoder,
            fusion=self.settings.fusion,
            keyword_weight=self.settings.keyword_weight,
            candidates=self.settings.candidates,
        )

    @classmethod
    def from_corpus(
        cls,
        corpus: str | Path,
        *,
        index_dir: str | Path | None = None,
        encoder: Encoder | None = None,
        settings: PipelineSettings | None = None,
        chunker: Chunker | None = None,
        progress: bool = False,
        log: Callable[[str], None] = lambda message: None,
    ) -> QAPipeline:
        """Build or update the index for `corpus` (only what changed), then open it."""
        corpus = Path(corpus)
        settings = settings or PipelineSettings()
        encoder = encoder or SentenceTransformerEncoder()
        chunker = chunker or Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
        target = Path(index_dir) if index_dir else default_index_dir(corpus)
        report = sync_index(
            corpus, target, encoder=encoder, chunker=chunker, progress=progress, log=log
        )
        return cls(CorpusIndex.open(target), encoder, settings, report)

    def retrieve(self, question: str, k: int = 5) -> list[Hit]:
        """The k passages that best match `question`, best first."""
        return self.retriever.retrieve(question, k)

    def close(self) -> None:
        self.index.close()
