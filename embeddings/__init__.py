"""Sentence embeddings (torch or int8 ONNX) and the FAISS vector index.

The names below load their module on first use, so that importing one submodule (say
`embeddings.model_files`, as training does) does not import faiss or torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embeddings.lazy import lazy_exports

if TYPE_CHECKING:
    from embeddings.encoder import Encoder, SentenceTransformerEncoder, normalize_rows
    from embeddings.factory import ENCODERS, make_encoder
    from embeddings.index import VectorIndex
    from embeddings.model_files import ModelError
    from embeddings.onnx_encoder import OnnxEncoder

_HOMES = {
    "ENCODERS": "embeddings.factory",
    "Encoder": "embeddings.encoder",
    "ModelError": "embeddings.model_files",
    "OnnxEncoder": "embeddings.onnx_encoder",
    "SentenceTransformerEncoder": "embeddings.encoder",
    "VectorIndex": "embeddings.index",
    "make_encoder": "embeddings.factory",
    "normalize_rows": "embeddings.encoder",
}
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


__getattr__ = lazy_exports(__name__, _HOMES)
