"""Corruption: each index file (vectors, passage store with its FTS5 keyword index, manifest)
truncated, bit-flipped or missing is refused on opening with a message naming the file, and the
normal path (QAPipeline.from_corpus, `rag ask`) rebuilds with a message and answers again."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from rag.corruption import (
    DAMAGES,
    FILES,
    build_harness_index,
    check_case,
    damage,
    damaged_file,
    run_cli_corruption,
    run_corruption_matrix,
)
from rag.crashtest import IndexState

BIT_FLIPS = 6  # seeded positions per file


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, IndexState | None]:
    root = tmp_path_factory.mktemp("corruption")
    clean = build_harness_index(root / "corpus", root / "base")
    return root / "corpus", root / "base", clean


def _case(harness, tmp_path: Path, role: str, kind: str, trial: int):  # type: ignore[no-untyped-def]
    corpus, base, clean = harness
    index_dir = tmp_path / f"{role}-{kind}-{trial}"
    shutil.copytree(base, index_dir)
    name = damaged_file(index_dir, role).name
    result = check_case(
        corpus, index_dir, role, kind, clean=clean, trial=trial, rng=random.Random(trial), ask=False
    )
    return name, result


CASES = [
    (role, kind)
    for role in FILES
    for kind in DAMAGES
    if kind != "bit-flipped"
]


@pytest.mark.parametrize(("role", "kind"), CASES)
def test_damaged_file_is_named_on_opening_and_rebuilt_with_a_message(
    harness, tmp_path: Path, role: str, kind: str
) -> None:  # type: ignore[no-untyped-def]
    for trial in range(1 if kind == "missing" else 3):  # truncated: to 0, to half, by one byte
        name, result = _case(harness, tmp_path, role, kind, trial)
        assert result.refusal is not None and name in result.refusal, result
        assert result.repaired, result.note
        assert "rebuilding the index" in result.note and name in result.note


@pytest.mark.parametrize("role", FILES)
def test_any_flipped_bit_is_caught_by_a_checksum_and_rebuilt(harness, tmp_path: Path, role: str) -> None:  # type: ignore[no-untyped-def]
    for trial in range(BIT_FLIPS):
        name, result = _case(harness, tmp_path, role, "bit-flipped", trial)
        assert result.refusal is not None and name in result.refusal, result
        assert result.repaired, result.note


def test_damage_does_what_it_says(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    data = bytes(range(256)) * 4
    for trial, size in enumerate([0, 512, 1023]):
        path.write_bytes(data)
        assert damage(path, "truncated", trial, random.Random(0)) == f"cut to {size} of 1024 bytes"
        assert path.read_bytes() == data[:size]
    path.write_bytes(data)
    damage(path, "bit-flipped", 0, random.Random(3))
    diff = [a ^ b for a, b in zip(path.read_bytes(), data, strict=True) if a != b]
    assert len(diff) == 1 and bin(diff[0]).count("1") == 1
    damage(path, "missing", 0, random.Random(0))
    assert not path.exists()


@pytest.mark.slow
def test_corruption_matrix_counts_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_corruption_matrix(seed=0, trials=2)
    assert result["trials"] == len(FILES) * (2 * 2 + 1)
    assert [(c["file"], c["damage"]) for c in result["cases"]] == [(f, d) for f in FILES for d in DAMAGES]
    data_cases = [c for c in result["cases"] if c["file"] != "manifest"]
    assert all(c["detected"] == c["repaired"] == c["trials"] for c in data_cases), data_cases


@pytest.mark.slow
def test_rag_ask_rebuilds_a_damaged_real_index_and_answers() -> None:
    cases = (("vectors", "truncated"), ("store", "bit-flipped"), ("manifest", "truncated"))
    result = run_cli_corruption(seed=0, cases=cases, log=print)
    assert result["failures"] == []
    assert result["repaired"] == len(cases)
