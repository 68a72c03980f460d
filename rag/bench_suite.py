"""`rag bench`: every speed measurement in one run, so the ratios compare like with like.

Index build vs raw encode, the ONNX encoders vs torch, query latency per reader, peak memory and
cold start of real `rag` processes, the peers (Haystack, txtai) on the same passages and questions,
and the FAISS scaling table. `--quick` shrinks each part for CI (a BBC subset, scale up to 100k).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag import machine
from rag.errors import RagError
from rag.evaluation import Question, load_questions, load_span_questions
from rag.pipeline import PipelineSettings

BBC_QUESTIONS = Path("benchmarks/bbc_questions.jsonl")
QUICK_SCALE = (10_000, 100_000)
FULL_SCALE = (10_000, 100_000, 1_000_000)
# --quick: the articles of the first BBC questions plus a few others, fewer seed questions, one reader
QUICK_BBC_QUESTIONS = 40
QUICK_EXTRA_ARTICLES = 10
QUICK_SEED_QUESTIONS = 30


def bbc_subset(bbc: Path, questions: Sequence[Question], out: Path, extra: int, seed: int = 0) -> Path:
    """Copy the articles the questions are about, plus `extra` seeded others, keeping their paths."""
    files = sorted(p.relative_to(bbc) for p in bbc.rglob("*.txt"))
    wanted = {Path(q.doc_id) for q in questions if q.doc_id}
    others = [f for f in files if f not in wanted]
    chosen = sorted(wanted | set(random.Random(seed).sample(others, min(extra, len(others)))))
    for relative in chosen:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bbc / relative, out / relative)
    return out


def run_suite(
    *, quick: bool, bbc: Path, seeds: Path = Path("seeds"), log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run every benchmark; returns the JSON document `rag bench --json` writes."""
    from rag.bench import bench_index
    from rag.bench_encoder import bench_encoder
    from rag.bench_peers import bench_peers
    from rag.bench_process import bench_processes
    from rag.bench_scale import bench_scale

    if not bbc.is_dir():
        raise RagError(
            f"BBC corpus folder not found: '{bbc}' (unpack ../shared/datasets/bbc-news/bbc.tar.gz)"
        )
    started = time.perf_counter()
    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "mode": "quick" if quick else "full",
    }
    bbc_questions = list(load_span_questions(BBC_QUESTIONS, bbc).questions)
    seed_questions = [q.question for q in load_questions(seeds / "questions.jsonl").questions]
    if quick:
        bbc_questions = bbc_questions[:QUICK_BBC_QUESTIONS]
        seed_questions = seed_questions[:QUICK_SEED_QUESTIONS]
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        corpus = bbc_subset(bbc, bbc_questions, Path(tmp) / "bbc", QUICK_EXTRA_ARTICLES) if quick else bbc
        used = f"the articles of {len(bbc_questions)} BBC questions + {QUICK_EXTRA_ARTICLES} seeded others"
        result["corpus"] = {"bbc": str(bbc), "used": used if quick else "all articles"}

        log("index build: whole pipeline vs raw encode ...")
        result["index"] = bench_index(corpus)
        result["index"]["seeds"] = bench_index(seeds)

        log("encoder: torch, ONNX fp32, int8 ONNX ...")
        texts = _passage_texts(corpus)
        result["encoder"] = bench_encoder(texts, [q.question for q in bbc_questions])

        result["query"] = measure_query(
            seeds, seed_questions, corpus if not quick else None, bbc_questions, quick=quick, log=log
        )

        log("processes: peak memory and cold start ...")
        result["process"] = bench_processes(corpus, bbc_questions[0].question)

        log("peers: Haystack and txtai on the same passages ...")
        result["peers"] = bench_peers(corpus, bbc_questions, extras=not quick, log=log)

        log("scale: FAISS + SQLite store from 10k passages up ...")
        # The base passages are the corpus's own (quick: the subset, so CI encodes nothing more).
        result["scale"] = bench_scale(QUICK_SCALE if quick else FULL_SCALE, corpus=corpus, log=log)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def measure_query(
    seeds: Path,
    seed_questions: Sequence[str],
    bbc: Path | None,
    bbc_questions: Sequence[Question],
    *,
    quick: bool,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Latency per reader on the seed corpus (the default reader first), and on BBC when given."""
    from rag.bench import bench_query
    from rag.neural_reader import packaged_model

    log("query latency per reader on seeds ...")
    default = PipelineSettings().reader
    readers = [default] + [r for r in ("heuristic", "neural", "hybrid") if r != default]
    if not packaged_model():
        readers = ["heuristic"]
    if quick:
        readers = readers[:1]
    by_reader = {
        r: bench_query(seeds, list(seed_questions), settings=PipelineSettings(reader=r)) for r in readers
    }
    first = by_reader[readers[0]]
    query: dict[str, Any] = {
        "corpus": str(seeds),
        "reader": readers[0],
        "p50_ms": first["total"]["p50_ms"],
        "p95_ms": first["total"]["p95_ms"],
        "by_reader": by_reader,
    }
    if bbc is not None:
        log("query latency on BBC ...")
        query["bbc"] = bench_query(bbc, [q.question for q in bbc_questions])
    return query


def refresh_query(
    measured: dict[str, Any], *, bbc: Path, seeds: Path = Path("seeds"), log: Callable[[str], None] = print
) -> dict[str, Any]:
    """`measured` (a full run's JSON) with its query latencies measured again, and stamped as such.

    For a change that moves only the readers (a new span model, a new default): the rest of a
    full run takes the better part of an hour and does not depend on them.
    """
    if measured.get("mode") != "full" or "query" not in measured:
        raise RagError("--refresh-query updates a full run's benchmarks.json; run `rag bench` first")
    started = time.perf_counter()
    bbc_questions = list(load_span_questions(BBC_QUESTIONS, bbc).questions)
    seed_questions = [q.question for q in load_questions(seeds / "questions.jsonl").questions]
    query = measure_query(seeds, seed_questions, bbc, bbc_questions, quick=False, log=log)
    query["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    query["seconds"] = round(time.perf_counter() - started, 1)
    return {**measured, "query": query}


def refresh_index(
    measured: dict[str, Any], *, bbc: Path, seeds: Path = Path("seeds"), log: Callable[[str], None] = print
) -> dict[str, Any]:
    """`measured` (a full run's JSON) with its index build and process measures taken again, and
    stamped as such: for a change to what an index holds, which moves those and not the encoder
    comparison, the peers (their comparison builds the retrieval index alone) or the scale table.
    """
    from rag.bench import bench_index
    from rag.bench_process import bench_processes

    if measured.get("mode") != "full" or "index" not in measured:
        raise RagError("--refresh-index updates a full run's benchmarks.json; run `rag bench` first")
    started = time.perf_counter()
    question = load_span_questions(BBC_QUESTIONS, bbc).questions[0].question
    log("index build: whole pipeline vs raw encode ...")
    index = bench_index(bbc)
    index["seeds"] = bench_index(seeds)
    log("processes: peak memory and cold start ...")
    process = bench_processes(bbc, question)
    index["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    index["seconds"] = round(time.perf_counter() - started, 1)
    return {**measured, "index": index, "process": process}


def _passage_texts(corpus: Path) -> list[str]:
    """The chunker's passages of CORPUS, as the index holds them (for the encoder comparison)."""
    from embeddings.tokens import default_counter
    from rag.chunking import Chunker
    from rag.documents import load_corpus

    settings = PipelineSettings()
    chunker = Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
    return [p.text for a in load_corpus(corpus).articles for p in chunker.split(a.doc_id, a.text)]
