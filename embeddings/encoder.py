"""Sentence encoders: text -> unit vectors. One protocol so tests can pass a fake."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Encoder(Protocol):
    """Turns texts into L2-normalized float32 rows (inner product == cosine)."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """The single place where vectors become unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)
