"""Shared fixtures: a deterministic fake encoder, the seed corpus, and the real models (slow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.crashtest_worker import HashEncoder

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
BBC_ARCHIVE = SHARED / "datasets" / "bbc-news" / "bbc.tar.gz"


# Bag-of-hashed-words vectors: deterministic, instant, and it counts what it encodes. The product's
# harnesses (rag reliability) use the same test double, so there is one definition of it.
FakeEncoder = HashEncoder


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(autouse=True)
def _index_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default index folders go to a temp dir, never to the user's cache; so does the exported
    ONNX embedder, once per test session (exporting takes seconds)."""
    monkeypatch.setenv("RAG_INDEX_HOME", str(tmp_path_factory.mktemp("index-home")))
    monkeypatch.setenv("RAG_MODEL_HOME", str(tmp_path_factory.getbasetemp() / "model-home"))


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
