"""Extractive question answering over news articles, with exact citations."""

from rag.answer import Answer, Citation
from rag.chunking import Chunker, Passage
from rag.documents import Article
from rag.errors import RagError
from rag.followup import Rewrite, Turn
from rag.pipeline import PipelineSettings, QAPipeline
from rag.retrieval import Hit

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
