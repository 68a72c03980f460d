"""Sentence encoders: text -> unit vectors. One protocol so tests can pass a fake."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from embeddings.model_files import MAX_SEQ_TOKENS, MODEL_ID, WEIGHTS_SHA256, verified_model_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Encoder(Protocol):
    """Turns texts into L2-normalized float32 rows (inner product == cosine)."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """The single place where vectors become unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 from the packaged weights, loaded on first use (importing torch is slow).

    >>> enc = SentenceTransformerEncoder()
    >>> enc.encode(["Who leads the jihadists in the camp?"]).shape
    (1, 384)
    """

    model_id = f"{MODEL_ID}@sha256:{WEIGHTS_SHA256[:16]}"
    dim = 384

    def __init__(self, model_path: Path | None = None, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._model_path = model_path
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                path = verified_model_dir(self._model_path)
                model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
                model.max_seq_length = MAX_SEQ_TOKENS
                self._model = model
            return self._model

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=show_progress,
        )
        return normalize_rows(vectors)


class CachedEncoder:
    """Remembers the vectors of recent texts, so a question is encoded once for retrieval and reading."""

    def __init__(self, encoder: Encoder, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.inner = encoder
        self.model_id = encoder.model_id
        self.dim = encoder.dim
        self.maxsize = maxsize
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self.inner.encode(missing, show_progress=show_progress)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector
                    if len(self._cache) > self.maxsize:
                        self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            rows = []
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:  # evicted by a concurrent caller between the two steps
                    vector = self.inner.encode([text])[0]
                else:
                    self._cache.move_to_end(text)
                rows.append(vector)
        return np.stack(rows).astype(np.float32, copy=False)
