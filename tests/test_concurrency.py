"""One loaded pipeline answering from 16 threads at once gives the sequential answers, no errors
(Streamlit shares the cached pipeline across browser sessions)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.answer import answer_json
from rag.evaluation import load_questions
from tests.conftest import SEEDS

THREADS = 16


def _fingerprint(qa, question: str) -> str:  # type: ignore[no-untyped-def]
    data = answer_json(qa.ask(question))
    data.pop("timings_ms")
    return json.dumps(data, sort_keys=True)


@pytest.mark.slow
def test_sixteen_threads_answer_like_one(seed_qa) -> None:  # type: ignore[no-untyped-def]
    questions = [q.question for q in load_questions(SEEDS / "questions.jsonl").questions][:24]
    sequential = {q: _fingerprint(seed_qa, q) for q in questions}
    work = questions * 2  # every question asked twice, interleaved across threads
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        concurrent = list(pool.map(lambda q: (q, _fingerprint(seed_qa, q)), work))
    assert len(concurrent) == len(work)
    for question, fingerprint in concurrent:
        assert fingerprint == sequential[question], question
