"""CI quality gate: the fixed question set must not fall below the floors recorded in the repo.

The floors sit a little under what `rag report` measures (docs/EVALUATION.md); raise them when
quality improves, never lower them to make a change pass.
"""

from __future__ import annotations

import json

import pytest

from rag.eval_runner import run_questions
from rag.evaluation import load_questions
from tests.conftest import ROOT, SEEDS

FLOORS = json.loads((ROOT / "tests" / "quality_floors.json").read_text())


@pytest.mark.slow
def test_the_fixed_question_set_stays_above_the_floors(seed_qa) -> None:  # type: ignore[no-untyped-def]
    summary = run_questions(seed_qa, load_questions(SEEDS / "questions.jsonl").questions)
    measured = {
        "f1": summary["f1"],
        "exact_match": summary["exact_match"],
        "hit_at_3": summary["hit_at"]["3"],
        "no_answer_accuracy": summary["no_answer"]["accuracy"],
    }
    below = {k: (round(v, 3), FLOORS[k]) for k, v in measured.items() if v < FLOORS[k]}
    assert not below, f"below the recorded floors (measured, floor): {below}"
