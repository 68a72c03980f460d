from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import RagError
from rag.keywords import fts_query, query_terms
from rag.pipeline import PipelineSettings, QAPipeline
from tests.conftest import FakeEncoder


@pytest.fixture
def qa(seed_corpus: Path, tmp_path: Path, fake_encoder: FakeEncoder) -> QAPipeline:
    return QAPipeline.from_corpus(seed_corpus, index_dir=tmp_path / "idx", encoder=fake_encoder)


def test_hits_are_ranked_passages_with_exact_offsets(qa: QAPipeline) -> None:
    hits = qa.retrieve("Who is Jibril al-Mouhajer?", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "calls himself Jibril al-Mouhajer" in hits[0].passage.text
    article = qa.index.store.article(hits[0].passage.doc_id)
    assert article is not None
    for h in hits:
        assert article.text[h.passage.start : h.passage.end] == h.passage.text
        assert h.title == article.title


def test_k_larger_than_the_corpus_returns_every_passage(qa: QAPipeline) -> None:
    passages = qa.index.store.count()[1]
    assert len(qa.retrieve("jihadists", k=500)) == passages


@pytest.mark.parametrize(
    ("question", "k", "message"),
    [
        ("", 5, "question is empty"),
        ("   \n\t", 5, "question is empty"),
        ("x" * 100_000, 5, "too long: 100,000 characters"),
        ("???", 5, "no words"),
        ("😀😀", 5, "no words"),
        ("Who?", 0, "k must be between 1 and 1000, got 0"),
        ("Who?", -3, "got -3"),
        ("Who?", 10**9, "got 1000000000"),
    ],
)
def test_bad_questions_and_k_get_specific_messages(
    qa: QAPipeline, question: str, k: int, message: str
) -> None:
    with pytest.raises(RagError, match=message):
        qa.retrieve(question, k=k)


def test_a_question_in_another_script_still_retrieves(qa: QAPipeline) -> None:
    assert len(qa.retrieve("Кто такой Диаби?", k=2)) == 2


def test_keyword_weight_one_ranks_by_bm25(
    seed_corpus: Path, tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    qa = QAPipeline.from_corpus(
        seed_corpus,
        index_dir=tmp_path / "i",
        encoder=fake_encoder,
        settings=PipelineSettings(keyword_weight=1.0),
    )
    hits = qa.retrieve("Olivier Christen Figaro", k=2)
    assert "Olivier Christen" in hits[0].passage.text


def test_rrf_fusion_also_ranks(seed_corpus: Path, tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    qa = QAPipeline.from_corpus(
        seed_corpus,
        index_dir=tmp_path / "i",
        encoder=fake_encoder,
        settings=PipelineSettings(fusion="rrf"),
    )
    assert "Jibril" in qa.retrieve("Jibril al-Mouhajer WhatsApp", k=1)[0].passage.text


def test_query_terms_drop_function_words_and_quote_safely() -> None:
    assert query_terms("Who is the leader of the group?") == ["leader", "group"]
    assert fts_query('say "AND" OR NOT') is None
    assert fts_query("Who is he?") is None
    assert fts_query('a "quoted" NEAR(x)') == '"quoted" OR "near"'
