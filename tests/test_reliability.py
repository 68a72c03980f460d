"""docs/RELIABILITY.md: the matrix and the harnesses' numbers, and a loud report when anything fails.

The matrix and the harnesses are stubbed here (tests/test_badinput.py runs the real matrix; the
harnesses have their own tests): these tests are about what the report says.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rag import reliability
from rag.badinput import ENTRY_POINTS, FULL, INPUT_CLASSES, QUICK, CellResult, MatrixSize
from rag.cli_reliability import reliability_command

FAILING = ("rag bench", "q_blank")
DETAIL = "the bad question on line 7 was dropped without a word\nexit 0\nstderr: <script>x</script>"


def _cells(failing: tuple[str, str] | None = None) -> list[CellResult]:
    out = []
    for entry in ENTRY_POINTS:
        for key in INPUT_CLASSES:
            if entry == "rag index" and key.startswith("k_"):
                out.append(CellResult(entry, key, "n/a", "`rag index` has no k", None, "n/a", "", "", 0.0))
            elif (entry, key) == failing:
                out.append(
                    CellResult(
                        entry,
                        key,
                        "result",
                        "a blank question",
                        False,
                        "the bad question on line 7 was dropped without a word",
                        DETAIL,
                        "rag bench query --questions $WORK/q.jsonl",
                        0.4,
                    )
                )
            else:
                out.append(
                    CellResult(
                        entry,
                        key,
                        "message",
                        "the case",
                        True,
                        "exit 2: question is empty",
                        "error: question is empty",
                        "rag search ''",
                        1.2,
                        81.0,
                    )
                )
    return out


class _Calls:
    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> _Calls:
    """Clean harness results; every call's arguments recorded."""
    calls = _Calls()

    def matrix(size: MatrixSize, log: Any = None) -> list[CellResult]:
        calls.seen["matrix"] = size
        return _cells(calls.seen.get("failing"))

    def fuzz(examples: int, seed: int = 0, log: Any = None) -> dict[str, Any]:
        calls.seen["fuzz"] = examples
        calls.seen["fuzz_log"] = log is not None  # passed on when the harness takes one
        return {
            "inputs": 1234,
            "crashes": [],
            "seconds": 3.5,
            "targets": {"documents-bytes": 617, "question": 617},
        }

    def crash(kills: int, seed: int = 0, articles: int = 300, log: Any = None) -> dict[str, Any]:
        calls.seen["crash"] = kills
        return {
            "kills": kills,
            "mid_run_kills": kills - 2,
            "failures": [],
            "scenarios": {"build": 20, "update": 20, "delete": 20},
            "seconds": 40.0,
        }

    def concurrency(threads: int = 16, seconds: float = 10.0) -> dict[str, Any]:
        calls.seen["concurrency"] = (threads, seconds)
        return {
            "threads": threads,
            "questions_answered": 4321,
            "mismatches": 0,
            "errors": 0,
            "seconds": seconds,
        }

    def cli_kills(kills: int, log: Any = None) -> dict[str, Any]:
        calls.seen["cli_kills"] = kills
        return {
            "kills": kills,
            "mid_run_kills": kills,
            "answers": 2 * kills,
            "questions": 2 * kills,
            "rebuilds": 0,
            "failures": [],
            "seconds": 90.0,
        }

    def lock(log: Any = None) -> dict[str, Any]:
        return {"serialized": True, "second_waited_s": 1.5, "second_embedded": 0, "message": None,
                "second_said": "another process is indexing", "consistent": True, "failures": []}  # fmt: skip

    def corruption(cli: bool = False, log: Any = None) -> dict[str, Any]:
        cases = [{"file": "vectors", "damage": "truncated", "trials": 3, "detected": 3, "repaired": 3}]
        return {"cases": cases, "trials": 3, "detected": 3, "repaired": 3, "failures": [], "seconds": 9.0}

    monkeypatch.setattr(reliability, "run_matrix", matrix)
    corrupt = types.SimpleNamespace(run_corruption_matrix=corruption)
    monkeypatch.setitem(sys.modules, "rag.corruption", corrupt)
    monkeypatch.setitem(sys.modules, "rag.fuzz", types.SimpleNamespace(run_fuzz=fuzz))
    monkeypatch.setitem(
        sys.modules,
        "rag.crashtest",
        types.SimpleNamespace(run_crash_test=crash, run_cli_kill_check=cli_kills),
    )
    threaded = types.SimpleNamespace(run_concurrency=concurrency, run_lock_check=lock)
    monkeypatch.setitem(sys.modules, "rag.concurrency", threaded)
    return calls


def test_a_clean_run_shows_the_matrix_and_every_number(stubs: _Calls, tmp_path: Path) -> None:
    result = reliability.run_reliability(quick=False, fuzz_examples=5000, kills=60)
    assert result["ok"] and result["problems"] == []
    reliability.write_reliability(result, tmp_path)
    text = (tmp_path / "RELIABILITY.md").read_text(encoding="utf-8")
    assert "Generated by `rag reliability --fuzz-examples 5000 --kills 60`" in text
    assert "Do not edit by hand" in text
    assert "- **Bad-input matrix: 0 failing cells** (141 pass, 3 do not apply)" in text
    assert "- **Fuzzing: 1,234 inputs, 0 crashes**" in text
    assert "- **Corruption: 3 of 3 damaged index files detected, 3 repaired**, 0 failures" in text
    assert "- **Two processes indexing one folder: serialized**, 0 failures" in text
    assert "**SIGKILLs survived: 60** (58 mid-run), 0 failures" in text
    assert "**Concurrency: 16 threads, 4,321 answers, 0 mismatches, 0 errors**" in text
    assert "killed 3 times" in text  # the independent CLI kill check runs at full size
    header = next(line for line in text.splitlines() if line.startswith("| entry point |"))
    assert header.split(" | ")[1:] == [*list(INPUT_CLASSES.values())[:-1], "corpus changes while indexing |"]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list(ENTRY_POINTS)
    assert rows[0].count("–") == 3 and rows[0].count("✅") == 15
    assert "- **k = 0**: does not apply: `rag index` has no k" in text
    assert "### Failing cells" not in text
    saved = json.loads((tmp_path / "reliability.json").read_text(encoding="utf-8"))
    assert saved["matrix"]["failed"] == 0 and len(saved["matrix"]["cells"]) == 144
    assert saved["fuzz"]["inputs"] == 1234 and saved["command"] == result["command"]


def test_a_failing_cell_is_listed_first_with_its_exact_output(stubs: _Calls, tmp_path: Path) -> None:
    stubs.seen["failing"] = FAILING
    result = reliability.run_reliability(quick=True, fuzz_examples=300, kills=6)
    assert not result["ok"]
    assert result["problems"] == [
        "bad-input matrix: rag bench x whitespace question: "
        "the bad question on line 7 was dropped without a word"
    ]
    reliability.write_reliability(result, tmp_path)
    text = (tmp_path / "RELIABILITY.md").read_text(encoding="utf-8")
    assert "- ❌ **Bad-input matrix: 1 failing cells**" in text
    failing = text.index("### Failing cells")
    assert failing < text.index("### Every cell")
    assert "#### `rag bench` x whitespace question" in text[failing:]
    assert "  stderr: <script>x</script>" in text  # verbatim, inside a code block
    assert "<script>" not in text.replace("  stderr: <script>x</script>", "")  # escaped everywhere else
    bench_row = next(line for line in text.splitlines() if line.startswith("| `rag bench` |"))
    assert bench_row.split(" | ")[11] == "❌ FAIL"


def test_a_missing_or_crashing_harness_is_reported_and_fails_the_run(
    stubs: _Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(threads: int = 16, seconds: float = 10.0) -> dict[str, Any]:
        raise RuntimeError("pipeline exploded")

    monkeypatch.setitem(sys.modules, "rag.fuzz", None)  # import fails
    monkeypatch.setitem(sys.modules, "rag.concurrency", types.SimpleNamespace(run_concurrency=broken))
    result = reliability.run_reliability(quick=True, fuzz_examples=300, kills=6)
    assert not result["ok"]
    assert "rag.fuzz.run_fuzz is not available" in result["fuzz"]["error"]
    assert result["concurrency"]["error"] == "RuntimeError: pipeline exploded"
    assert "pipeline exploded" in result["concurrency"]["traceback"]
    reliability.write_reliability(result, tmp_path)
    text = (tmp_path / "RELIABILITY.md").read_text(encoding="utf-8")
    assert "❌ **Fuzzing: did not run**" in text and "❌ **Concurrency: did not run**" in text


def test_a_harness_reporting_failures_fails_the_run(stubs: _Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(kills: int, seed: int = 0, articles: int = 300, log: Any = None) -> dict[str, Any]:
        return {
            "kills": kills,
            "mid_run_kills": 1,
            "failures": ["update: a mix of old and new"],
            "scenarios": {},
            "seconds": 1.0,
        }

    monkeypatch.setitem(sys.modules, "rag.crashtest", types.SimpleNamespace(run_crash_test=crash))
    result = reliability.run_reliability(quick=True, fuzz_examples=300, kills=6)
    assert result["problems"] == ["crash: update: a mix of old and new"]
    assert "- ❌ update: a mix of old and new" in reliability.render(result)


def test_fuzz_crashes_are_listed_one_by_one(stubs: _Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    def fuzz(examples: int, seed: int = 0) -> dict[str, Any]:
        return {
            "inputs": examples,
            "crashes": ["question: ValueError for '\\x00?'"],
            "seconds": 1.0,
            "targets": {"question": examples},
        }

    monkeypatch.setitem(sys.modules, "rag.fuzz", types.SimpleNamespace(run_fuzz=fuzz))
    result = reliability.run_reliability(quick=True, fuzz_examples=300, kills=6)
    assert result["problems"] == ["fuzz: question: ValueError for '\\x00?'"]
    assert "- ❌ **Fuzzing: 300 inputs, 1 crashes**" in reliability.render(result)


def test_quick_and_full_sizes_reach_the_harnesses(stubs: _Calls) -> None:
    reliability.run_reliability(quick=True, fuzz_examples=300, kills=6)
    assert stubs.seen == {"matrix": QUICK, "fuzz": 300, "fuzz_log": True, "crash": 6, "concurrency": (4, 3.0)}
    stubs.seen.clear()
    reliability.run_reliability(quick=False, fuzz_examples=5000, kills=60)
    assert stubs.seen == {
        "matrix": FULL,
        "fuzz": 5000,
        "fuzz_log": True,
        "crash": 60,
        "concurrency": (16, 10.0),
        "cli_kills": 3,
    }


def test_the_command_writes_the_docs_and_exits_1_when_not_clean(stubs: _Calls, tmp_path: Path) -> None:
    ok = CliRunner().invoke(reliability_command, ["--quick", "--docs", str(tmp_path / "docs")])
    assert ok.exit_code == 0, ok.output
    assert "0 failing cells, 141 passing, 3 not applicable" in ok.stdout
    assert (tmp_path / "docs" / "RELIABILITY.md").is_file() and (
        tmp_path / "docs" / "reliability.json"
    ).is_file()
    assert stubs.seen["fuzz"] == 300 and stubs.seen["crash"] == 6
    stubs.seen["failing"] = FAILING
    bad = CliRunner().invoke(
        reliability_command, ["--quick", "--docs", str(tmp_path / "docs"), "--kills", "9"]
    )
    assert bad.exit_code == 1
    assert "not clean: bad-input matrix: rag bench x whitespace question" in bad.stderr
    assert stubs.seen["crash"] == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kills", "2"], "error: --kills must be >= 3 (one per crash scenario), got 2"),
        (["--fuzz-examples", "0"], "error: --fuzz-examples must be >= 1, got 0"),
    ],
)
def test_bad_options_are_one_line_with_exit_2(stubs: _Calls, args: list[str], message: str) -> None:
    result = CliRunner().invoke(reliability_command, ["--quick", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert "matrix" not in stubs.seen  # nothing ran
