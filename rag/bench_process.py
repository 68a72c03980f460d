"""Whole-process measurements: peak memory of indexing and of a query process, and cold start.

Each runs the real `rag` command in a child process and tracks that child's own peak memory
(rag.peak_memory), so the numbers are what a user's process costs, imports and model loads included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.peak_memory import wait_with_peak


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: its wall time and peak resident memory."""

    command: str
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stderr_tail: str


def run_child(args: list[str], *, timeout_s: float = 1800.0) -> ChildRun:
    """Run `python -m rag ARGS` and measure it; raises RagError when it fails."""
    command = [sys.executable, "-m", "rag", *args]
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        waited = wait_with_peak(child, timeout_s)
        wall_s = time.perf_counter() - started
        stderr.seek(0)
        tail = stderr.read().decode("utf-8", "replace")[-500:]
    if waited.timed_out:
        raise RagError(f"benchmark child timed out after {timeout_s:.0f} s: {' '.join(args)}")
    run = ChildRun(" ".join(["rag", *args]), round(wall_s, 3), waited.peak_rss_mb, waited.status, tail)
    if run.returncode != 0:
        raise RagError(f"'{run.command}' failed with exit code {run.returncode}: {tail.strip()[-200:]}")
    return run


def bench_processes(corpus: Path, question: str) -> dict[str, Any]:
    """Peak RSS of `rag index` on CORPUS (fresh index), then the cold start of `rag ask` on it.

    Cold start = process start to the printed answer, with the index already on disk: interpreter
    start, imports, model loads, retrieval and reading. Run twice; the second (file cache warm, as
    for a user who has used the tool before) is the one reported, the first is kept beside it.
    """
    work = Path(tempfile.mkdtemp(prefix="rag-bench-proc-"))
    try:
        index_dir = work / "index"
        indexing = run_child(["index", "--corpus", str(corpus), "--index", str(index_dir), "--quiet"])
        asks = [
            run_child(["ask", question, "--corpus", str(corpus), "--index", str(index_dir)]) for _ in range(2)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "corpus": str(corpus),
        "index": _summary(indexing),
        "query": _summary(asks[1]),
        "cold_start_s": asks[1].wall_s,
        "cold_start_first_s": asks[0].wall_s,
        "index_peak_rss_mb": indexing.peak_rss_mb,
        "query_peak_rss_mb": asks[1].peak_rss_mb,
    }


def _summary(run: ChildRun) -> dict[str, Any]:
    return {key: value for key, value in asdict(run).items() if key != "stderr_tail"}
