from __future__ import annotations

from typing import Any

from rag.compare import best_reader, compare_readers, render_readers


def record(i: int, answers: list[str], top: str, score: float) -> dict[str, Any]:
    return {
        "id": f"q{i}", "question": "?", "answers": answers, "prediction": top, "top_prediction": top,
        "score": score, "abstained": False, "em": 0.0, "f1": 0.0, "rank": 1, "latency_ms": 10.0,
    }  # fmt: skip


def fixed_set(right: int) -> list[dict[str, Any]]:
    """40 answerable questions, `right` of them answered right, and 4 unanswerable ones."""
    answerable = [record(i, ["Oslo"], "Oslo" if i < right else "Rome", 0.9) for i in range(40)]
    return answerable + [record(40 + i, [], "Bergen", 0.1) for i in range(4)]


def test_compare_readers_picks_the_best_and_pairs_it_with_each_other_reader() -> None:
    records = {"good": fixed_set(36), "fair": fixed_set(30), "same": fixed_set(36)}
    section = compare_readers(None, [], list(records), seed_records=records, log=lambda _: None)  # type: ignore[arg-type]
    assert section["best"] == "good"  # the first of the best (a tie with "same")
    assert section["readers"]["good"]["seed"]["f1"] == 0.9
    fair = section["best_versus"]["fair"]
    assert fair["questions"] == 40
    assert abs(fair["difference"] - 0.15) < 1e-9  # 6 questions of 40
    low, high = fair["interval"]
    assert 0.0 < low < 0.15 < high  # better on every differing question: the interval excludes 0
    assert section["best_versus"]["same"] == {"questions": 40, "difference": 0.0, "interval": [0.0, 0.0]}


def test_render_readers_states_the_paired_differences() -> None:
    records = {"hybrid": fixed_set(36), "neural": fixed_set(30)}
    section = compare_readers(None, [], list(records), seed_records=records, log=lambda _: None)  # type: ignore[arg-type]
    text = "\n".join(render_readers(section, "hybrid"))
    assert "| hybrid **(best)** |" in text
    assert "hybrid scores F1 +15.0 points against neural (95% CI +" in text
    assert "40 answerable questions" in text


def test_best_reader_averages_the_fixed_set_and_squad() -> None:
    rows = {
        "a": {"seed": {"f1": 0.8}, "squad_alone": {"f1": 0.5}},
        "b": {"seed": {"f1": 0.6}, "squad_alone": {"f1": 0.8}},
    }
    assert best_reader(rows) == "b"  # 0.70 against 0.65
