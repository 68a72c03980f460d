"""Crash consistency: index runs killed with SIGKILL at random moments leave the previous index or
the new one, never a mix, and the next run completes (the harness lives in rag/crashtest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.crashtest import read_state, run_cli_kill_check, run_crash_test, write_articles
from rag.crashtest_worker import HashEncoder, harness_chunker
from rag.errors import IndexStateError
from rag.indexing import sync_index


def _build(corpus: Path, index_dir: Path) -> None:
    sync_index(corpus, index_dir, encoder=HashEncoder(), chunker=harness_chunker())


def test_read_state_tells_no_index_old_new_and_a_mix_apart(tmp_path: Path) -> None:
    corpus, old, new = tmp_path / "corpus", tmp_path / "old", tmp_path / "new"
    assert read_state(old) is None  # nothing built yet
    write_articles(corpus, range(12))
    _build(corpus, old)
    shutil.copytree(old, new)
    write_articles(corpus, range(10, 14), version=1)
    _build(corpus, new)
    before, after = read_state(old), read_state(new)
    assert before is not None and after is not None and before != after
    assert len(before.docs) == 12 and len(after.docs) == 14
    assert {d for d, _ in after.docs} == {p.name for p in corpus.glob("*.txt")}
    # A mix: the new generation's passage store under the old manifest's name.
    old_store = next(old.glob("store-g*.sqlite"))
    shutil.copyfile(next(new.glob("store-g*.sqlite")), old_store)
    with pytest.raises(IndexStateError, match=old_store.name):
        read_state(old)


@pytest.mark.slow
def test_sigkill_during_build_update_and_delete_leaves_old_or_new() -> None:
    result = run_crash_test(kills=54, seed=20261201, articles=300, log=print)
    print(result)
    assert result["failures"] == []
    assert result["scenarios"] == {"build": 18, "update": 18, "delete": 18}
    assert result["kills"] == result["mid_run_kills"] == 54  # every one landed while a run was going
    assert result["attempts"] >= 54


@pytest.mark.slow
def test_killed_rag_index_cli_then_search_and_ask_answer_from_the_current_corpus() -> None:
    result = run_cli_kill_check(kills=3, seed=7, articles=60, log=print)
    print(result)
    assert result["failures"] == []
    assert result["answers"] == result["questions"] == 6
    assert result["mid_run_kills"] >= 1  # a run still going was killed, not only finished ones
