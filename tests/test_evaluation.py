from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from rag.errors import RagError
from rag.evaluation import (
    Question,
    contains_answer,
    exact_match,
    f1,
    format_summary,
    load_question_file,
    load_questions,
    load_span_questions,
    normalize_answer,
    score_record,
    summarize,
    threshold_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
SEED_ARTICLE = ROOT / "seeds" / "000_cf52fe43d28daad2.txt"
SEED_QUESTIONS = ROOT / "seeds" / "questions.jsonl"
SEED_HELDOUT = ROOT / "seeds" / "heldout_questions.jsonl"
BBC_QUESTIONS = ROOT / "benchmarks" / "bbc_questions.jsonl"
BBC_DATA = ROOT.parent / "shared" / "datasets" / "bbc-news"


# --- normalization and metrics ------------------------------------------------------------------


def test_normalize_drops_case_articles_punctuation_and_spaces() -> None:
    assert normalize_answer("  The  Islamic State   group. ") == "islamic state group"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("Theatre") == "theatre"  # "the" only as a whole word


def test_normalize_treats_unicode_punctuation_like_ascii() -> None:
    assert normalize_answer("Oumar Diaby’s son") == normalize_answer("Oumar Diaby's son")
    assert normalize_answer("“fifty”") == "fifty"
    assert normalize_answer("after midnight (…)") == "after midnight"
    assert normalize_answer("Franco–Senegalese") == normalize_answer("Franco-Senegalese")


def test_exact_match() -> None:
    assert exact_match("the United Kingdom.", ["United Kingdom"]) == 1.0
    assert exact_match("Diaby’s son", ["Oumar Diaby's son", "Diaby's son"]) == 1.0
    assert exact_match("Kingdom", ["United Kingdom"]) == 0.0


def test_f1_hand_computed() -> None:
    # pred {islamic, state}, gold {islamic, state, group}: P = 1, R = 2/3, F1 = 0.8
    assert f1("the Islamic State", ["Islamic State group"]) == pytest.approx(0.8)
    # repeated tokens are counted with multiplicity: common {y, y}, P = 2/4, R = 2/3 -> 4/7
    assert f1("x y y z", ["y y y"]) == pytest.approx(4 / 7)
    assert f1("Bakir", ["Ghassan"]) == 0.0


def test_metrics_take_the_max_over_golds() -> None:
    # vs "Oumar Diaby": P = 1, R = 1/2 -> 2/3; vs "Omar Omsen": 0
    assert f1("Diaby", ["Oumar Diaby", "Omar Omsen"]) == pytest.approx(2 / 3)
    assert f1("Omar Omsen", ["Oumar Diaby", "Omar Omsen"]) == 1.0
    assert exact_match("omar omsen", ["Oumar Diaby", "Omar Omsen"]) == 1.0


def test_none_prediction_and_unanswerable_questions() -> None:
    assert exact_match(None, ["Paris"]) == 0.0
    assert f1(None, ["Paris"]) == 0.0
    assert exact_match(None, []) == 1.0  # abstaining on an unanswerable question is right
    assert f1("Paris", []) == 0.0
    assert f1("the", ["a"]) == 1.0  # both normalize to nothing


def test_contains_answer_respects_token_boundaries() -> None:
    assert contains_answer("Earlier, Oumar Diaby’s son, a jihadist", ["Oumar Diaby"])
    assert contains_answer("based in the United Kingdom but", ["the united kingdom"])
    assert contains_answer("Hayat Tahrir al-Sham (HTS), which", ["Hayat Tahrir al-Sham"])
    assert not contains_answer("General Ghassan Bakiri said", ["Bakir"])
    assert not contains_answer("some text", [])
    assert not contains_answer("the text", ["the"])  # a gold that normalizes to nothing


# --- records, summary, sweep --------------------------------------------------------------------


def record(
    id: str,
    answers: list[str],
    abstained: bool,
    em: float = 0.0,
    f1: float = 0.0,
    rank: int | None = None,
    latency_ms: float | None = None,
    prediction: str | None = None,
    score: float | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "question": f"question {id}?",
        "answers": answers,
        "prediction": prediction,
        "top_prediction": prediction,
        "score": score,
        "abstained": abstained,
        "em": em,
        "f1": f1,
        "rank": rank,
        "latency_ms": latency_ms,
    }


HAND_RECORDS = [
    record("r1", ["Paris"], False, em=1.0, f1=1.0, rank=1, latency_ms=10, prediction="Paris"),
    record("r2", ["Rome"], False, em=0.0, f1=0.5, rank=3, latency_ms=20, prediction="in Rome x"),
    record("r3", ["Oslo"], True, rank=None, latency_ms=30),
    record("r4", [], True, latency_ms=40),
    record("r5", [], False, latency_ms=50, prediction="Berlin"),
]


def test_summarize_hand_computed() -> None:
    summary = summarize(HAND_RECORDS)
    assert set(summary) == {
        "n_questions", "n_answerable", "exact_match", "f1", "hit_at", "mrr",
        "no_answer", "false_abstention_rate", "latency_ms", "per_question",
    }  # fmt: skip
    assert summary["n_questions"] == 5
    assert summary["n_answerable"] == 3
    assert summary["exact_match"] == pytest.approx(1 / 3)
    assert summary["f1"] == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3
    assert summary["hit_at"] == pytest.approx({"1": 1 / 3, "3": 2 / 3, "5": 2 / 3, "10": 2 / 3})
    assert summary["mrr"] == pytest.approx(4 / 9)  # (1 + 1/3 + 0) / 3
    assert summary["no_answer"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert summary["false_abstention_rate"] == pytest.approx(1 / 3)
    # numpy linear interpolation: p95 sits at index 3.8 of [10, 20, 30, 40, 50]
    assert summary["latency_ms"] == pytest.approx({"p50": 30.0, "p95": 48.0})
    assert [r["id"] for r in summary["per_question"]] == ["r1", "r2", "r3", "r4", "r5"]


def test_summarize_scores_an_abstention_zero_even_if_the_record_says_otherwise() -> None:
    summary = summarize([record("a", ["Paris"], True, em=1.0, f1=1.0, rank=1)])
    assert summary["exact_match"] == 0.0
    assert summary["f1"] == 0.0


def test_summarize_empty_set_gives_none_not_zero() -> None:
    summary = summarize([])
    assert summary["n_questions"] == 0
    assert summary["exact_match"] is None
    assert summary["f1"] is None
    assert summary["hit_at"] == {"1": None, "3": None, "5": None, "10": None}
    assert summary["mrr"] is None
    assert summary["no_answer"] == {"n": 0, "correct": 0, "accuracy": None}
    assert summary["false_abstention_rate"] is None
    assert summary["latency_ms"] == {"p50": None, "p95": None}
    assert summary["per_question"] == []


def test_summarize_only_unanswerable_questions() -> None:
    summary = summarize([HAND_RECORDS[3], HAND_RECORDS[4]])
    assert summary["n_answerable"] == 0
    assert summary["exact_match"] is None
    assert summary["mrr"] is None
    assert summary["no_answer"] == {"n": 2, "correct": 1, "accuracy": 0.5}


def test_summarize_rejects_records_missing_keys() -> None:
    bad = dict(HAND_RECORDS[0])
    del bad["rank"]
    with pytest.raises(ValueError, match=r"'r1'.*\['rank'\]"):
        summarize([bad])


def test_score_record_ranks_the_first_passage_holding_a_gold_answer() -> None:
    question = Question("q", "Who is Omsen?", ("Oumar Diaby",), type="who")
    passages = ["The camp is near Harim.", "Earlier, Oumar Diaby’s son said", "Oumar Diaby"]
    scored = score_record(question, "Oumar Diaby", 0.9, False, passages, 12.5)
    assert (scored["em"], scored["f1"], scored["rank"]) == (1.0, 1.0, 2)
    assert scored["prediction"] == scored["top_prediction"] == "Oumar Diaby"
    abstained = score_record(question, "Diaby", 0.1, True, passages, None)
    assert (abstained["prediction"], abstained["top_prediction"]) == (None, "Diaby")
    assert (abstained["em"], abstained["f1"]) == (0.0, 0.0)
    assert score_record(question, None, None, True, ["no answer here"], 1.0)["rank"] is None


def test_score_record_unanswerable_has_no_rank() -> None:
    question = Question("q", "Who?", ())
    scored = score_record(question, None, 0.2, True, ["Oumar Diaby"], 3.0)
    assert scored["rank"] is None
    assert scored["em"] == 1.0
    assert set(scored) >= {"id", "question", "answers", "prediction", "score", "abstained"}


SWEEP_RECORDS = [
    record("a", ["Paris"], False, prediction="Paris", score=0.9),
    record("b", ["Rome"], False, prediction="Milan", score=0.6),
    record("c", [], False, prediction="foo", score=0.4),
    record("d", [], False, prediction="bar", score=0.2),
    record("e", ["Oslo"], True, prediction=None, score=None),  # the reader found nothing
]


def test_threshold_sweep_hand_computed() -> None:
    rows = threshold_sweep(SWEEP_RECORDS)
    assert [row["threshold"] for row in rows] == [0.2, 0.4, 0.6, 0.9]
    by_t = {row["threshold"]: row for row in rows}
    assert by_t[0.9]["coverage"] == pytest.approx(0.2)
    assert by_t[0.9]["answered_em"] == 1.0
    assert by_t[0.9]["accuracy"] == pytest.approx(0.6)  # a right + c, d abstained = 3 / 5
    assert by_t[0.6]["answered_em"] == pytest.approx(0.5)
    assert by_t[0.6]["accuracy"] == pytest.approx(0.6)
    assert by_t[0.4]["accuracy"] == pytest.approx(0.4)
    assert by_t[0.2]["coverage"] == pytest.approx(0.8)
    assert by_t[0.2]["answered_em"] == pytest.approx(0.25)
    assert by_t[0.2]["accuracy"] == pytest.approx(0.2)


def test_threshold_sweep_merges_equal_scores() -> None:
    records = [
        record("a", ["x"], False, prediction="x", score=0.5),
        record("b", ["y"], False, prediction="z", score=0.5),
    ]
    (row,) = threshold_sweep(records)
    assert (row["n_answered"], row["answered_em"], row["accuracy"]) == (2, 0.5, 0.5)


def test_format_summary_shows_metrics_and_worst_questions() -> None:
    text = format_summary(summarize(HAND_RECORDS), worst=2)
    assert "exact match        33.3%" in text
    assert "1/2 abstained" in text
    assert "worst 2 of 3 failures" in text
    assert "r3" in text and "r5" in text and "r2 " not in text
    assert "n/a" in format_summary(summarize([]))


# --- question files -----------------------------------------------------------------------------


def test_load_questions_reports_malformed_lines(tmp_path: Path) -> None:
    lines = [
        '{"id": "q1", "question": "Who?", "answers": ["Ann"], "type": "who"}',
        "",
        "not json",
        "[1, 2]",
        '{"id": "q2", "question": "   ", "answers": []}',
        '{"id": "q1", "question": "Again?", "answers": []}',
        '{"id": "q3", "question": "Where?", "answers": "Paris"}',
        '{"id": 5, "question": "When?", "answers": []}',
        '{"id": "q4", "question": "What?", "answers": ["a"], "type": 3}',
        '{"id": "q5", "question": "Which?", "answers": [], "note": "not stated"}',
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load = load_questions(path)
    assert [q.id for q in load.questions] == ["q1", "q5"]
    assert load.questions[0] == Question("q1", "Who?", ("Ann",), type="who")
    assert not load.questions[1].answerable
    assert [p.split(":")[0] for p in load.problems] == [f"line {n}" for n in (3, 4, 5, 6, 7, 8, 9)]
    assert load.problems[0] == "line 3: invalid JSON (Expecting value): 'not json'"
    assert "duplicate id 'q1' (first on line 1)" in load.problems[3]
    assert "'answers' must be a list" in load.problems[4] and "'Paris'" in load.problems[4]
    assert "'id' must be a non-blank string, got 5" in load.problems[5]


def test_load_questions_missing_file_raises_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RagError) as info:
        load_questions(tmp_path / "missing.jsonl")
    assert "\n" not in str(info.value) and "missing.jsonl" in str(info.value)
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"id": "q", "question": "\xa3?", "answers": []}')
    with pytest.raises(RagError, match="not UTF-8"):
        load_questions(bad)


def test_load_span_questions_resolves_offsets(tmp_path: Path) -> None:
    (tmp_path / "corpus" / "sport").mkdir(parents=True)
    (tmp_path / "corpus" / "sport" / "1.txt").write_bytes("Cost: \xa35m\nby Ann".encode("latin-1"))
    rows = [
        {"id": "s1", "question": "Cost?", "doc_id": "sport/1.txt", "answer_spans": [[6, 9]]},
        {"id": "s2", "question": "Who?", "doc_id": "sport/1.txt", "answer_spans": [[13, 16]]},
        {"id": "s3", "question": "Bad?", "doc_id": "sport/1.txt", "answer_spans": [[5, 99]]},
        {"id": "s4", "question": "Gone?", "doc_id": "sport/2.txt", "answer_spans": [[0, 1]]},
        {"id": "s5", "question": "None?", "doc_id": "sport/1.txt", "answer_spans": []},
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    load = load_span_questions(path, tmp_path / "corpus")
    assert [(q.id, q.answers) for q in load.questions] == [
        ("s1", ("£5m",)),
        ("s2", ("Ann",)),
        ("s5", ()),
    ]
    assert load.problems[0].startswith("line 3: bad span [5, 99]")
    assert load.problems[1].startswith("line 4: document 'sport/2.txt' not found")
    with pytest.raises(RagError, match="corpus folder not found"):
        load_span_questions(path, tmp_path / "nope")
    # Every command that takes a question file reads either kind: the first question decides.
    assert load_question_file(path, tmp_path / "corpus") == load
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"id": "p", "question": "Who?", "answers": ["Ann"]}) + "\n", encoding="utf-8")
    assert load_question_file(plain, tmp_path / "corpus") == load_questions(plain)
    with pytest.raises(RagError, match="question file not found"):
        load_question_file(tmp_path / "missing.jsonl", tmp_path / "corpus")


# --- the shipped question sets ------------------------------------------------------------------


def _flat_quotes(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'")


@pytest.mark.parametrize(
    ("path", "size"), [(SEED_QUESTIONS, 70), (SEED_HELDOUT, 60)], ids=["fixed", "held-out"]
)
def test_seed_questions_load_cleanly_and_quote_the_article(path: Path, size: int) -> None:
    load = load_questions(path)
    assert load.problems == ()
    assert len(load.questions) >= size
    unanswerable = [q for q in load.questions if not q.answerable]
    assert len(unanswerable) >= size // 6
    assert all(q.type == "unanswerable" for q in unanswerable)
    article = _flat_quotes(SEED_ARTICLE.read_text(encoding="utf-8"))
    for q in load.questions:
        assert q.doc_id == SEED_ARTICLE.name
        for answer in q.answers:
            # verbatim, allowing a straight apostrophe where the article has a curly one
            assert _flat_quotes(answer) in article, (q.id, answer)
            assert len(answer.split()) <= 10, (q.id, answer)


def test_bbc_questions_store_offsets_not_text() -> None:
    for line in BBC_QUESTIONS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) == {"id", "question", "doc_id", "answer_spans", "type"}


@pytest.fixture(scope="module")
def bbc_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = BBC_DATA / "bbc.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not present")
    root = tmp_path_factory.mktemp("bbc")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root / "bbc"


def test_bbc_questions_resolve_against_the_corpus(bbc_corpus: Path) -> None:
    load = load_span_questions(BBC_QUESTIONS, bbc_corpus)
    assert load.problems == ()
    assert len(load.questions) == 120
    assert all(q.answers and all(len(a.split()) <= 6 for a in q.answers) for q in load.questions)
    assert {q.doc_id.split("/")[0] for q in load.questions if q.doc_id} == {
        "business", "entertainment", "politics", "sport", "tech",
    }  # fmt: skip
    assert len({q.doc_id for q in load.questions}) >= 100
    with (BBC_DATA / "DUPLICATES.tsv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    duplicates = {row[key].removeprefix("bbc/") for row in rows for key in ("kept", "duplicate")}
    assert not duplicates & {q.doc_id for q in load.questions}


def test_separation_auc_counts_pairs_ordered_and_ties_as_half() -> None:
    from rag.evaluation import separation_auc

    assert separation_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert separation_auc([0.1, 0.2], [0.9, 0.8]) == 0.0
    assert separation_auc([0.5], [0.5]) == 0.5
    assert separation_auc([0.9, 0.3], [0.5, 0.3]) == (1 + 1 + 0 + 0.5) / 4
    assert separation_auc([], [0.1]) is None and separation_auc([0.1], []) is None
