"""Choose retrieval and abstention settings from data, not by guess."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rag.evaluation import Question, contains_answer, f1
from rag.pipeline import QAPipeline
from rag.retrieval import HybridRetriever

KS = (1, 3, 5, 10)
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


def sweep_fusion(
    qa: QAPipeline,
    questions: Sequence[Question],
    *,
    weights: Sequence[float] = WEIGHTS,
    methods: Sequence[str] = ("linear", "rrf"),
) -> list[dict[str, Any]]:
    """hit@k and MRR of every (fusion method, keyword weight) on the answerable questions.

    Weight 0 is dense retrieval alone and weight 1 is BM25 alone, so the table also shows
    whether the fusion beats its better half.
    """
    answerable = [q for q in questions if q.answers]
    vectors = qa.encoder.encode([q.question for q in answerable])
    rows = []
    for method in methods:
        for weight in weights:
            retriever = HybridRetriever(
                qa.index, qa.encoder, fusion=method, keyword_weight=weight, candidates=qa.settings.candidates
            )
            ranks = []
            for question, vector in zip(answerable, vectors, strict=True):
                hits = retriever.retrieve_encoded(question.question, vector[None, :], max(KS))
                ranks.append(
                    next((h.rank for h in hits if contains_answer(h.passage.text, question.answers)), None)
                )
            rows.append(_row(method, weight, ranks))
    return rows


def _row(method: str, weight: float, ranks: list[int | None]) -> dict[str, Any]:
    n = len(ranks) or 1
    row: dict[str, Any] = {"fusion": method, "keyword_weight": weight}
    for k in KS:
        row[f"hit@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
    row["mrr"] = sum(1 / r for r in ranks if r is not None) / n
    return row


def best_fusion(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Highest hit@3, then MRR; ties go to the weight nearest 0.5 (the least extreme)."""
    return max(
        rows, key=lambda r: (round(r["hit@3"], 6), round(r["mrr"], 6), -abs(r["keyword_weight"] - 0.5))
    )


ABSTENTION_TARGET = 0.75  # the product's promise: at least 3 of 4 unanswerable questions get "don't say"


def choose_threshold(
    records: Sequence[dict[str, Any]], target: float = ABSTENTION_TARGET
) -> dict[str, Any] | None:
    """The lowest abstention threshold at which at least `target` of the unanswerable questions are
    abstained: F1 on answerable questions is as high as that policy allows.

    Records need `score`, `top_prediction`, `answers` (as `rag eval` writes them). Also returns the
    F1 on answerable questions (abstentions count 0) and the abstained share at that threshold.
    None when the set has no answerable or no unanswerable question.
    """
    answerable = [r for r in records if r["answers"]]
    unanswerable = [r for r in records if not r["answers"]]
    if not answerable or not unanswerable:
        return None
    # Candidates are the scores cut (not rounded) to 3 decimals: a score rounded up would make a
    # threshold that abstains on the very answer it came from.
    for threshold in sorted({math.floor(float(r["score"] or 0.0) * 1000) / 1000 for r in records} | {0.0}):
        abstained = sum(1 for r in unanswerable if not _answers(r, threshold)) / len(unanswerable)
        if abstained >= target:
            f1_answerable = sum(
                f1(r["top_prediction"], r["answers"]) for r in answerable if _answers(r, threshold)
            )
            return {
                "threshold": threshold,
                "target": target,
                "unanswerable_abstained": abstained,
                "f1_answerable": f1_answerable / len(answerable),
            }
    return None


def _answers(record: dict[str, Any], threshold: float) -> bool:
    return bool(record.get("top_prediction")) and float(record["score"] or 0.0) >= threshold
