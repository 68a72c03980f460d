"""docs/RELIABILITY.md: the bad-input matrix, fuzzing, SIGKILLs survived and the concurrency run.

`run_reliability` runs rag.badinput's matrix and the harnesses of rag.fuzz, rag.crashtest and
rag.concurrency, and `write_reliability` renders what they found; `rag reliability` does both.
A harness that cannot run (not installed, or it crashed) is reported as such, never left out, and
makes the run fail.

    >>> result = run_reliability(quick=True, fuzz_examples=300, kills=6)  # doctest: +SKIP
    >>> write_reliability(result, Path("docs"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag import machine
from rag.badinput import (
    ENTRY_POINTS,
    FULL,
    HUGE_RSS_MARGIN_MB,
    INPUT_CLASSES,
    PER_ARTICLE_BUDGET_BYTES,
    QUICK,
    CellResult,
    run_matrix,
)

Log = Callable[[str], None]
QUICK_DEFAULTS = {"fuzz_examples": 300, "kills": 6, "threads": 4, "seconds": 3.0, "cli_kills": 0}
FULL_DEFAULTS = {"fuzz_examples": 5000, "kills": 60, "threads": 16, "seconds": 10.0, "cli_kills": 3}
MARKS = {True: "✅", False: "❌", None: "–"}


def command_line(quick: bool, fuzz_examples: int, kills: int) -> str:
    """The command that regenerates this report, as written at its top."""
    return f"rag reliability{' --quick' if quick else ''} --fuzz-examples {fuzz_examples} --kills {kills}"


def _harness(module: str, function: str, say: Log, **kwargs: Any) -> dict[str, Any]:
    """One harness's result, or {"error": ...} when it is missing or crashed (never silently absent)."""
    started = time.monotonic()
    try:
        run = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        say(f"{module}.{function} is not available: {exc}")
        return {"error": f"{module}.{function} is not available: {exc}"}
    if "log" in inspect.signature(run).parameters:
        kwargs["log"] = say
    shown = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "log")
    say(f"running {module}.{function}({shown})")
    try:
        result: dict[str, Any] = dict(run(**kwargs))
    except Exception as exc:  # a crashed harness is a finding, reported with its traceback
        say(f"{module}.{function} crashed: {exc!r}")
        return {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
            "seconds": round(time.monotonic() - started, 1),
        }
    return result


def count(value: Any) -> int:
    """A harness's tally: a number, or a list of descriptions (its length)."""
    return len(value) if isinstance(value, list | tuple | dict) else int(value)


def run_reliability(
    quick: bool,
    fuzz_examples: int,
    kills: int,
    log: Log = lambda message: None,
    *,
    threads: int | None = None,
    concurrency_seconds: float | None = None,
    cli_kills: int | None = None,
) -> dict[str, Any]:
    """Run the matrix (quick: 10,000 tiny articles; full: 100,000) and the three harnesses.

    Returns everything docs/reliability.json holds; "ok" is True only with zero failing cells,
    no fuzz crash, no crash-test failure and no concurrency mismatch or error.
    """
    defaults = QUICK_DEFAULTS if quick else FULL_DEFAULTS
    threads = threads or int(defaults["threads"])
    seconds = concurrency_seconds or float(defaults["seconds"])
    cli_kills = int(defaults["cli_kills"]) if cli_kills is None else cli_kills
    size = QUICK if quick else FULL
    started = time.monotonic()
    log(f"bad-input matrix ({size.name}: {size.many_articles:,} tiny articles)")
    cells = run_matrix(size, log=log)
    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "command": command_line(quick, fuzz_examples, kills),
        "size": asdict(size),
        "bounds": {
            "huge_rss_margin_mb": HUGE_RSS_MARGIN_MB,
            "per_article_budget_bytes": PER_ARTICLE_BUDGET_BYTES,
        },
        "matrix": matrix_summary(cells),
        "fuzz": _harness("rag.fuzz", "run_fuzz", log, examples=fuzz_examples),
        "crash": _harness("rag.crashtest", "run_crash_test", log, kills=kills),
        "concurrency": _harness("rag.concurrency", "run_concurrency", log, threads=threads, seconds=seconds),
        "lock": _harness("rag.concurrency", "run_lock_check", log, log=log),
        "corruption": _harness("rag.corruption", "run_corruption_matrix", log, cli=not quick, log=log),
    }
    if cli_kills:
        result["cli_kill_check"] = _harness(
            "rag.crashtest", "run_cli_kill_check", log, kills=cli_kills, log=log
        )
    result["problems"] = problems(result)
    result["ok"] = not result["problems"]
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def matrix_summary(cells: list[CellResult]) -> dict[str, Any]:
    return {
        "entry_points": list(ENTRY_POINTS),
        "input_classes": dict(INPUT_CLASSES),
        "passed": sum(c.passed is True for c in cells),
        "failed": sum(c.passed is False for c in cells),
        "not_applicable": sum(c.passed is None for c in cells),
        "seconds": round(sum(c.seconds for c in cells), 1),
        "cells": [asdict(c) for c in cells],
    }


def _descriptions(value: Any, what: str) -> list[str]:
    """A harness's failures as lines: its list of descriptions, or "N <what>" for a bare count."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [f"{value} {what}"] if value else []


_CHECKS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "fuzz": lambda r: _descriptions(r["crashes"], "crashes"),
    "crash": lambda r: _descriptions(r["failures"], "failures"),
    "concurrency": lambda r: (
        _descriptions(r["mismatches"], "mismatches") + _descriptions(r["errors"], "errors")
    ),
    "cli_kill_check": lambda r: _descriptions(r["failures"], "failures"),
    "lock": lambda r: _descriptions(r["failures"], "failures"),
    "corruption": lambda r: _descriptions(r["failures"], "failures"),
}


def harness_problems(name: str, harness: dict[str, Any]) -> list[str]:
    """What went wrong in one harness's run: it did not run, or it reported failures."""
    if "error" in harness:
        return [str(harness["error"])]
    try:
        return _CHECKS[name](harness)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the harness returned no usable {exc} field"]


def problems(result: dict[str, Any]) -> list[str]:
    """Every reason the run is not clean, one line each (empty: all is well)."""
    found = [
        f"bad-input matrix: {c['entry']} x {INPUT_CLASSES[c['input_class']]}: {c['outcome']}"
        for c in result["matrix"]["cells"]
        if c["passed"] is False
    ]
    for name in _CHECKS:
        if name in result:
            found += [f"{name}: {problem}" for problem in harness_problems(name, result[name])]
    return found


# ---- rendering -----------------------------------------------------------------------------


def _text(value: object) -> str:
    """Plain Markdown text: no HTML (article text can hold markup), no table or line breaks."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ⏎ ")


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _matrix_table(matrix: dict[str, Any]) -> list[str]:
    classes = matrix["input_classes"]
    by_key = {(c["entry"], c["input_class"]): c for c in matrix["cells"]}
    lines = [
        "| entry point | " + " | ".join(classes.values()) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for entry in matrix["entry_points"]:
        row = []
        for key in classes:
            cell = by_key.get((entry, key))
            if cell is None:
                row.append("missing")
            elif cell["passed"] is None:
                row.append(MARKS[None])
            else:
                row.append(f"{MARKS[cell['passed']]} {cell['expected'] if cell['passed'] else 'FAIL'}")
        lines.append(f"| `{entry}` | " + " | ".join(row) + " |")
    return lines


def _cell_lines(cell: dict[str, Any], classes: dict[str, str]) -> list[str]:
    name = classes[cell["input_class"]]
    if cell["passed"] is None:
        return [f"- **{name}**: does not apply: {_text(cell['case'])}"]
    rss = f", peak RSS {cell['peak_rss_mb']:.0f} MB" if cell.get("peak_rss_mb") else ""
    head = (
        f"- {MARKS[cell['passed']]} **{name}** ({_text(cell['case'])}; expected: {cell['expected']}, "
        f"{cell['seconds']:.1f} s{rss})"
    )
    lines = [head]
    if cell["command"]:
        lines.append(f"  `{cell['command'].replace('`', chr(39))}`")
    if cell["passed"]:
        lines.append(f"  → {_text(cell['detail'])}")
    else:
        lines += ["", "  ```text", *[f"  {line}" for line in cell["detail"].splitlines()], "  ```"]
    return lines


def _harness_section(
    title: str, harness: dict[str, Any] | None, summary: Callable[[dict[str, Any]], str]
) -> list[str]:
    lines = [f"## {title}", ""]
    if harness is None:
        return lines + ["Not run (see the command's options).", ""]
    if "error" in harness:
        return lines + [f"❌ **Did not run**: {_text(harness['error'])}", ""]
    try:
        lines += [summary(harness), ""]
    except (KeyError, TypeError, ValueError) as exc:
        lines += [f"❌ The harness returned no usable {exc} field.", ""]
    shown = {k: v for k, v in harness.items() if k not in ("failures", "problems", "traceback")}
    lines += ["| field | value |", "|---|---|"]
    lines += [f"| {key} | {_text(json.dumps(value))} |" for key, value in shown.items()]
    lines.append("")
    for failure in list(harness.get("failures", [])) + list(harness.get("problems", [])):
        lines.append(f"- ❌ {_text(failure)}")
    return lines + [""]


def _fuzz_headline(f: dict[str, Any]) -> str:
    return f"**Fuzzing: {_count(f['inputs'])} inputs, {_count(count(f['crashes']))} crashes**"


def _fuzz_summary(f: dict[str, Any]) -> str:
    return (
        f"{_count(f['inputs'])} generated inputs against {len(f['targets'])} targets "
        f"({', '.join(map(str, f['targets']))}) in {f['seconds']} s: "
        f"**{_count(count(f['crashes']))} crashes**."
    )


def _crash_headline(c: dict[str, Any]) -> str:
    return (
        f"**SIGKILLs survived: {_count(c['kills'])}** ({_count(c['mid_run_kills'])} mid-run), "
        f"{len(c['failures'])} failures"
    )


def _crash_summary(c: dict[str, Any]) -> str:
    return (
        f"Index runs killed with SIGKILL **{_count(c['kills'])} times** "
        f"({_count(c['mid_run_kills'])} mid-run) over the scenarios {', '.join(c['scenarios'])}; after "
        "each kill the index must hold the old or the new state and the next run must complete: "
        f"**{len(c['failures'])} failures** ({c['seconds']} s)."
    )


def _concurrency_headline(c: dict[str, Any]) -> str:
    return (
        f"**Concurrency: {c['threads']} threads, {_count(c['questions_answered'])} answers, "
        f"{c['mismatches']} mismatches, {c['errors']} errors**"
    )


def _concurrency_summary(c: dict[str, Any]) -> str:
    return (
        f"{c['threads']} threads answered **{_count(c['questions_answered'])} questions** from one "
        f"shared pipeline in {c['seconds']} s: **{c['mismatches']}** differed from the sequential "
        f"answers, **{c['errors']}** errors."
    )


def _cli_kill_headline(c: dict[str, Any]) -> str:
    return (
        f"**Independent check: `rag index` killed {c['kills']} times, then `rag search` and `rag ask` "
        f"answered {c['answers']} of {c['questions']}**, {len(c['failures'])} failures"
    )


def _cli_kill_summary(c: dict[str, Any]) -> str:
    return (
        f"The real `rag index` was killed {c['kills']} times ({c['mid_run_kills']} mid-run); each time "
        f"`rag search` and `rag ask` then answered; {c['answers']} of {c['questions']} answers were "
        f"correct ({c['rebuilds']} runs said they rebuilt): **{len(c['failures'])} failures**."
    )


def _lock_headline(c: dict[str, Any]) -> str:
    state = "serialized" if c["serialized"] else "NOT serialized"
    return f"**Two processes indexing one folder: {state}**, {len(c['failures'])} failures"


def _lock_summary(c: dict[str, Any]) -> str:
    return (
        f"A second `sync_index` on the same index folder while the first ran: it waited "
        f"{c['second_waited_s']} s and then embedded {c['second_embedded']} passages (the first had done "
        f"the work); what it said: {_text(c.get('second_said') or c.get('message'))}. Consistent afterwards: "
        f"{c['consistent']}. **{len(c['failures'])} failures**."
    )


def _corruption_headline(c: dict[str, Any]) -> str:
    return (
        f"**Corruption: {c['detected']} of {c['trials']} damaged index files detected, "
        f"{c['repaired']} repaired**, {len(c['failures'])} failures"
    )


def _corruption_summary(c: dict[str, Any]) -> str:
    cases = ", ".join(f"{x['file']} {x['damage']}" for x in c["cases"])
    return (
        f"Each index file (vectors, passage store with its FTS5 keyword index, manifest) truncated, "
        f"bit-flipped or deleted ({cases}): opening refuses it naming the file, and the normal path "
        f"rebuilds with a message and answers. {c['detected']} of {c['trials']} detected, {c['repaired']} "
        f"repaired: **{len(c['failures'])} failures** ({c['seconds']} s)."
        + (
            f" Through the real `rag ask` on {c['cli']['cases']} damaged indexes: {c['cli']['repaired']} "
            "rebuilt with a message and answered."
            if "cli" in c
            else ""
        )
    )


HARNESSES = (  # result key, title, headline, summary
    ("fuzz", "Fuzzing", _fuzz_headline, _fuzz_summary),
    ("crash", "Crash consistency: SIGKILLs survived", _crash_headline, _crash_summary),
    ("concurrency", "Concurrency", _concurrency_headline, _concurrency_summary),
    ("cli_kill_check", "Independent check: killing `rag index`", _cli_kill_headline, _cli_kill_summary),
    ("lock", "Two processes, one index folder", _lock_headline, _lock_summary),
    ("corruption", "Corruption", _corruption_headline, _corruption_summary),
)


def _headline(title: str, harness: dict[str, Any], text: Callable[[dict[str, Any]], str]) -> str:
    if "error" in harness:
        return f"❌ **{title}: did not run**"
    try:
        return text(harness)
    except (KeyError, TypeError, ValueError):
        return f"❌ **{title}: incomplete result**"


def _method(size: dict[str, Any]) -> list[str]:
    huge_mb = size["huge_bytes"] // 2**20
    return [
        "Every entry point meets every class of bad input. A cell passes when the entry point gives a "
        "one-line specific *message* (the CLI: exit code 2, one line on stderr, no traceback; the Python "
        "API: a `RagError`; the app: a warning or error box, no exception) or a correct *result*, loses "
        "nothing (every article file is indexed or listed as skipped with its reason) and keeps memory "
        "bounded. Message cells of the CLI run the unmodified `rag` executable; result cells run the same "
        "CLI code (in its own process where memory is measured, click's runner otherwise), the Python "
        "API, and `app.py` through `streamlit.testing.v1.AppTest`, with a test-double embedder "
        "(`rag.crashtest_worker.HashEncoder`) instead of MiniLM, and the real readers. `$WORK` is the "
        "run's scratch folder.",
        "",
        f"Size: **{size['name']}**: {size['many_articles']:,} tiny articles, a {huge_mb} MB article, "
        f"{size['upload_batch']:,} files in one upload, {size['race_articles']:,} articles changing under "
        "`rag index`.",
        "",
        "Memory bounds (peak RSS of the `rag index` process, its /proc VmHWM polled while it runs): the "
        f"{huge_mb} MB article may add at most {HUGE_RSS_MARGIN_MB:.0f} MB over indexing the three small "
        "articles alone, so it is never read whole (reading it would add 50 MB, decoding it 50 to 200 "
        f"more). Indexing many articles may grow by at most {PER_ARTICLE_BUDGET_BYTES:,} bytes per "
        "article beyond the article's vector, measured between a run over a fifth of the articles and a "
        "run over all of them. What the design keeps per article for the whole corpus (the manifest "
        "entry with two sha256 hex digests, the file list, the duplicate finder's maps, the sets of "
        "doc ids to add and remove) measured about 2.7 KB per tiny article with a block-wise ingestion; "
        "holding every parsed article and its passages until the end measured about 6 KB, and fails.",
        "",
        "Legend: ✅ passes (expected a message or a result), ❌ fails, – does not apply (why is below).",
        "",
    ]


def render(result: dict[str, Any]) -> str:
    """RELIABILITY.md from a `run_reliability` result."""
    matrix = result["matrix"]
    classes = matrix["input_classes"]
    lines = [
        "# Reliability",
        "",
        f"Generated by `{result['command']}` on {result['generated_at']} ({result['machine']}) in "
        f"{result['seconds']:.0f} s. Do not edit by hand: run the command again.",
        "",
        f"- {'❌ ' if matrix['failed'] else ''}**Bad-input matrix: {matrix['failed']} failing cells** "
        f"({matrix['passed']} pass, "
        f"{matrix['not_applicable']} do not apply)",
    ]
    for key, title, headline, _ in HARNESSES:
        if key in result:
            mark = "❌ " if harness_problems(key, result[key]) and "error" not in result[key] else ""
            lines.append(f"- {mark}" + _headline(title, result[key], headline))
    if result["problems"]:
        lines += ["", "**Not clean:**", "", *[f"- ❌ {_text(p)}" for p in result["problems"]]]
    lines += ["", "## Bad-input matrix", "", *_method(result["size"]), *_matrix_table(matrix), ""]
    failed = [c for c in matrix["cells"] if c["passed"] is False]
    if failed:
        lines += ["### Failing cells", ""]
        for cell in failed:
            lines += [f"#### `{cell['entry']}` x {classes[cell['input_class']]}", ""]
            lines += _cell_lines(cell, classes) + [""]
    lines += ["### Every cell", ""]
    for entry in matrix["entry_points"]:
        lines += [f"#### `{entry}`", ""]
        for cell in (c for c in matrix["cells"] if c["entry"] == entry):
            lines += _cell_lines(cell, classes)
        lines.append("")
    for key, title, _, summary in HARNESSES:
        if key in result or key not in ("cli_kill_check", "lock", "corruption"):  # optional ones
            lines += _harness_section(title, result.get(key), summary)
    lines += [
        "## How this is checked",
        "",
        "`rag reliability` regenerates this file and `docs/reliability.json` at the full size "
        f"({FULL.many_articles:,} tiny articles); `rag reliability --quick` runs the reduced size "
        f"({QUICK.many_articles:,}). The test suite runs the quick matrix cell by cell "
        "(`tests/test_badinput.py`, one test per cell) and reduced runs of the fuzzer, the crash test "
        "and the concurrency run in their own tests. The command exits with 1 when anything above is "
        "not clean.",
        "",
    ]
    return "\n".join(lines)


def write_reliability(result: dict[str, Any], docs: Path) -> None:
    """docs/RELIABILITY.md and docs/reliability.json from one `run_reliability` result."""
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "reliability.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (docs / "RELIABILITY.md").write_text(render(result), encoding="utf-8")
