"""Evaluation: question files, SQuAD-style answer metrics, retrieval ranks and their summary.

Pure functions over plain records; nothing here loads a model or imports the pipeline.

    >>> load = load_questions(Path("seeds/questions.jsonl"))
    >>> records = [score_record(q, pred, score, pred is None, texts, ms) for ...]
    >>> print(format_summary(summarize(records)))
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError

HIT_AT_K = (1, 3, 5, 10)
RECORD_KEYS = ("id", "question", "answers", "prediction", "score", "abstained", "em", "f1", "rank",
               "latency_ms")  # fmt: skip
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class Question:
    """One evaluation question; empty `answers` means the articles cannot answer it."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str | None = None
    type: str | None = None
    note: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class QuestionLoad:
    """The questions that parsed, and one "line N: ..." message per skipped line."""

    questions: tuple[Question, ...]
    problems: tuple[str, ...]


def load_questions(path: Path) -> QuestionLoad:
    """Read a JSON Lines file of `{"id", "question", "answers": [...]}` objects."""
    return _load_jsonl(Path(path), lambda obj: _str_list(obj, "answers"))


def load_question_file(path: Path, corpus_root: Path) -> QuestionLoad:
    """`load_span_questions` when the file's first question has `answer_spans`, else `load_questions`."""
    return load_span_questions(path, corpus_root) if _has_spans(Path(path)) else load_questions(path)


def _has_spans(path: Path) -> bool:
    if not path.is_file():
        return False  # load_questions says the file is missing
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                return '"answer_spans"' in line
    return False


def load_span_questions(path: Path, corpus_root: Path) -> QuestionLoad:
    """Read questions whose answers are `answer_spans` ([start, end] offsets into `doc_id`).

    Offsets index the file's text decoded as UTF-8 (Latin-1 if that fails), newlines as in the
    file; the spans are resolved to answer text here, so the question file holds no article text.
    """
    root = Path(corpus_root)
    if not root.is_dir():
        raise RagError(f"corpus folder not found: {str(root)!r}")
    cache: dict[str, str] = {}

    def resolve(obj: dict[str, Any]) -> list[str]:
        doc_id = obj.get("doc_id")
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError(f"'doc_id' must be a non-empty string, got {doc_id!r}")
        spans = obj.get("answer_spans")
        if not isinstance(spans, list):
            raise ValueError(f"'answer_spans' must be a list, got {spans!r}")
        if doc_id not in cache:
            file = root / doc_id
            if not file.is_file():
                raise ValueError(f"document {doc_id!r} not found under {str(root)!r}")
            cache[doc_id] = _decode(file.read_bytes())
        text = cache[doc_id]
        answers: list[str] = []
        for span in spans:
            ok = isinstance(span, list) and len(span) == 2 and all(type(x) is int for x in span)
            if not ok or not 0 <= span[0] < span[1] <= len(text):
                raise ValueError(f"bad span {span!r} for {doc_id!r} ({len(text)} characters)")
            if text[span[0] : span[1]] not in answers:
                answers.append(text[span[0] : span[1]])
        return answers

    return _load_jsonl(Path(path), resolve)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _str_list(obj: dict[str, Any], key: str) -> list[str]:
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise ValueError(f"{key!r} must be a list of non-blank strings, got {value!r}")
    return value


def _load_jsonl(path: Path, answers_of: Callable[[dict[str, Any]], list[str]]) -> QuestionLoad:
    if not path.is_file():
        raise RagError(f"question file not found: {str(path)!r}")
    questions: list[Question] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise RagError(f"question file {str(path)!r} is not UTF-8: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {line.strip()[:40]!r}")
            question = _question(obj, answers_of)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc.msg}): {line.strip()[:40]!r}")
            continue
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if question.id in first_line:
            first = first_line[question.id]
            problems.append(f"line {number}: duplicate id {question.id!r} (first on line {first})")
            continue
        first_line[question.id] = number
        questions.append(question)
    return QuestionLoad(tuple(questions), tuple(problems))


def _question(obj: dict[str, Any], answers_of: Callable[[dict[str, Any]], list[str]]) -> Question:
    for key in ("id", "question"):
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key!r} must be a non-blank string, got {value!r}")
    for key in ("doc_id", "type", "note"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise ValueError(f"{key!r} must be a string, got {obj[key]!r}")
    return Question(obj["id"], obj["question"], tuple(answers_of(obj)), obj.get("doc_id"),
                    obj.get("type"), obj.get("note"))  # fmt: skip


# --- answer metrics (official SQuAD v1.1, plus Unicode punctuation) ---------------------------


def _is_punct(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def normalize_answer(text: str, punct: str = "") -> str:
    """SQuAD v1.1 normalization: lowercase, drop punctuation (any Unicode P*), articles, spaces.

    `punct` replaces each punctuation character; "" is the official behaviour.
    """
    text = "".join(punct if _is_punct(c) else c for c in text.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals a normalized gold answer.

    No golds (an unanswerable question): 1.0 for a None prediction, else 0.0 (SQuAD 2.0 rule).
    """
    if not golds or prediction is None:
        return float(not golds and prediction is None)
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(gold) for gold in golds))


def f1(prediction: str | None, golds: Sequence[str]) -> float:
    """Token-overlap F1, the max over gold answers; None and the no-golds case as exact_match.

    When either side normalizes to nothing, F1 is 1.0 only if both do (SQuAD 2.0 rule).
    """
    if not golds or prediction is None:
        return exact_match(prediction, golds)
    pred = normalize_answer(prediction).split()
    return max(f1_tokens(pred, normalize_answer(gold).split()) for gold in golds)


def f1_tokens(pred: Sequence[str], gold: Sequence[str]) -> float:
    """`f1` of two answers already normalized and split (to score many pairs, normalize once)."""
    if not pred or not gold:
        return float(list(pred) == list(gold))
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def separation_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """The chance that a random positive scores above a random negative (ties count half): 1.0
    separates them perfectly, 0.5 is no better than chance. None when either side is empty."""
    if not positives or not negatives:
        return None
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    wins, i = 0.0, 0
    negatives_below = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        tied = ranked[i:j]
        pos = sum(label for _, label in tied)
        neg = len(tied) - pos
        wins += pos * (negatives_below + neg / 2)
        negatives_below += neg
        i = j
    return wins / (len(positives) * len(negatives))


def contains_answer(passage_text: str, golds: Sequence[str]) -> bool:
    """Whether a normalized gold answer occurs in the passage as whole tokens.

    Checked twice: punctuation deleted (official), and punctuation as a token break, so the gold
    "Anna Petrova" is found in "Anna Petrova's coach" and "Petrov" is not found in "Petrova".
    """
    for punct in ("", " "):
        padded = f" {normalize_answer(passage_text, punct)} "
        for gold in golds:
            norm = normalize_answer(gold, punct)
            if norm and f" {norm} " in padded:
                return True
    return False


# --- records and their summary ------------------------------------------------------------------


def score_record(
    question: Question,
    prediction: str | None,
    score: float | None,
    abstained: bool,
    passage_texts: Sequence[str],
    latency_ms: float | None,
    top_prediction: str | None = None,
) -> dict[str, Any]:
    """One per-question record for `summarize` and `threshold_sweep`.

    `passage_texts` are the retrieved passages in rank order. When `abstained`, the scored
    prediction is None; `top_prediction` (default: `prediction`) keeps the reader's raw answer.
    """
    scored = None if abstained else prediction
    hits = [i for i, text in enumerate(passage_texts, 1) if contains_answer(text, question.answers)]
    return {
        "id": question.id,
        "question": question.question,
        "answers": list(question.answers),
        "type": question.type,
        "prediction": scored,
        "top_prediction": prediction if top_prediction is None else top_prediction,
        "score": score,
        "abstained": bool(abstained),
        "em": exact_match(scored, question.answers),
        "f1": f1(scored, question.answers),
        "rank": hits[0] if hits else None,
        "latency_ms": latency_ms,
    }


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate metrics, as fractions in [0, 1].

    EM, F1, hit@k, MRR and false_abstention_rate are over answerable questions (an abstention
    scores 0); no_answer counts abstentions on unanswerable ones. The keys are exactly those of
    the documented `rag eval --json` file (rag.confidence reads more from `per_question`). A
    metric whose population is empty (no answerable, no unanswerable questions, no latencies) is
    None, never 0.0, so "no data" cannot be read as "all wrong".
    """
    for i, record in enumerate(records):
        missing = [key for key in RECORD_KEYS if key not in record]
        if missing:
            raise ValueError(f"record {i} ({record.get('id')!r}) is missing keys {missing}")
    answerable = [r for r in records if r["answers"]]
    unanswerable = [r for r in records if not r["answers"]]
    ranks = [r["rank"] for r in answerable]
    latencies = [float(r["latency_ms"]) for r in records if r["latency_ms"] is not None]
    correct = sum(1 for r in unanswerable if r["abstained"])
    return {
        "n_questions": len(records),
        "n_answerable": len(answerable),
        "exact_match": _mean([0.0 if r["abstained"] else float(r["em"]) for r in answerable]),
        "f1": _mean([0.0 if r["abstained"] else float(r["f1"]) for r in answerable]),
        "hit_at": {
            str(k): _mean([float(rank is not None and rank <= k) for rank in ranks]) for k in HIT_AT_K
        },
        "mrr": _mean([0.0 if rank is None else 1.0 / rank for rank in ranks]),
        "no_answer": {
            "n": len(unanswerable),
            "correct": correct,
            "accuracy": correct / len(unanswerable) if unanswerable else None,
        },
        "false_abstention_rate": _mean([float(r["abstained"]) for r in answerable]),
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)) if latencies else None,
            "p95": float(np.percentile(latencies, 95)) if latencies else None,
        },
        "per_question": [dict(r) for r in records],
    }


def apply_threshold(records: Sequence[Mapping[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """The records as they would be with abstention threshold `threshold` (from `top_prediction`)."""
    result = []
    for r in records:
        answer = r.get("top_prediction")
        abstained = not answer or float(r.get("score") or 0.0) < threshold
        prediction = None if abstained else answer
        golds = r["answers"]
        result.append({**r, "prediction": prediction, "abstained": abstained,
                       "em": exact_match(prediction, golds), "f1": f1(prediction, golds)})  # fmt: skip
    return result


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def threshold_sweep(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Coverage and accuracy if the reader answered only when `score >= threshold`.

    Candidates are the distinct scores of records with a `top_prediction`, ascending. Per row:
    coverage = answered / all questions; answered_em / answered_f1 = mean EM / F1 of the answered
    questions (an answered unanswerable question scores 0); accuracy = (EM-correct answers +
    abstentions on unanswerable questions) / all questions; overall_f1 the same with F1.
    """
    n = len(records)
    n_unanswerable = sum(1 for r in records if not r["answers"])
    scored = sorted(
        ((float(r["score"]), r["top_prediction"], r["answers"]) for r in records
         if r.get("top_prediction") is not None and r.get("score") is not None),
        key=lambda row: -row[0],
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    answered = unanswerable_answered = 0
    sum_em = sum_f1 = 0.0
    for i, (score, prediction, golds) in enumerate(scored):
        answered += 1
        sum_em += exact_match(prediction, golds)
        sum_f1 += f1(prediction, golds)
        unanswerable_answered += not golds
        if i + 1 < len(scored) and scored[i + 1][0] == score:
            continue
        abstained_right = n_unanswerable - unanswerable_answered
        rows.append({
            "threshold": score,
            "n_answered": answered,
            "coverage": answered / n,
            "answered_em": sum_em / answered,
            "answered_f1": sum_f1 / answered,
            "accuracy": (sum_em + abstained_right) / n,
            "overall_f1": (sum_f1 + abstained_right) / n,
        })  # fmt: skip
    return rows[::-1]


def format_summary(summary: Mapping[str, Any], worst: int = 10) -> str:
    """A console table of the summary, then the `worst` questions (failures, lowest F1 first)."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:5.1f}%"

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f} ms"

    from rag.confidence import LEVEL, SHOWN, f1_best_shown, f1_interval, f1_never_abstaining  # reads this F1

    no_answer, latency = summary["no_answer"], summary["latency_ms"]
    interval = f1_interval(summary["per_question"])
    spread = f"  ({LEVEL:.0%} CI {pct(interval[0]).strip()}-{pct(interval[1]).strip()})" if interval else ""
    mrr = "n/a" if summary["mrr"] is None else f"{summary['mrr']:.3f}"
    hits = "  ".join(f"@{k} {pct(v)}" for k, v in summary["hit_at"].items())
    lines = [
        f"questions         {summary['n_questions']} ({summary['n_answerable']} answerable)",
        f"exact match       {pct(summary['exact_match'])}",
        f"F1                {pct(summary['f1'])}{spread}",
        f"F1, no abstention {pct(f1_never_abstaining(summary['per_question']))}",
        f"F1, best of {SHOWN}     {pct(f1_best_shown(summary['per_question']))}",
        f"hit               {hits}",
        f"MRR               {mrr}",
        f"no-answer         {no_answer['correct']}/{no_answer['n']} abstained ({pct(no_answer['accuracy'])})",
        f"false abstention  {pct(summary['false_abstention_rate'])}",
        f"latency           p50 {ms(latency['p50'])}  p95 {ms(latency['p95'])}",
    ]
    failures = [r for r in summary["per_question"] if is_failure(r)]
    failures.sort(key=lambda r: (r["f1"] if r["answers"] else 0.0, str(r["id"])))
    if failures and worst > 0:
        lines.append(f"\nworst {min(worst, len(failures))} of {len(failures)} failures:")
        for r in failures[:worst]:
            gold = " | ".join(r["answers"]) or "(no answer)"
            lines.append(f"  {r['id']}  f1={r['f1']:.2f} rank={r['rank']}  {r['question']}")
            lines.append(f"      predicted {r['prediction']!r}; gold {gold}")
    return "\n".join(lines)


def is_failure(record: Mapping[str, Any]) -> bool:
    """A wrong or missing answer to an answerable question, or an answer to an unanswerable one."""
    if record["answers"]:
        return record["abstained"] or float(record["em"]) < 1.0
    return not record["abstained"]
