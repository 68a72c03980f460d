"""Shared fixtures: a deterministic fake encoder, the seed corpus, and the real models (slow)."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from embeddings.encoder import normalize_rows

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
BBC_ARCHIVE = SHARED / "datasets" / "bbc-news" / "bbc.tar.gz"


class FakeEncoder:
    """Bag-of-hashed-words vectors: deterministic, instant, and it counts what it encodes."""

    model_id = "fake-hash-encoder"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0
        self.texts_encoded = 0

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                vectors[row, bucket % self.dim] += 1.0
        return normalize_rows(vectors)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(autouse=True)
def _index_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default index folders go to a temp dir, never to the user's cache."""
    monkeypatch.setenv("RAG_INDEX_HOME", str(tmp_path_factory.mktemp("index-home")))


@pytest.fixture
def seed_corpus(tmp_path: Path) -> Path:
    """A writable copy of seeds/ (articles only)."""
    target = tmp_path / "corpus"
    target.mkdir()
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="session")
def real_encoder():  # type: ignore[no-untyped-def]
    from embeddings.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


@pytest.fixture(scope="session")
def seed_qa(real_encoder, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real pipeline (MiniLM + spaCy reader) over seeds/, built once per test session."""
    from rag.pipeline import QAPipeline

    return QAPipeline.from_corpus(
        SEEDS, index_dir=tmp_path_factory.mktemp("seed-index"), encoder=real_encoder
    )
