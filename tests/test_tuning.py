from __future__ import annotations

import pytest

from rag.tuning import best_fusion, choose_threshold


def _record(score: float, prediction: str, answers: list[str]) -> dict:  # type: ignore[type-arg]
    return {"score": score, "top_prediction": prediction, "answers": answers}


def test_choose_threshold_is_the_lowest_that_abstains_on_enough_unanswerable() -> None:
    records = [
        _record(0.9, "Anna", ["Anna"]),
        _record(0.5, "Oslo", ["Oslo"]),
        _record(0.2, "wrong", ["Bergen"]),
        _record(0.6, "made up", []),
        _record(0.3, "made up", []),
        _record(0.1, "made up", []),
        _record(0.05, "made up", []),
    ]
    chosen = choose_threshold(records, target=0.75)
    assert chosen is not None
    assert chosen["threshold"] == 0.5  # 0.3 leaves 2 of 4 answered; 0.5 leaves only the 0.6 one
    assert chosen["unanswerable_abstained"] == 0.75
    assert chosen["f1_answerable"] == pytest.approx(2 / 3)
    assert choose_threshold(records, target=1.0)["threshold"] == 0.9  # type: ignore[index]


def test_the_chosen_threshold_answers_the_score_it_came_from() -> None:
    # 0.3459 rounds up to 0.346, which would abstain on it; cut to 0.345 it stays answered.
    records = [
        _record(0.3459, "50", ["50"]),
        _record(0.3432, "made up", []),
        _record(0.5, "made up", []),
        _record(0.1, "made up", []),
    ]
    chosen = choose_threshold(records, target=0.6)
    assert chosen is not None
    assert chosen["threshold"] == 0.345
    assert chosen["f1_answerable"] == 1.0


def test_choose_threshold_needs_both_kinds_of_question() -> None:
    assert choose_threshold([_record(0.5, "x", ["x"])]) is None
    assert choose_threshold([_record(0.5, "x", [])]) is None


def test_best_fusion_prefers_hit_at_3_then_mrr_then_the_middle_weight() -> None:
    rows = [
        {"fusion": "linear", "keyword_weight": 0.2, "hit@3": 0.9, "mrr": 0.8},
        {"fusion": "linear", "keyword_weight": 0.4, "hit@3": 0.95, "mrr": 0.8},
        {"fusion": "linear", "keyword_weight": 0.9, "hit@3": 0.95, "mrr": 0.8},
    ]
    assert best_fusion(rows)["keyword_weight"] == 0.4
