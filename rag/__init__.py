"""Extractive question answering over news articles, with exact citations.

The names below load their module on first use: `import rag.training` (as on a GPU machine
without faiss) does not import the index, the HTML extractor or the pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embeddings.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.answer import Answer, Citation
    from rag.chunking import Chunker, Passage
    from rag.documents import Article
    from rag.errors import RagError
    from rag.followup import Rewrite, Turn
    from rag.pipeline import PipelineSettings, QAPipeline
    from rag.retrieval import Hit

_HOMES = {
    "Answer": "rag.answer",
    "Article": "rag.documents",
    "Chunker": "rag.chunking",
    "Citation": "rag.answer",
    "Hit": "rag.retrieval",
    "Passage": "rag.chunking",
    "PipelineSettings": "rag.pipeline",
    "QAPipeline": "rag.pipeline",
    "RagError": "rag.errors",
    "Rewrite": "rag.followup",
    "Turn": "rag.followup",
}
__all__ = [
    "Answer",
    "Article",
    "Chunker",
    "Citation",
    "Hit",
    "Passage",
    "PipelineSettings",
    "QAPipeline",
    "RagError",
    "Rewrite",
    "Turn",
]


__getattr__ = lazy_exports(__name__, _HOMES)
