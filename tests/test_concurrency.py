"""One loaded pipeline answering from 16 threads at once gives the sequential answers, no errors
(Streamlit shares the cached pipeline across browser sessions); two processes indexing one
folder are serialized by the index lock (the harnesses live in rag/concurrency.py)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from rag.concurrency import run_concurrency, run_lock_check
from rag.crashtest import write_articles
from rag.crashtest_worker import HashEncoder, harness_chunker
from rag.errors import RagError
from rag.evaluation import load_questions
from rag.pipeline import PipelineSettings, QAPipeline
from tests.conftest import SEEDS


def test_a_pipeline_that_answers_differently_is_reported(tmp_path: Path) -> None:
    """The harness can fail: answers that change between calls count as mismatches."""
    write_articles(tmp_path / "corpus", range(12))
    qa = QAPipeline.from_corpus(
        tmp_path / "corpus",
        index_dir=tmp_path / "index",
        encoder=HashEncoder(),
        chunker=harness_chunker(),
        settings=PipelineSettings(reader="heuristic"),
    )
    calls = itertools.count()
    real_ask = qa.ask

    def flaky_ask(question: str, **kwargs):  # type: ignore[no-untyped-def]
        n = next(calls)
        if n % 5 == 4:
            raise RuntimeError("boom")
        answer = real_ask(question, **kwargs)
        return replace(answer, score=answer.score + 0.5) if n % 2 else answer

    qa.ask = flaky_ask  # type: ignore[method-assign]
    result = run_concurrency(threads=4, seconds=1.0, qa=qa, questions=["Who is in story 3?"])
    assert result["questions_answered"] > 0
    assert result["errors"] > 0 and result["mismatches"] > 0
    assert any("RuntimeError: boom" in p for p in result["problems"])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(RagError, match="threads must be >= 1, got 0"):
        run_concurrency(threads=0)
    with pytest.raises(RagError, match="no question file"):
        run_concurrency(corpus=Path("/nonexistent"))


@pytest.mark.slow
def test_sixteen_threads_answer_like_one(seed_qa) -> None:  # type: ignore[no-untyped-def]
    questions = [q.question for q in load_questions(SEEDS / "questions.jsonl").questions][:24]
    result = run_concurrency(threads=16, seconds=8.0, qa=seed_qa, questions=questions, log=print)
    print(result)
    assert result["errors"] == 0 and result["mismatches"] == 0, result["problems"]
    assert result["questions_answered"] >= 16  # every thread got at least one answer in


def test_two_processes_indexing_one_folder_are_serialized() -> None:
    result = run_lock_check(articles=120, delay_s=2.0, log=print)
    assert result["failures"] == []
    assert result["serialized"] and result["consistent"]
    assert result["second_embedded"] == 0
    assert "another process is indexing" in result["message"]
