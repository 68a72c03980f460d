from __future__ import annotations

from typing import Any

import pytest

from rag.confidence import described, f1_best_shown, f1_interval, f1_never_abstaining
from rag.evaluation import summarize


def record(
    i: int, answers: list[str], f1: float, *, abstained: bool = False, top: str | None = None
) -> dict[str, Any]:
    prediction = None if abstained else (top or "x")
    return {
        "id": f"q{i}", "question": "?", "answers": answers, "prediction": prediction, "top_prediction": top,
        "score": 0.5, "abstained": abstained, "em": float(f1 == 1.0), "f1": f1, "rank": 1, "latency_ms": 10.0,
    }  # fmt: skip


def test_f1_never_abstaining_scores_the_answer_held_back() -> None:
    held_back = record(0, ["Paris"], 0.0, abstained=True, top="Paris.")
    wrong = record(1, ["Rome"], 0.0, top="Milan")
    records = [held_back, wrong, record(2, [], 0.0, abstained=True)]  # unanswerable: not counted
    assert summarize(records)["f1"] == 0.0
    assert f1_never_abstaining(records) == pytest.approx(0.5)  # (1 + 0) / 2
    assert f1_never_abstaining([record(0, [], 0.0)]) is None


def test_f1_best_shown_picks_the_best_of_the_first_three_candidates() -> None:
    third = {**record(0, ["Paris"], 0.0, top="Lyon"), "candidates": ["Lyon", "Nice", "Paris"]}
    fourth = {**record(1, ["Rome"], 0.0, top="Milan"), "candidates": ["Milan", "Turin", "Pisa", "Rome"]}
    none_shown = {**record(2, ["Oslo"], 0.0, abstained=True), "candidates": []}
    unanswerable = {**record(3, [], 0.0, top="Bern"), "candidates": ["Bern"]}  # not counted
    assert f1_best_shown([third, fourth, none_shown, unanswerable]) == pytest.approx(1 / 3)
    assert f1_best_shown([fourth], shown=4) == 1.0
    assert f1_best_shown([record(0, ["Paris"], 1.0, top="Paris")]) is None  # records from before
    assert f1_best_shown([unanswerable]) is None


def test_the_interval_holds_the_measured_f1_and_narrows_with_more_questions() -> None:
    # 3 of 4 right: F1 0.75, on 20 questions and on 200
    small = [record(i, ["a"], float(i % 4 != 0)) for i in range(20)]
    large = [record(i, ["a"], float(i % 4 != 0)) for i in range(200)]
    low, high = f1_interval(small) or (0.0, 0.0)
    assert low < summarize(small)["f1"] == 0.75 < high
    large_low, large_high = f1_interval(large) or (0.0, 0.0)
    assert large_low < 0.75 < large_high
    assert large_high - large_low < (high - low) / 2  # about 1/sqrt(10) as wide
    assert 0.6 < large_low and large_high < 0.85


def test_the_interval_counts_an_abstention_as_zero_and_is_the_same_on_every_run() -> None:
    records = [record(i, ["a"], 1.0, abstained=i < 10) for i in range(40)]  # the record's f1 is ignored
    low, high = f1_interval(records) or (1.0, 1.0)
    assert low < 0.75 < high < 0.9
    assert f1_interval(records) == (low, high)


def test_the_interval_of_no_spread_or_too_few_questions() -> None:
    assert f1_interval([record(i, ["a"], 1.0) for i in range(5)]) == (1.0, 1.0)
    assert f1_interval([record(0, ["a"], 1.0), record(1, [], 0.0)]) is None  # one answerable question
    with pytest.raises(ValueError, match="level must be between 0 and 1, got 1.5"):
        f1_interval([], level=1.5)


def test_described_adds_the_readings_and_drops_the_rows() -> None:
    summary = summarize([record(i, ["a"], float(i % 2), top="a" if i % 2 else "b") for i in range(10)])
    got = described(summary)
    assert "per_question" not in got
    assert got["f1"] == 0.5
    assert got["f1_never_abstaining"] == 0.5
    assert got["f1_best_shown"] is None  # these records list no candidates
    low, high = got["f1_interval"]
    assert low < 0.5 < high
    assert got["f1_interval_level"] == 0.95
