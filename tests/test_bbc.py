"""Retrieval on real news: two BBC categories, the held-out questions about them (slow)."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from rag.evaluation import contains_answer, load_span_questions
from rag.pipeline import QAPipeline
from tests.conftest import BBC_ARCHIVE, ROOT

CATEGORIES = ("business", "entertainment")


@pytest.fixture(scope="module")
def bbc_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not BBC_ARCHIVE.is_file():
        pytest.skip("../shared/datasets/bbc-news is not present")
    unpacked = tmp_path_factory.mktemp("bbc-all")
    with tarfile.open(BBC_ARCHIVE) as archive:
        archive.extractall(unpacked, filter="data")
    corpus = tmp_path_factory.mktemp("bbc") / "bbc"
    for category in CATEGORIES:
        shutil.copytree(unpacked / "bbc" / category, corpus / category)
    return corpus


@pytest.mark.slow
def test_an_answer_bearing_passage_is_in_the_top_3_for_95_percent(
    bbc_subset: Path, real_encoder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    qa = QAPipeline.from_corpus(bbc_subset, index_dir=tmp_path / "index", encoder=real_encoder)
    questions = [
        q
        for q in load_span_questions(ROOT / "benchmarks" / "bbc_questions.jsonl", bbc_subset).questions
        if q.doc_id and q.doc_id.split("/")[0] in CATEGORIES
    ]
    assert len(questions) >= 40
    in_top_3 = sum(
        any(contains_answer(h.passage.text, q.answers) for h in qa.retrieve(q.question, k=3))
        for q in questions
    )
    assert in_top_3 / len(questions) >= 0.95, f"{in_top_3}/{len(questions)}"
    report = qa.report
    assert report is not None and report.duplicates  # the subset has byte copies, reported
