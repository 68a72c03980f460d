"""Sentence embeddings (torch or int8 ONNX) and the FAISS vector index."""

from embeddings.encoder import Encoder, SentenceTransformerEncoder, normalize_rows
from embeddings.factory import ENCODERS, make_encoder
from embeddings.index import VectorIndex
from embeddings.model_files import ModelError
from embeddings.onnx_encoder import OnnxEncoder

__all__ = [
    "ENCODERS",
    "Encoder",
    "ModelError",
    "OnnxEncoder",
    "SentenceTransformerEncoder",
    "VectorIndex",
    "make_encoder",
    "normalize_rows",
]
