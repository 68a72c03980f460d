"""Fuzzing (rag/fuzz.py): random bytes, HTML and unicode through ingestion and chunking, random
questions through the question path; no input may crash or break an invariant. The long run
(20,000+ inputs) is documented in docs/RELIABILITY.md; CI runs this reduced budget."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import strategies as st

from embeddings.tokens import default_counter
from rag.answer import Answer
from rag.chunking import Chunker, Passage
from rag.documents import load_corpus
from rag.errors import RagError
from rag.fuzz import BrokenInvariant, check_answer, check_chunks, fuzz_target, run_fuzz

FAST_TARGETS = ("documents-bytes", "documents-html", "documents-unicode", "chunking")


def test_ingestion_and_chunking_survive_random_inputs() -> None:
    result = run_fuzz(examples=400, seed=20261201, targets=FAST_TARGETS)
    assert result["crashes"] == []
    assert result["inputs"] == 400
    assert result["targets"] == dict.fromkeys(FAST_TARGETS, 100)


@pytest.mark.slow  # the heuristic reader loads spaCy
def test_question_path_survives_random_questions_and_histories() -> None:
    result = run_fuzz(examples=150, seed=20261201, targets=("question",))
    assert result["crashes"] == []
    assert result["targets"] == {"question": 150}


def test_a_crash_is_recorded_and_a_rag_error_is_not() -> None:
    def check(n: int) -> None:
        if n % 7 == 3:
            raise ValueError("bad luck")
        if n % 7 == 4:
            raise RagError("a clear refusal")

    crashes: dict[str, list[object]] = {}
    ran = fuzz_target("numbers", st.integers(0, 10**6), check, 200, 0, crashes)
    assert ran == 200
    assert list(crashes) == ["numbers: ValueError: bad luck"]
    count, first = crashes["numbers: ValueError: bad luck"]
    assert isinstance(count, int) and count > 0 and int(str(first)) % 7 == 3


class _OffByOne(Chunker):
    def split(self, doc_id: str, text: str) -> list[Passage]:
        return [replace(p, start=p.start + 1) for p in super().split(doc_id, text)]


def test_broken_invariants_are_caught() -> None:
    text = "First sentence here. Second one follows.\nA new line starts."
    check_chunks(Chunker(default_counter(), 8, 1), "d", text)
    with pytest.raises(BrokenInvariant, match="is not text"):
        check_chunks(_OffByOne(default_counter(), 8, 1), "d", text)

    class Store:
        def article(self, doc_id: str):  # type: ignore[no-untyped-def]
            from rag.documents import Article

            return Article(doc_id, "Title", "Title\n\nMayor Ann Lee spoke.", "h", "utf-8")

    good = Answer("Who spoke?", "Ann Lee", 0.5, doc_id="a", start=13, end=20)
    check_answer(good, Store())
    with pytest.raises(BrokenInvariant, match="not verbatim"):
        check_answer(replace(good, start=12, end=19), Store())
    with pytest.raises(BrokenInvariant, match="outside"):
        check_answer(replace(good, score=1.5), Store())


def test_without_hypothesis_the_fuzzer_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(RagError, match="needs hypothesis"):
        run_fuzz(examples=10)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="targets must be some of"):
        run_fuzz(examples=10, targets=("nonsense",))
    with pytest.raises(RagError, match="examples must be >= 5"):
        run_fuzz(examples=2)


# -- what the long fuzz run found, kept as regression tests ---------------------------------------


def test_html_with_a_control_character_loads_or_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_bytes(b"<p>Hello \x16 world, this is text.</p>")
    load = load_corpus(tmp_path)
    assert len(load.articles) + len(load.skipped) == 1


def test_a_cut_long_word_stays_within_chunk_size() -> None:
    check_chunks(Chunker(default_counter(), 8, 0), "d", "Ô" * 27 + " and more")


def test_a_question_with_an_undecodable_byte_is_refused_clearly() -> None:
    from rag.crashtest_worker import TokenizingHashEncoder
    from rag.retrieval import check_question

    question = "Who \udcff is the mayor?"
    try:
        TokenizingHashEncoder().encode([check_question(question)])
    except RagError:
        return
    except TypeError as exc:
        pytest.fail(f"the question reached the tokenizer and broke it: {exc}")
