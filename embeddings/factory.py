"""Pick an encoder by the name a setting holds ("onnx", "torch" or "onnx-int8")."""

from __future__ import annotations

from embeddings.encoder import Encoder, SentenceTransformerEncoder
from embeddings.onnx_encoder import OnnxEncoder, OnnxFp32Encoder

ENCODERS = ("onnx", "torch", "onnx-int8")


def make_encoder(name: str) -> Encoder:
    """A new, not yet loaded encoder of the named kind.

    All three produce all-MiniLM-L6-v2 vectors. "onnx" (the default: the packaged float32
    weights on onnxruntime) and "torch" give the same vectors and share a `model_id`, so either
    reads the other's index; "onnx-int8" rounds the weights, so its index is its own: choosing
    it (or leaving it) re-embeds rather than mixing vectors.

    >>> make_encoder("onnx-int8").model_id
    'sentence-transformers/all-MiniLM-L6-v2@int8-onnx:8199be6f699a395f'
    """
    if name == "onnx":
        return OnnxFp32Encoder()
    if name == "torch":
        return SentenceTransformerEncoder()
    if name == "onnx-int8":
        return OnnxEncoder()
    raise ValueError(f"encoder must be one of {ENCODERS}, got {name!r}")
