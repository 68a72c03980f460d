from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from embeddings.encoder import CachedEncoder, normalize_rows
from embeddings.model_files import ModelError, model_dir, verified_model_dir
from tests.conftest import FakeEncoder


def test_normalize_rows_gives_unit_rows_and_keeps_zero_rows() -> None:
    rows = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert rows.dtype == np.float32
    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


def test_cached_encoder_embeds_each_text_once(fake_encoder: FakeEncoder) -> None:
    cached = CachedEncoder(fake_encoder, maxsize=2)
    first = cached.encode(["who is he?", "what is it?"])
    again = cached.encode(["what is it?", "who is he?"])
    assert fake_encoder.texts_encoded == 2
    assert np.array_equal(first[::-1], again)
    cached.encode(["third text"])  # evicts the least recently used: "what is it?"
    cached.encode(["who is he?"])
    assert fake_encoder.texts_encoded == 3
    cached.encode(["what is it?"])
    assert fake_encoder.texts_encoded == 4
    assert cached.encode([]).shape == (0, fake_encoder.dim)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="refusing to use tampered or unknown weights"):
        verified_model_dir(copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="not found"):
        verified_model_dir(copy)


@pytest.mark.slow
def test_real_encoder_gives_unit_384_d_vectors_that_rank_by_meaning(real_encoder) -> None:  # type: ignore[no-untyped-def]
    vectors = real_encoder.encode(
        ["Who leads the jihadists?", "The group is led by a preacher.", "Tea prices rose."]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
