"""QAPipeline.answer_from_hits: the threshold, and no answer that runs across sentences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rag.answer import Answer, Citation
from rag.pipeline import PipelineSettings, QAPipeline
from rag.retrieval import Hit
from tests.conftest import FakeEncoder

TEXT = "Storm hits coast\n\nThe storm hit at dawn. Ten people fled."


def _answer(span: str, score: float) -> Answer:
    start = TEXT.index(span)
    end = start + len(span)
    cite = Citation("a.txt", "a", 0, len(TEXT), TEXT, start, end)
    return Answer("When?", span, score, "a.txt", start, end, citations=(cite,))


class FixedReader:
    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers

    def read(self, question: str, hits: Sequence[Hit]) -> list[Answer]:
        return list(self.answers)


def _use(qa: QAPipeline, reader: FixedReader) -> None:
    qa._readers[("heuristic", None)] = reader  # type: ignore[assignment]


def test_an_answer_across_sentences_is_never_given(
    seed_corpus: Path, tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    qa = QAPipeline.from_corpus(
        seed_corpus, index_dir=tmp_path / "idx", encoder=fake_encoder,
        settings=PipelineSettings(reader="heuristic", abstain_threshold=0.3),
    )  # fmt: skip
    hits = qa.retrieve("When did the storm hit?", k=2)
    across = [_answer("coast\n\nThe storm", 0.9), _answer("dawn. Ten", 0.8)]
    _use(qa, FixedReader([*across, _answer("dawn", 0.5)]))
    answer = qa.answer_from_hits("When did the storm hit?", hits)
    assert answer.text == "dawn" and answer.score == 0.5
    assert answer.alternatives == ()
    _use(qa, FixedReader([_answer("coast\n\nThe storm", 0.9), _answer("dawn", 0.2)]))
    abstained = qa.answer_from_hits("When did the storm hit?", hits)
    assert abstained.text is None and abstained.score == 0.2  # the best answer that may be given
