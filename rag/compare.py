"""Compare the readers on the same retrieval, and pick the default from the numbers.

Each reader is scored on the fixed question set end to end, at the abstention threshold its own
scores call for under the policy (`tuning.choose_threshold`), and on a SQuAD dev sample given the
gold paragraph. The default is the reader with the best mean of those two F1 scores. How far
it leads each other reader on the fixed set, question by question, is given with its interval
(rag.confidence.f1_difference): a lead whose interval holds 0 is not one this set can show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rag.confidence import LEVEL, f1_difference
from rag.eval_runner import reader_alone, run_questions
from rag.evaluation import Question, apply_threshold, summarize
from rag.pipeline import CALIBRATED_THRESHOLDS, QAPipeline
from rag.squad import SquadQuestion
from rag.tuning import choose_threshold


def compare_readers(
    seed_qa: QAPipeline,
    seed_questions: Sequence[Question],
    readers: Sequence[str],
    *,
    squad_qa: QAPipeline | None = None,
    squad_questions: Sequence[SquadQuestion] = (),
    seed_records: Mapping[str, Sequence[dict[str, Any]]] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """`seed_records` holds per-question records already measured on the fixed set, by reader
    (any threshold: scores and top predictions do not depend on it); those are not asked again."""
    rows: dict[str, Any] = {}
    answered: dict[str, list[dict[str, Any]]] = {}  # per reader: its records at its own threshold
    for name in readers:
        records = list((seed_records or {}).get(name, ()))
        if not records:
            log(f"reader {name}: fixed set ...")
            view = seed_qa.with_settings(reader=name, abstain_threshold=0.0)
            records = run_questions(view, seed_questions)["per_question"]
        chosen = choose_threshold(records)
        threshold = chosen["threshold"] if chosen else CALIBRATED_THRESHOLDS[name]
        answered[name] = apply_threshold(records, threshold)
        summary = summarize(answered[name])
        row: dict[str, Any] = {
            "threshold": threshold,
            "seed": {k: v for k, v in summary.items() if k != "per_question"},
        }
        if squad_qa is not None and squad_questions:
            log(f"reader {name}: SQuAD dev, {len(squad_questions)} gold paragraphs ...")
            row["squad_alone"] = reader_alone(squad_qa.with_settings(reader=name), squad_questions)
        rows[name] = row
    best = best_reader(rows)
    versus = {n: f1_difference(answered[best], answered[n]) for n in readers if n != best}
    return {"readers": rows, "best": best, "best_versus": versus}


def best_reader(rows: dict[str, Any]) -> str:
    """Highest mean of fixed-set F1 (end to end, at its threshold) and SQuAD reader-alone F1."""

    def score(name: str) -> float:
        row = rows[name]
        parts = [row["seed"]["f1"] or 0.0]
        if "squad_alone" in row:
            parts.append(row["squad_alone"]["f1"] or 0.0)
        return sum(parts) / len(parts)

    return max(rows, key=score)


AUC_NOTE = (
    " SQuAD no-answer AUC: each question is also read against its paragraph less the answer's "
    "sentence; the AUC is the chance that the reader's top score on the paragraph that answers is "
    "above its top score on one that does not (1.0: always, 0.5: chance). Unlike the fixed set's few "
    "unanswerable questions, these are many, and from a dev set never trained on."
)


def render_readers(section: dict[str, Any], default: str) -> list[str]:
    """Markdown for EVALUATION.md."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    squad_n = next((r["squad_alone"]["n_questions"] for r in section["readers"].values()
                    if "squad_alone" in r), None)  # fmt: skip
    lines = [
        "## Readers compared",
        "",
        "Same retrieval for all. Fixed set: end to end at each reader's own threshold under the "
        "abstention policy. SQuAD: the reader given the gold paragraph"
        + (f", a fixed sample of {squad_n} dev questions (seed 0)." + AUC_NOTE if squad_n else "."),
        "",
        "| reader | threshold | fixed set EM | fixed set F1 | unanswerable abstained | p50 | SQuAD EM "
        "| SQuAD F1 | SQuAD no-answer AUC | SQuAD p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in section["readers"].items():
        seed, alone = row["seed"], row.get("squad_alone") or {}
        mark = " **(best)**" if name == section["best"] else ""
        p50 = alone.get("latency_ms_p50")
        lines.append(
            f"| {name}{mark} | {row['threshold']:.3f} | {pct(seed['exact_match'])} | {pct(seed['f1'])} "
            f"| {seed['no_answer']['correct']}/{seed['no_answer']['n']} | {seed['latency_ms']['p50']:.0f} ms "
            f"| {pct(alone.get('exact_match'))} | {pct(alone.get('f1'))} | {_auc(alone)} "
            f"| {'n/a' if p50 is None else f'{p50:.0f} ms'} |"
        )
    lines += [
        "",
        f"Best by the mean of the two F1 scores: **{section['best']}**; the default in use: **{default}**.",
        "",
    ]
    versus = {n: d for n, d in section.get("best_versus", {}).items() if d}
    if versus:
        lines += [
            f"On the fixed set, question by question, {section['best']} scores F1 "
            + "; ".join(
                f"{_points(d['difference'])} against {name} ({LEVEL:.0%} CI {_points(d['interval'][0])} "
                f"to {_points(d['interval'][1])}, {d['questions']} answerable questions)"
                for name, d in versus.items()
            )
            + ". An interval that holds 0 cannot tell the two apart on this set.",
            "",
        ]
    return lines


def _points(value: float) -> str:
    return f"{100 * value:+.1f} points"


def _auc(alone: Mapping[str, Any]) -> str:
    auc = alone.get("no_answer_auc")
    return "n/a" if auc is None else f"{auc:.3f} ({alone['no_answer_pairs']} pairs)"
