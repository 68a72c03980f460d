"""How far a measured F1 can be trusted, from the per-question records of `rag eval`.

A set of about a hundred questions measures F1 with a sampling error of several points: another
set of the same kinds of question, about the same articles, would not score the same. Two
readings of the records say how much of a score is the set and how much the threshold:

- `f1_interval`: a bootstrap confidence interval for F1 over answerable questions, resampling the
  questions (scipy.stats.bootstrap, bias-corrected and accelerated). It bounds how far a new set
  of questions drawn like these could land, not how the reader would do on other kinds;
- `f1_never_abstaining`: F1 with the best answer kept for every answerable question, even one the
  threshold held back: what reading loses, apart from abstention;
- `f1_best_shown`: F1 had the best of the first SHOWN candidates been chosen (the answer and the
  next ones, as the app and `rag ask` list them): how much better choosing among the proposals
  could do, and so how much is lost because the right span is not proposed at all;
- `f1_difference`: how much better one reader does than another on the same questions, with its
  interval. Paired by question, it is much narrower than the two readers' own intervals, which
  can overlap when one reader is better on nearly every question.

    >>> records = [{"answers": ["Oslo"], "abstained": False, "f1": 1.0, "top_prediction": "Oslo"},
    ...            {"answers": ["Bergen"], "abstained": True, "f1": 0.0, "top_prediction": "Bergen"}]
    >>> f1_never_abstaining(records)
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rag.evaluation import f1

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0  # the interval of a given set of records is the same on every run
SHOWN = 3  # candidates the app and `rag ask` list, answered or not, when the readers propose as many


def answer_scores(records: Sequence[Mapping[str, Any]]) -> list[float]:
    """Per answerable question, the F1 it scored: 0 when the reader abstained."""
    return [0.0 if r["abstained"] else float(r["f1"]) for r in records if r["answers"]]


def f1_never_abstaining(records: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean F1 of the best answer to each answerable question, held back or not; None if none."""
    scores = [f1(r.get("top_prediction"), r["answers"]) for r in records if r["answers"]]
    return float(np.mean(scores)) if scores else None


def f1_best_shown(records: Sequence[Mapping[str, Any]], shown: int = SHOWN) -> float | None:
    """Mean F1 of the best of each answerable question's first `shown` candidates (the record's
    `candidates`, best first); None if there is no answerable question or no record has them."""
    answerable = [r for r in records if r["answers"]]
    if not answerable or not any("candidates" in r for r in answerable):
        return None
    best = [max((f1(c, r["answers"]) for c in r.get("candidates", [])[:shown]), default=0.0)
            for r in answerable]  # fmt: skip
    return float(np.mean(best))


def f1_interval(
    records: Sequence[Mapping[str, Any]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float] | None:
    """The `level` confidence interval of F1 over answerable questions; None under two of them."""
    _check(level)
    scores = np.asarray(answer_scores(records))
    return _interval(scores, level, resamples, seed, low=0.0) if len(scores) >= 2 else None


def f1_difference(
    records: Sequence[Mapping[str, Any]],
    others: Sequence[Mapping[str, Any]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any] | None:
    """F1 of `records` less F1 of `others` on the same answerable questions (paired by `id`), and
    its `level` interval; None under two shared questions."""
    _check(level)
    theirs = {r["id"]: r for r in others if r["answers"]}
    pairs = [(r, theirs[r["id"]]) for r in records if r["answers"] and r["id"] in theirs]
    if len(pairs) < 2:
        return None
    gaps = np.subtract(answer_scores([a for a, _ in pairs]), answer_scores([b for _, b in pairs]))
    return {
        "questions": len(pairs),
        "difference": float(gaps.mean()),
        "interval": list(_interval(gaps, level, resamples, seed, low=-1.0)),
    }


def described(summary: Mapping[str, Any]) -> dict[str, Any]:
    """`summary` (as `rag eval` gives it) less its rows, plus F1 with no abstention and F1's interval."""
    records = summary["per_question"]
    interval = f1_interval(records)
    return {
        **{k: v for k, v in summary.items() if k != "per_question"},
        "f1_never_abstaining": f1_never_abstaining(records),
        "f1_best_shown": f1_best_shown(records),
        "f1_interval": list(interval) if interval else None,
        "f1_interval_level": LEVEL,
    }


def _check(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")


def _interval(
    values: np.ndarray, level: float, resamples: int, seed: int, *, low: float
) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of `values`, clipped to [low, 1]."""
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])  # no spread to resample (BCa is undefined there)
    from scipy.stats import bootstrap  # a second to import: only when an interval is asked for

    result = bootstrap(
        (values,),
        np.mean,
        confidence_level=level,
        n_resamples=resamples,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    a, b = result.confidence_interval
    return float(np.clip(a, low, 1.0)), float(np.clip(b, low, 1.0))
