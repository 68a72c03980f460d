"""rag.report: the held-out seed questions get their own section, one row per batch."""

from __future__ import annotations

from typing import Any

from rag.evaluation import summarize
from rag.report import _heldout_section, heldout_summary


def record(qid: str, answers: list[str], prediction: str | None) -> dict[str, Any]:
    right = prediction is not None and prediction in answers
    return {
        "id": qid, "question": "?", "answers": answers, "prediction": prediction,
        "top_prediction": prediction or "Rome", "score": 0.5 if prediction else 0.1,
        "abstained": prediction is None, "em": float(right), "f1": float(right), "rank": 1,
        "latency_ms": 10.0, "candidates": [prediction or "Rome", "Oslo"],
    }  # fmt: skip


def test_heldout_summary_splits_by_id_prefix_and_renders_one_row_per_batch() -> None:
    held = [record(f"held-{i:03d}", ["Oslo"], "Oslo") for i in range(10)]  # all right
    blind = [record(f"blind-{i:03d}", ["Oslo"], None if i < 5 else "Rome") for i in range(10)]  # none right
    blind.append(record("blind-010", [], None))  # an unanswerable one, abstained
    h = heldout_summary(summarize(held + blind))
    assert set(h["batches"]) == {"held", "blind"}
    assert h["batches"]["held"]["f1"] == 1.0
    assert h["batches"]["blind"]["f1"] == 0.0
    assert h["batches"]["blind"]["n_questions"] == 11 and h["batches"]["blind"]["n_answerable"] == 10
    assert h["summary"]["f1"] == 0.5
    text = "\n".join(_heldout_section(h))
    assert "seeds/heldout_questions.jsonl" in text
    assert "| `held-` | 10 (10) | 100.0% |" in text and text.count("| 0/0 |") == 1
    assert "| `blind-` | 11 (10) | 0.0% |" in text and "| 1/1 |" in text
    # Oslo is the second candidate of every blind question: right, had it been chosen
    assert h["batches"]["blind"]["f1_best_shown"] == 1.0 and "| 100.0% | 1/1 |" in text
    assert "best of the first 3 candidates" in text
