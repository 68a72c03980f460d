"""The float32 ONNX export of the packaged embedder: checked against torch, cached, re-made when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import embeddings.fp32_export as fp32_export
from embeddings.encoder import SentenceTransformerEncoder
from embeddings.fp32_export import FILE_NAME, cache_dir, export_encoder, exported_model_file
from embeddings.model_files import WEIGHTS_SHA256, ModelError
from embeddings.onnx_encoder import OnnxFp32Encoder
from tests.conftest import SEEDS


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_MODEL_HOME", str(tmp_path / "models"))
    assert cache_dir() == tmp_path / "models"
    monkeypatch.delenv("RAG_MODEL_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "rag-news-qa" / "models"
    monkeypatch.setenv("RAG_INDEX_HOME", str(tmp_path / "indexes"))  # indexes are per corpus, not models
    assert cache_dir() == tmp_path / "xdg" / "rag-news-qa" / "models"


def test_an_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(ModelError, match="cannot write the exported embedder to .* use --encoder torch"):
        export_encoder(blocker / "models" / FILE_NAME)


@pytest.mark.slow
def test_an_export_that_disagrees_with_torch_is_refused_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fp32_export, "_max_vector_difference", lambda onnx_file, source: 0.5)
    target = tmp_path / FILE_NAME
    with pytest.raises(ModelError, match=r"disagrees with torch: max \|difference\| 5.00e-01 > 1e-04"):
        export_encoder(target)
    assert list(tmp_path.iterdir()) == []  # no file, no sidecar, no temp file


@pytest.mark.slow
def test_the_export_gives_torchs_vectors_is_reused_and_is_remade_when_damaged(
    tmp_path: Path, real_encoder: SentenceTransformerEncoder
) -> None:
    path = exported_model_file(tmp_path)
    record = json.loads((tmp_path / (FILE_NAME + ".json")).read_text())
    assert path == tmp_path / FILE_NAME and record["source_weights_sha256"] == WEIGHTS_SHA256
    assert record["max_abs_diff_vs_torch"] < 1e-5  # seen: 1e-7

    texts = [
        line for line in next(SEEDS.glob("*.txt")).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    texts += ["Who is Jibril al-Mouhajer?", "How many French jihadists are in Syria?"]
    onnx = OnnxFp32Encoder(model_file=path)
    assert onnx.model_id == real_encoder.model_id  # one index serves both
    assert np.abs(onnx.encode(texts) - real_encoder.encode(texts)).max() < 1e-5

    made = path.stat().st_mtime_ns
    assert exported_model_file(tmp_path) == path and path.stat().st_mtime_ns == made  # reused

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert exported_model_file(tmp_path) == path  # the recorded sha256 caught it: exported again
    assert json.loads((tmp_path / (FILE_NAME + ".json")).read_text())["sha256"] == record["sha256"]
    assert path.read_bytes() != bytes(data)
