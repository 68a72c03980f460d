"""A FAISS inner-product index over unit vectors, keyed by integer ids. It never owns a model."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

UNIT_TOLERANCE = 1e-3


class VectorIndex:
    """Exact cosine search: `add(ids, vectors)`, `search(queries, k) -> [[(id, score)]]`.

    >>> index = VectorIndex(dim=384)
    >>> index.add(np.array([7, 8]), vectors)
    >>> index.search(query_vectors, k=1)
    [[(7, 0.83)]]
    """

    def __init__(self, dim: int, faiss_index: faiss.Index | None = None) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self._index = (
            faiss_index if faiss_index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        )
        if self._index.d != dim:
            raise ValueError(f"index dimension {self._index.d} does not match dim {dim}")

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = self._checked(vectors)
        if len(ids) != len(vectors):
            raise ValueError(f"got {len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        return int(self._index.remove_ids(ids))  # type: ignore[arg-type]  # faiss accepts arrays

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = self._checked(queries)
        if len(self) == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = self._index.search(queries, min(k, len(self)))
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def similarity(self, query: np.ndarray, vector_id: int) -> float:
        """Cosine between one unit query vector and the stored vector `vector_id`."""
        stored = self._index.reconstruct(int(vector_id))
        return float(np.dot(np.asarray(query, dtype=np.float32), stored))

    def save(self, path: Path) -> None:
        """Write atomically: a temp file beside `path`, fsync, then rename over it."""
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        faiss.write_index(self._index, str(tmp))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        index = faiss.read_index(str(path))
        return cls(index.d, index)

    def _checked(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1)
        if len(norms) and not np.all((np.abs(norms - 1.0) < UNIT_TOLERANCE) | (norms == 0)):
            raise ValueError("vectors must be unit length; normalize them with normalize_rows()")
        return vectors
