from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.squad import SquadSet, load_squad, sample_questions

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
DEV = SHARED / "squad-v1.1-dev" / "dev-v1.1.json.zip"
TRAIN = SHARED / "squad-v1.1-train" / "train-v1.1.rebuilt.json.gz"

TINY = {
    "version": "1.1",
    "data": [
        {
            "title": "Caf%C3%A9_Culture",
            "paragraphs": [
                {
                    "context": "Coffee came first.",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "What came first?",
                            "answers": [
                                {"text": "Coffee", "answer_start": 0},
                                {"text": "Coffee", "answer_start": 0},
                            ],
                        }
                    ],
                },
                {
                    "context": "Tea came in 1650.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "When did tea come?",
                            "answers": [{"text": "1650", "answer_start": 12}],
                        }
                    ],
                },
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def dev() -> SquadSet:
    if not DEV.is_file():
        pytest.skip(f"{DEV} not present")
    return load_squad(DEV)


def test_tiny_file_builds_documents_with_paragraph_offsets(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json.gz"
    path.write_bytes(gzip.compress(json.dumps(TINY).encode()))
    squad = load_squad(path)
    (doc,) = squad.documents
    assert doc.doc_id == "Caf%C3%A9_Culture"
    assert doc.title == "Café Culture"
    assert doc.text == "Café Culture\n\nCoffee came first.\n\nTea came in 1650."
    assert [doc.text[s:e] for s, e in doc.paragraph_spans] == [
        "Coffee came first.",
        "Tea came in 1650.",
    ]
    q2, q1 = squad.questions
    assert (q1.id, q1.paragraph_index, q1.answers, q1.answer_starts) == ("q1", 1, ("1650",), (12,))
    assert q2.answers == ("Coffee", "Coffee")
    assert q2.as_question().answers == ("Coffee",)
    assert q2.as_question().doc_id == "Caf%C3%A9_Culture"


def test_plain_json_loads_too(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    assert len(load_squad(path).questions) == 2


def test_missing_and_malformed_files_raise_rag_error(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="not found"):
        load_squad(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RagError, match="cannot read"):
        load_squad(bad)
    bad.write_text(json.dumps({"data": [{"title": "T"}]}))
    with pytest.raises(RagError, match="paragraphs"):
        load_squad(bad)
    bad.write_text("[]")
    with pytest.raises(RagError, match="no 'data' list"):
        load_squad(bad)


def test_sample_is_seeded_and_order_independent(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    questions = load_squad(path).questions
    assert sample_questions(questions, 1, seed=3) == sample_questions(questions[::-1], 1, seed=3)
    assert sample_questions(questions, 0) == []
    with pytest.raises(ValueError, match="got 3"):
        sample_questions(questions, 3)


def test_dev_set_counts(dev: SquadSet) -> None:
    assert len(dev.documents) == 48
    assert sum(len(d.paragraph_spans) for d in dev.documents) == 2067
    assert len(dev.questions) == 10570
    assert len({q.id for q in dev.questions}) == 10570
    assert sum(len(q.answers) for q in dev.questions) == 34726


def test_dev_offsets_point_at_answers_and_paragraphs(dev: SquadSet) -> None:
    docs = {d.doc_id: d for d in dev.documents}
    for q in dev.questions:
        for text, start in zip(q.answers, q.answer_starts, strict=True):
            assert q.paragraph_text[start : start + len(text)] == text, q.id
        s, e = docs[q.doc_id].paragraph_spans[q.paragraph_index]
        assert docs[q.doc_id].text[s:e] == q.paragraph_text


def test_dev_sample_is_reproducible(dev: SquadSet) -> None:
    first = [q.id for q in sample_questions(dev.questions, 50, seed=7)]
    assert first == [q.id for q in sample_questions(dev.questions, 50, seed=7)]
    assert first != [q.id for q in sample_questions(dev.questions, 50, seed=8)]


def test_rebuilt_train_set_loads_with_same_function() -> None:
    if not TRAIN.is_file():
        pytest.skip(f"{TRAIN} not present")
    train = load_squad(TRAIN)
    assert len(train.documents) == 442
    assert sum(len(d.paragraph_spans) for d in train.documents) == 18896
    assert len(train.questions) == 87599


def test_unanswerable_twin_cuts_the_answer_sentence_and_only_makes_true_negatives() -> None:
    from rag.squad import SquadQuestion, unanswerable_twin

    para = "The bridge spans the river. It opened in 1932 to traffic. Its towers are red."
    q = SquadQuestion("q", "When did it open?", ("1932",), "d", 0, para, (para.index("1932"),))
    assert unanswerable_twin(q) == "The bridge spans the river. Its towers are red."
    drifted = SquadQuestion("q", "When did it open?", ("1932",), "d", 0, para, (3,))  # a drifted offset
    assert unanswerable_twin(drifted) == "The bridge spans the river. Its towers are red."
    echo = "It opened in 1932. The year 1932 was busy."
    assert unanswerable_twin(SquadQuestion("q", "When?", ("1932",), "d", 0, echo, (13,))) is None
    alone = "It opened in 1932."
    assert unanswerable_twin(SquadQuestion("q", "When?", ("1932",), "d", 0, alone, (13,))) is None


def test_reader_alone_measures_how_well_the_score_tells_answering_from_cut_paragraphs() -> None:
    from types import SimpleNamespace

    from rag.answer import Answer
    from rag.eval_runner import reader_alone
    from rag.squad import SquadQuestion

    class Confident:  # answers "1932" with 0.9 where it is written, else "red" with 0.2
        def read(self, question: str, hits: list) -> list[Answer]:
            text = hits[0].passage.text
            found = "1932" if "1932" in text else "red"
            at = text.index(found)
            score = 0.9 if found == "1932" else 0.2
            return [Answer(question, found, score, doc_id="d", start=at, end=at + len(found))]

    para = "The bridge spans the river. It opened in 1932 to traffic. Its towers are red."
    q = SquadQuestion("q", "When did it open?", ("1932",), "d", 0, para, (para.index("1932"),))
    result = reader_alone(SimpleNamespace(reader=Confident()), [q, q])  # type: ignore[arg-type]
    assert result["f1"] == 1.0 and result["no_answer_pairs"] == 2 and result["no_answer_auc"] == 1.0
