"""Sentence embeddings and the FAISS vector index."""

from embeddings.encoder import Encoder, SentenceTransformerEncoder, normalize_rows
from embeddings.index import VectorIndex
from embeddings.model_files import ModelError

__all__ = ["Encoder", "ModelError", "SentenceTransformerEncoder", "VectorIndex", "normalize_rows"]
