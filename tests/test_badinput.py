"""The bad-input matrix of issue #8 at its quick size: one test per cell, so a failure names its cell.

The cells run the real entry points (the `rag` executable, the Python API, app.py through AppTest)
with the test-double embedder; `rag reliability` runs the same cells at full size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.badinput import (
    ENTRY_POINTS,
    INPUT_CLASSES,
    QUICK,
    Cell,
    CellFailure,
    CliRun,
    MatrixSize,
    Workspace,
    cells,
    expect_message,
    nothing_lost,
    run_cell,
    workspace,
)

CELLS = cells(QUICK)
RUNNABLE = [c for c in CELLS if c.run is not None]  # n/a cells say why in docs/RELIABILITY.md


def _id(cell: Cell) -> str:
    return f"{cell.entry}-{cell.input_class}".replace(" ", "_")


@pytest.fixture(scope="module")
def ws() -> Iterator[Workspace]:
    with workspace(QUICK) as scratch:
        yield scratch


@pytest.mark.slow  # the readers are the real ones (spaCy, the span model)
@pytest.mark.parametrize("cell", RUNNABLE, ids=[_id(c) for c in RUNNABLE])
def test_cell(cell: Cell, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INDEX_HOME", str(ws.index_home))  # one index per corpus, shared by the cells
    result = run_cell(cell, ws)
    assert result.passed, f"{result.key} ({cell.case}): {result.outcome}\n{result.command}\n{result.detail}"


def test_every_entry_point_meets_every_input_class_once() -> None:
    assert [(c.entry, c.input_class) for c in CELLS] == [(e, k) for e in ENTRY_POINTS for k in INPUT_CLASSES]
    for cell in CELLS:
        assert cell.expected in ("message", "result", "n/a"), cell
        assert cell.case.strip(), f"{cell.entry} x {cell.input_class} does not say what it feeds in"
        assert (cell.run is None) == (cell.expected == "n/a"), cell


def test_the_full_size_has_a_hundred_thousand_articles() -> None:
    from rag.badinput import FULL

    assert FULL.many_articles == 100_000 and QUICK.many_articles == 10_000
    with pytest.raises(ValueError, match="many_articles must be >= 2000"):
        MatrixSize("tiny", many_articles=10, upload_batch=1, race_articles=10, many_timeout_s=1)


def _run(code: int, stderr: str, stdout: str = "") -> CliRun:
    return CliRun("rag search ''", code, stdout, stderr, 0.1)


@pytest.mark.parametrize(
    ("run", "why"),
    [
        (_run(2, "error: question is empty\n"), None),
        (_run(1, "error: question is empty\n"), "exit code 1, not 2"),
        (_run(2, "Loading weights: 100%\nerror: question is empty\n"), "2 lines on stderr"),
        (_run(2, 'Traceback (most recent call last):\n  File "x"\nValueError\n'), "a traceback"),
        (_run(2, "error: something else\n"), "does not say 'question is empty'"),
    ],
)
def test_a_message_cell_needs_exit_2_and_one_specific_line(run: CliRun, why: str | None) -> None:
    if why is None:
        assert expect_message(run, "question is empty").detail == "error: question is empty"
    else:
        with pytest.raises(CellFailure, match=why):
            expect_message(run, "question is empty")


def _manifest(index_dir: Path, articles: list[str], skipped: list[tuple[str, str]]) -> None:
    index_dir.mkdir(parents=True)
    manifest = {
        "articles": {
            d: {"content_hash": "0" * 64, "fingerprint": "1" * 64, "indexed": True} for d in articles
        },
        "skipped": [{"doc_id": d, "reason": r, "content_hash": None} for d, r in skipped],
    }
    (index_dir / "manifest.json").write_text(json.dumps(manifest))


def test_nothing_lost_catches_a_file_neither_indexed_nor_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.manifest import default_index_dir

    monkeypatch.setenv("RAG_INDEX_HOME", str(tmp_path / "home"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text("Title\n\nBody.\n")
    _manifest(default_index_dir(corpus), ["a.txt"], [("b.txt", "is binary")])
    with pytest.raises(
        CellFailure, match=r"1 article file\(s\) neither indexed nor listed as skipped: \['c.txt'\]"
    ):
        nothing_lost(corpus)
    (corpus / "c.txt").unlink()
    assert nothing_lost(corpus, (("b.txt", "binary"),)).startswith("2 files: 1 indexed, 1 skipped")
    with pytest.raises(CellFailure, match="is not listed as skipped because of 'too large'"):
        nothing_lost(corpus, (("b.txt", "too large"),))


def test_a_crashing_cell_is_a_failure_with_its_traceback(tmp_path: Path) -> None:
    def broken(ws: Workspace) -> object:
        raise ZeroDivisionError("division by zero in the product")

    cell = Cell("rag index", "nul_bytes", "result", "a test", broken)  # type: ignore[arg-type]
    result = run_cell(cell, Workspace(tmp_path, QUICK))
    assert result.passed is False
    assert result.outcome.startswith("crashed: ZeroDivisionError")
    assert "Traceback" in result.detail and "broken" in result.detail
