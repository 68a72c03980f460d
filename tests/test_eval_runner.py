from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import main
from rag.eval_runner import evaluate_file
from rag.evaluation import contains_answer, exact_match, f1, load_questions
from tests.conftest import SEEDS

SUMMARY_KEYS = {
    "n_questions",
    "n_answerable",
    "exact_match",
    "f1",
    "hit_at",
    "mrr",
    "no_answer",
    "false_abstention_rate",
    "latency_ms",
    "per_question",
}
RECORD_KEYS = {"id", "question", "answers", "prediction", "score", "abstained", "em", "f1", "rank"}


@pytest.fixture(scope="module")
def seed_summary(seed_qa) -> dict:  # type: ignore[no-untyped-def,type-arg]
    from rag.eval_runner import run_questions

    return run_questions(seed_qa, load_questions(SEEDS / "questions.jsonl").questions)


@pytest.mark.slow
def test_summary_has_the_documented_shape(seed_summary: dict) -> None:  # type: ignore[type-arg]
    assert set(seed_summary) == SUMMARY_KEYS
    assert set(seed_summary["hit_at"]) == {"1", "3", "5", "10"}
    assert set(seed_summary["no_answer"]) == {"n", "correct", "accuracy"}
    assert set(seed_summary["latency_ms"]) == {"p50", "p95"}
    for record in seed_summary["per_question"]:
        assert RECORD_KEYS <= set(record)


@pytest.mark.slow
def test_summary_agrees_with_its_own_per_question_entries(seed_summary: dict) -> None:  # type: ignore[type-arg]
    rows = seed_summary["per_question"]
    answerable = [r for r in rows if r["answers"]]
    for r in rows:
        assert r["em"] == exact_match(r["prediction"], r["answers"]) if r["answers"] else True
        assert r["f1"] == pytest.approx(f1(r["prediction"], r["answers"])) if r["answers"] else True
        assert r["abstained"] == (r["prediction"] is None)
    assert seed_summary["exact_match"] == pytest.approx(sum(r["em"] for r in answerable) / len(answerable))
    assert seed_summary["f1"] == pytest.approx(sum(r["f1"] for r in answerable) / len(answerable))
    for k in (1, 3, 5, 10):
        hits = sum(1 for r in answerable if r["rank"] is not None and r["rank"] <= k)
        assert seed_summary["hit_at"][str(k)] == pytest.approx(hits / len(answerable))
    unanswerable = [r for r in rows if not r["answers"]]
    assert seed_summary["no_answer"]["correct"] == sum(r["abstained"] for r in unanswerable)


@pytest.mark.slow
def test_eval_cli_writes_exactly_the_documented_json(tmp_path: Path, seed_qa) -> None:  # type: ignore[no-untyped-def]
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "Who is Jibril al-Mouhajer?", "answers": ["Oumar Diaby’s son"]}\n'
        "this line is not json\n"
        '{"id": "b", "question": "What is the capital of Peru?", "answers": []}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            str(questions),
            "--corpus",
            str(SEEDS),
            "--json",
            str(out),
            "--index",
            str(seed_qa.index.index_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "line 2" in result.stderr
    data = json.loads(out.read_text())
    assert set(data) == SUMMARY_KEYS and data["n_questions"] == 2 and data["n_answerable"] == 1
    first = data["per_question"][0]
    assert first["prediction"] in ("Oumar Diaby’s son", "Oumar Diaby's son") and first["rank"] == 1
    # the candidates listed to a user, best first: the answer, then the others, each once
    shown = first["candidates"]
    assert shown[0] == first["prediction"] and len(set(shown)) == len(shown) > 1
    assert all(isinstance(c, str) and c for c in data["per_question"][1]["candidates"])


def test_eval_refuses_a_missing_question_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "none.jsonl"), "--corpus", "seeds"])
    assert result.exit_code == 2 and "question file not found" in result.stderr


def test_rank_uses_the_same_normalization_as_scoring() -> None:
    assert contains_answer("Earlier, Oumar Diaby’s son, a jihadist", ["Oumar Diaby's son"])


@pytest.mark.slow
def test_evaluate_file_with_a_limit_is_a_fixed_sample(seed_qa) -> None:  # type: ignore[no-untyped-def]
    runs = [
        evaluate_file(
            SEEDS / "questions.jsonl", corpus=SEEDS, index_dir=seed_qa.index.index_dir, limit=5, seed=3
        )
        for _ in range(2)
    ]
    ids = [[r["id"] for r in run.summary["per_question"]] for run in runs]
    assert ids[0] == ids[1] and len(ids[0]) == 5


@pytest.mark.parametrize(("flag", "shown"), [([], True), (["--failures", "0"], False)])
def test_eval_failures_flag_can_keep_a_held_out_set_unread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: list[str], shown: bool
) -> None:
    from rag import eval_runner
    from rag.evaluation import summarize
    from tests.test_evaluation import HAND_RECORDS

    summary = summarize(HAND_RECORDS)
    monkeypatch.setattr(eval_runner, "evaluate_file", lambda *a, **k: eval_runner.EvalResult(summary))
    questions = tmp_path / "q.jsonl"
    questions.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(questions), "--corpus", str(SEEDS), *flag])
    assert result.exit_code == 0, result.output
    assert "exact match" in result.output
    assert ("worst 3 of 3 failures" in result.output) is shown
    assert ("r3" in result.output) is shown


def test_eval_refuses_a_negative_failures_count(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "seeds/questions.jsonl", "--failures", "-1"])
    assert result.exit_code == 2 and "--failures" in result.stderr
