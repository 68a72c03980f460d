"""Crash consistency: `sync_index` killed with SIGKILL at random moments leaves the previous index
or the new one, never a mix, and the next run completes (SQLite's crash testing is the model)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.corpus_index import CorpusIndex
from rag.errors import IndexStateError
from rag.retrieval import HybridRetriever
from tests.conftest import ROOT, FakeEncoder

KILLS_PER_SCENARIO = 20  # three scenarios; at least 50 of the kills must land mid-run
DELAY_S = 0.05  # per encoder call, so that the embedding phase is not over in an instant
WORDS = "harbour storm mayor budget vaccine river festival strike election orchestra".split()


def _article(n: int, version: int = 0) -> str:
    rng = random.Random(n * 31 + version)
    body = " ".join(
        f"Sentence {k} of story {n} version {version} mentions {rng.choice(WORDS)}." for k in range(12)
    )
    return f"Story {n} v{version}\n\n{body}\n"


def _write(corpus: Path, numbers: range, version: int = 0) -> None:
    corpus.mkdir(exist_ok=True)
    for n in numbers:
        (corpus / f"{n:04d}.txt").write_text(_article(n, version))


def _worker(corpus: Path, index_dir: Path, delay: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.crash_worker", str(corpus), str(index_dir), str(delay)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _state(index_dir: Path) -> dict[str, str] | None:
    """doc_id -> title of the committed index (checksums verified), or None when there is none."""
    try:
        index = CorpusIndex.open(index_dir, verify=True)
    except IndexStateError as exc:
        assert "manifest.json is missing" in str(exc), exc  # only "no index yet" is acceptable
        return None
    try:
        rows = index.store._db.execute("SELECT doc_id, title FROM articles").fetchall()
        assert len(index.vectors) == index.manifest["counts"]["passages"]
        hits = HybridRetriever(index, FakeEncoder()).retrieve(rows[0][1], k=3)  # it answers
        assert hits
        return {doc_id: title for doc_id, title in rows}
    finally:
        index.close()


def _expected(corpus: Path) -> dict[str, str]:
    return {p.name: p.read_text().split("\n", 1)[0] for p in sorted(corpus.glob("*.txt"))}


def _timed_run(corpus: Path, index_dir: Path, delay: float) -> float:
    began = time.monotonic()
    process = _worker(corpus, index_dir, delay)
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    return time.monotonic() - began


def _kill_loop(corpus: Path, index_dir: Path, tmp: Path, rng: random.Random) -> int:
    """Kill runs of the pending change at random moments; returns how many died mid-run."""
    before = _state(index_dir) if (index_dir / "manifest.json").exists() else None
    snapshot = tmp / "snapshot"
    shutil.rmtree(snapshot, ignore_errors=True)
    if index_dir.exists():
        shutil.copytree(index_dir, snapshot)
    after = _expected(corpus)
    trial = tmp / "trial"  # one uninterrupted run on a copy gives the run's length
    shutil.rmtree(trial, ignore_errors=True)
    if snapshot.exists():
        shutil.copytree(snapshot, trial)
    duration = _timed_run(corpus, trial, DELAY_S)
    killed = 0
    for _ in range(KILLS_PER_SCENARIO):
        process = _worker(corpus, index_dir, DELAY_S)
        time.sleep(rng.uniform(0.0, duration))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait()
        state = _state(index_dir)
        assert state in (before, after), "a mix of the old and the new index"
        if state == after:  # committed before the kill: go back to the old index and go on
            shutil.rmtree(index_dir)
            if snapshot.exists():
                shutil.copytree(snapshot, index_dir)
    _timed_run(corpus, index_dir, 0.0)  # after all that, a normal run completes
    assert _state(index_dir) == after
    return killed


@pytest.mark.slow
def test_sigkill_during_build_update_and_delete_leaves_old_or_new(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    _write(corpus, range(300))
    killed = _kill_loop(corpus, index_dir, tmp_path, rng)  # first build: nothing, or everything
    _write(corpus, range(250, 330), version=1)  # 50 changed, 30 new
    killed += _kill_loop(corpus, index_dir, tmp_path, rng)
    for n in range(0, 300, 5):  # 60 deleted
        (corpus / f"{n:04d}.txt").unlink()
    killed += _kill_loop(corpus, index_dir, tmp_path, rng)
    print(f"{killed} SIGKILLs landed mid-run; the index was old or new after each")
    assert killed >= 50, f"only {killed} kills landed while the index was being written"
