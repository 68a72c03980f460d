"""Concurrency: one loaded pipeline answering from many threads at once gives the answers of a
sequential run (the app shares one pipeline across browser sessions), and two processes indexing
one folder are serialized by the index lock, never interleaved.

    >>> run_concurrency(threads=16, seconds=10.0)["mismatches"]
    0
    >>> run_lock_check()["serialized"]
    True
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.answer import answer_json
from rag.crashtest import read_state, start_worker, write_articles
from rag.errors import RagError
from rag.indexing import index_lock
from rag.pipeline import QAPipeline

Log = Callable[[str], None]
MAX_PROBLEMS = 10  # descriptions kept in the result; the counts are complete


def fingerprint(qa: QAPipeline, question: str) -> str:
    """Everything `rag ask --json` prints for `question` but the timings, as one canonical string."""
    data = answer_json(qa.ask(question))
    data.pop("timings_ms")
    return json.dumps(data, sort_keys=True)


def run_concurrency(
    threads: int = 16,
    seconds: float = 10.0,
    corpus: Path = Path("seeds"),
    log: Log = lambda message: None,
    *,
    qa: QAPipeline | None = None,
    questions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Answer the questions once in sequence, then from `threads` threads at once for `seconds`
    (each thread walks the list from its own offset), comparing every answer with the sequential one.

    `qa` and `questions` default to the pipeline over `corpus` and its questions.jsonl. Returns
    {"threads", "questions_answered", "distinct_questions", "mismatches", "errors", "problems"
    (up to 10 descriptions), "sequential_seconds", "seconds"}.
    """
    if threads < 1:
        raise RagError(f"threads must be >= 1, got {threads}")
    if seconds <= 0:
        raise RagError(f"seconds must be > 0, got {seconds}")
    if questions is None:
        from rag.evaluation import load_questions

        path = corpus / "questions.jsonl"
        if not path.is_file():
            raise RagError(f"no question file for the concurrency run: '{path}'")
        questions = [q.question for q in load_questions(path).questions]
    if not questions:
        raise RagError("the concurrency run needs at least one question")
    qa = qa or QAPipeline.from_corpus(corpus, log=log)
    began = time.monotonic()
    expected = {q: fingerprint(qa, q) for q in questions}
    sequential_seconds = time.monotonic() - began
    log(f"{len(questions)} questions answered in sequence in {sequential_seconds:.1f} s")

    lock = threading.Lock()
    tally = {"answered": 0, "mismatches": 0, "errors": 0}
    problems: list[str] = []
    asked: set[str] = set()
    start = threading.Barrier(threads)
    deadline = 0.0

    def note(kind: str, message: str) -> None:
        with lock:
            tally[kind] += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(message)

    def worker(offset: int) -> None:
        start.wait()
        n = offset
        while time.monotonic() < deadline:
            question = questions[n % len(questions)]
            n += 1
            try:
                got = fingerprint(qa, question)
            except Exception as exc:  # every exception counts: none is expected here
                note("errors", f"{question!r}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                tally["answered"] += 1
                asked.add(question)
            if got != expected[question]:
                note("mismatches", f"{question!r}: the concurrent answer differs from the sequential one")

    pool = [
        threading.Thread(target=worker, args=(i * len(questions) // threads,), daemon=True)
        for i in range(threads)
    ]
    concurrent_began = time.monotonic()
    deadline = concurrent_began + seconds
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - concurrent_began
    log(
        f"{threads} threads answered {tally['answered']} questions in {elapsed:.1f} s: "
        f"{tally['mismatches']} mismatches, {tally['errors']} errors"
    )
    return {
        "threads": threads,
        "questions_answered": tally["answered"],
        "distinct_questions": len(asked),
        "mismatches": tally["mismatches"],
        "errors": tally["errors"],
        "problems": problems,
        "sequential_seconds": round(sequential_seconds, 2),
        "seconds": round(elapsed, 2),
    }


def _lock_holder_seen(
    index_dir: Path, processes: Sequence[subprocess.Popen[bytes]], timeout_s: float
) -> bool:
    """Wait until some process holds the index lock (we cannot take it without blocking)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with (index_dir / ".lock").open("a") as handle:
        while time.monotonic() < deadline and any(p.poll() is None for p in processes):
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            time.sleep(0.02)
    return False


def _finish(process: subprocess.Popen[bytes], name: str, failures: list[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        failures.append(f"the {name} indexing process failed: {err.decode(errors='replace').strip()}")
        return {}
    said = err.decode(errors="replace").strip()
    return {**json.loads(out.decode().strip().splitlines()[-1]), "said": said}


def run_lock_check(
    articles: int = 120, delay_s: float = 2.0, log: Log = lambda message: None
) -> dict[str, Any]:
    """Two processes index the same new folder at once: whichever takes the index lock first
    builds the index, the other must wait for it (and then find the index up to date), a caller
    that will not wait must be told so, and the index must end up holding exactly the corpus.

    Both processes start together and sleep `delay_s` per encoder call, so the one that waits
    arrives while the other holds the lock. Returns {"serialized", "second_waited_s" (from the
    waiting process's start to the builder's end), "first_seconds", "second_embedded", "message"
    (what a non-waiting caller is told), "second_said" (what the waiting one printed), "consistent",
    "failures"}.
    """
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rag-lock-check-") as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        write_articles(corpus, range(articles))
        processes = [start_worker(corpus, index_dir, delay_s, subprocess.PIPE) for _ in range(2)]
        message = ""
        if not _lock_holder_seen(index_dir, processes, timeout_s=120):
            failures.append("neither indexing process was ever seen holding the index lock")
        else:
            try:
                with index_lock(index_dir, wait=False):
                    failures.append("a non-waiting caller got the lock while another process was indexing")
            except RagError as exc:
                message = str(exc)
        runs = [_finish(p, f"indexing process {n}", failures) for n, p in enumerate(processes, 1)]
        state = read_state(index_dir)
    a, b = sorted(runs, key=lambda run: run.get("finished_at", 0.0))  # a: the one that built
    both = bool(a and b)
    overlapped = both and b["started_at"] < a["finished_at"]
    serialized = overlapped and b["embedded"] == 0 and a["embedded"] == a["passages"]
    if both and not overlapped:
        failures.append("inconclusive: one process started after the other had finished; raise delay_s")
    elif both and not serialized:
        failures.append(
            f"the processes were not serialized: they embedded {a['embedded']} and {b['embedded']} "
            f"of {a['passages']} passages"
        )
    expected = {f"{n:04d}.txt" for n in range(articles)}
    consistent = (
        both
        and state is not None
        and {d for d, _ in state.docs} == expected
        and state.passages == a["passages"] == b["passages"]
    )
    if not consistent:
        failures.append("the index after both processes does not hold exactly the corpus")
    if message and "another process is indexing" not in message:
        failures.append(f"a non-waiting caller got an unclear message: {message!r}")
    result = {
        "serialized": serialized,
        "second_waited_s": round(a["finished_at"] - b["started_at"], 2) if overlapped else None,
        "first_seconds": round(a["finished_at"] - a["started_at"], 2) if a else None,
        "second_embedded": b.get("embedded"),
        "second_said": b.get("said", ""),  # what the waiting process printed while it waited, if anything
        "message": message,
        "consistent": consistent,
        "failures": failures,
    }
    log(f"lock check: {result}")
    return result
