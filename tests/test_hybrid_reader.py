from __future__ import annotations

from collections.abc import Sequence

import pytest

from rag.answer import Answer
from rag.chunking import Passage
from rag.hybrid_reader import REPEAT_SHARE, HybridReader
from rag.retrieval import Hit

TEXT = "Oumar Diaby, 50, leads the camp. His son plays football in Harim."


def _answer(text: str, score: float) -> Answer:
    start = TEXT.index(text)
    return Answer("q", text, score, "a.txt", start, start + len(text))


class FixedReader:
    def __init__(self, answers: Sequence[Answer]) -> None:
        self.answers = list(answers)

    def read(self, question: str, hits: Sequence[Hit]) -> list[Answer]:
        return list(self.answers)


def test_agreement_lifts_an_answer_and_disagreement_halves_it() -> None:
    neural = FixedReader([_answer("Harim", 0.6), _answer("Oumar Diaby", 0.3)])
    heuristic = FixedReader([_answer("Oumar Diaby", 0.8)])
    answers = HybridReader(neural, heuristic).read("Who leads the camp?", [])
    assert [a.text for a in answers] == ["Oumar Diaby", "Harim"]
    assert answers[0].score == pytest.approx(0.5 * 0.3 + 0.5 * 0.8)
    assert answers[1].score == pytest.approx(0.5 * 0.6)
    for a in answers:  # offsets are the proposer's, so the span is verbatim
        assert a.start is not None and a.end is not None and TEXT[a.start : a.end] == a.text


def test_partial_overlap_vouches_in_proportion_and_texts_are_deduplicated() -> None:
    neural = FixedReader([_answer("Oumar Diaby", 0.5)])
    heuristic = FixedReader([_answer("Diaby", 0.6), _answer("Harim", 0.2)])
    answers = HybridReader(neural, heuristic).read("Who?", [])
    by_text = {a.text: a.score for a in answers}
    assert by_text["Oumar Diaby"] == pytest.approx(0.25 + 0.5 * 0.6 * (2 / 3))
    assert by_text["Harim"] == pytest.approx(0.1)
    assert len(answers) == len({a.text for a in answers})


def test_nothing_proposed_nothing_returned_and_weight_checked() -> None:
    assert HybridReader(FixedReader([]), FixedReader([])).read("Who?", []) == []
    with pytest.raises(ValueError, match="neural_weight must be between 0 and 1, got 2"):
        HybridReader(FixedReader([]), FixedReader([]), neural_weight=2)


def _hit(text: str = TEXT, rank: int = 1) -> Hit:
    return Hit(Passage("a.txt", 0, len(text), text), "a", 1.0, rank)


def test_the_span_model_reads_only_the_first_passages() -> None:
    class Counting(FixedReader):
        def read(self, question: str, hits: Sequence[Hit]) -> list[Answer]:
            self.seen = len(hits)
            return []

    neural, heuristic = Counting([]), Counting([])
    hits = [_hit(rank=i + 1) for i in range(6)]
    HybridReader(neural, heuristic, neural_passages=2).read("Who?", hits)
    assert (neural.seen, heuristic.seen) == (2, 6)
    with pytest.raises(ValueError, match="neural_passages must be >= 1, got 0"):
        HybridReader(neural, heuristic, neural_passages=0)


def test_the_span_models_mass_on_overlapping_spans_pools_and_scattered_mass_does_not() -> None:
    # The span model splits its probability between nested variants of one answer: the pooled
    # support of each variant counts its neighbours' mass in proportion to the words they share.
    neural = FixedReader(
        [_answer("Oumar Diaby, 50", 0.3), _answer("Oumar Diaby", 0.3), _answer("Harim", 0.3)]
    )
    answers = HybridReader(neural, FixedReader([])).read("Who leads the camp?", [])
    by_text = {a.text: a.score for a in answers}
    assert by_text["Oumar Diaby"] == pytest.approx(0.5 * (0.3 + 0.3 * 0.8))
    assert by_text["Oumar Diaby, 50"] == pytest.approx(0.5 * (0.3 + 0.3 * 0.8))
    assert by_text["Harim"] == pytest.approx(0.5 * 0.3)  # no shared words, no borrowed mass
    assert [a.text for a in answers][-1] == "Harim"
    # Support is a probability mass: capped at 1 however many variants share the words.
    many = FixedReader([_answer("Oumar Diaby", 0.9), _answer("Oumar Diaby, 50", 0.9)])
    assert HybridReader(many, FixedReader([]), neural_weight=1.0).read("Who?", [])[0].score == 1.0


ALIASED = "Oumar Diaby, alias Omar Omsen, leads the camp. Government forces accused Diaby of kidnapping."


def _span_of(passage: str, text: str, score: float) -> Answer:
    start = passage.index(text)
    return Answer("q", text, score, "a.txt", start, start + len(text))


def _aliased(text: str, score: float) -> Answer:
    return _span_of(ALIASED, text, score)


def test_an_answer_naming_the_questions_subject_by_another_name_is_discounted() -> None:
    neural = FixedReader([_aliased("Omar Omsen", 0.6), _aliased("Government forces", 0.3)])
    heuristic = FixedReader([_aliased("Government forces", 0.8)])
    reader = HybridReader(neural, heuristic)
    answers = reader.read("Who accused Diaby of kidnapping?", [_hit(ALIASED)])
    assert [a.text for a in answers] == ["Government forces", "Omar Omsen"]
    assert answers[1].score == pytest.approx(0.5 * 0.6 * REPEAT_SHARE)
    # Asked for the other name, it is the answer; and without the alias in the passages, the
    # reader has no reason to doubt it.
    asked = reader.read("What alias is Diaby known by?", [_hit(ALIASED)])
    assert {a.text: a.score for a in asked}["Omar Omsen"] == pytest.approx(0.5 * 0.6)
    unlinked = reader.read("Who accused Diaby of kidnapping?", [_hit("Omar Omsen leads the camp.")])
    assert {a.text: a.score for a in unlinked}["Omar Omsen"] == pytest.approx(0.5 * 0.6)


STATEMENT = "General Ghassan Bakir accused Diaby of using civilians as human shields."


def _said(text: str, score: float) -> Answer:
    return _span_of(STATEMENT, text, score)


def test_part_of_the_subjects_name_in_its_passage_is_discounted_too() -> None:
    neural = FixedReader([_said("Ghassan", 0.6), _said("civilians", 0.4)])
    reader = HybridReader(neural, FixedReader([]))
    asked = "Who did General Bakir say Diaby was using as human shields?"
    answers = reader.read(asked, [_hit(STATEMENT)])
    assert [a.text for a in answers] == ["civilians", "Ghassan"]
    assert answers[1].score == pytest.approx(0.5 * 0.6 * REPEAT_SHARE)
    # Asked for the first name, it is the answer; and a name the question does not use is not
    # discounted for being part of a longer one.
    first = reader.read("What is General Bakir's first name?", [_hit(STATEMENT)])
    assert first[0].text == "Ghassan" and first[0].score == pytest.approx(0.5 * 0.6)
    other = reader.read("Who accused Diaby?", [_hit(STATEMENT)])
    assert other[0].text == "Ghassan" and other[0].score == pytest.approx(0.5 * 0.6)
    # Without the passage that holds it, the answer is judged by its own words.
    assert reader.read(asked, [])[0].text == "Ghassan"


def test_a_count_is_never_part_of_a_name() -> None:
    text = "Six Chris Paterson penalties gave Scotland the win."
    six = _span_of(text, "Six", 0.6)
    answers = HybridReader(FixedReader([six]), FixedReader([])).read(
        "How many penalties did Chris Paterson kick?", [_hit(text)]
    )
    assert answers[0].text == "Six" and answers[0].score == pytest.approx(0.5 * 0.6)
