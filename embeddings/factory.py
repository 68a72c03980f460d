"""Pick an encoder by the name a setting holds ("torch" or "onnx-int8")."""

from __future__ import annotations

from embeddings.encoder import Encoder, SentenceTransformerEncoder
from embeddings.onnx_encoder import OnnxEncoder

ENCODERS = ("torch", "onnx-int8")


def make_encoder(name: str) -> Encoder:
    """A new, not yet loaded encoder of the named kind.

    Both produce all-MiniLM-L6-v2 vectors but carry different `model_id`s, so an index built
    with one is rebuilt, never mixed, when the other is chosen.

    >>> make_encoder("onnx-int8").model_id
    'sentence-transformers/all-MiniLM-L6-v2@int8-onnx:8199be6f699a395f'
    """
    if name == "torch":
        return SentenceTransformerEncoder()
    if name == "onnx-int8":
        return OnnxEncoder()
    raise ValueError(f"encoder must be one of {ENCODERS}, got {name!r}")
