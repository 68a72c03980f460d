from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.encoder import normalize_rows
from embeddings.index import VectorIndex


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return normalize_rows(np.random.default_rng(seed).normal(size=(n, dim)))


def test_search_returns_ids_and_cosine_best_first() -> None:
    index = VectorIndex(8)
    vectors = _vectors(20)
    index.add(np.arange(100, 120), vectors)
    hits = index.search(vectors[[3]], k=5)[0]
    assert hits[0][0] == 103 and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert index.similarity(vectors[3], 104) == pytest.approx(float(vectors[3] @ vectors[4]), abs=1e-5)


def test_remove_then_save_and_load(tmp_path: Path) -> None:
    index = VectorIndex(8)
    index.add(np.arange(10), _vectors(10))
    assert index.remove(np.array([2, 3])) == 2
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert len(loaded) == 8
    assert {i for i, _ in loaded.search(_vectors(10)[[2]], k=10)[0]} == set(range(10)) - {2, 3}
    assert not list(tmp_path.glob(".*tmp*"))


def test_empty_index_and_k_larger_than_index() -> None:
    index = VectorIndex(8)
    assert index.search(_vectors(2), k=3) == [[], []]
    index.add(np.array([1]), _vectors(1))
    assert len(index.search(_vectors(1), k=50)[0]) == 1


def test_bad_input_is_refused_with_the_value() -> None:
    index = VectorIndex(8)
    with pytest.raises(ValueError, match="got 0"):
        index.search(_vectors(1), k=0)
    with pytest.raises(ValueError, match="unit length"):
        index.add(np.array([1]), np.full((1, 8), 3.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        index.add(np.array([1]), _vectors(1, dim=4))
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        index.add(np.array([1, 2]), _vectors(1))
