"""Peers side by side: our retriever against Haystack 2.x and txtai, in one process, on the same passages.

What a user would otherwise assemble from the same parts: the same all-MiniLM-L6-v2 folder, the
same passages (our chunker's, read back from our store, so nobody is judged on chunking), the
same questions and the same hit@k rule (rag.evaluation: the rank of the first passage that
contains a gold answer). Queries are interleaved across systems, one question at a time, so a
noisy shared machine slows every system alike. The peers live in the optional `bench` extra.

    >>> load = load_span_questions(Path("benchmarks/bbc_questions.jsonl"), BBC_ROOT)
    >>> result = bench_peers(BBC_ROOT, load.questions, limit_articles=500)
    >>> print(format_peers(result))
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from embeddings.encoder import Encoder
from embeddings.factory import make_encoder
from embeddings.model_files import verified_model_dir
from embeddings.tokens import default_counter
from rag.chunking import Chunker
from rag.corpus_index import CorpusIndex
from rag.documents import discover
from rag.errors import RagError
from rag.evaluation import Question, load_question_file, score_record, summarize
from rag.indexing import sync_index
from rag.pipeline import PipelineSettings, QAPipeline

PEERS = ("haystack", "txtai")
BENCH_EXTRA = "pip install 'rag-news-qa[bench]'"
BBC_ROOT = Path.home() / ".cache" / "rag-news-qa" / "corpora" / "bbc-news" / "bbc"
BBC_QUESTIONS = Path(__file__).resolve().parents[1] / "benchmarks" / "bbc_questions.jsonl"
# Warm-up questions are not in any question set: our pipeline caches question vectors, so a timed
# question must be one it has never seen.
WARMUP_QUESTIONS = (
    "What did the company report for the last quarter?",
    "Who won the match on Saturday afternoon?",
    "When will the new rules take effect?",
    "How many people lost their jobs last year?",
    "Which film won the most awards this season?",
)


@dataclass
class System:
    """One retrieval system under test: what was configured, what building it cost, how it searches."""

    name: str
    setup: str
    version: str
    load_s: float  # model load + first encode, kept out of build_s for every system
    build_s: float
    passages: int
    search: Callable[[str], list[str]]  # question -> top-k passage texts, best first


def bench_peers(
    corpus: Path,
    questions: Sequence[Question],
    *,
    k: int = 5,
    limit_articles: int | None = None,
    extras: bool = True,
    peers: Sequence[str] = PEERS,
    encoder: Encoder | None = None,
    seed: int = 0,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, dict[str, Any]]:
    """Index build time, single-question latency and hit@k of ours, Haystack and txtai.

    Returns {"ours", "haystack", "txtai"} (plus "haystack_bm25" and "txtai_hybrid" with `extras`),
    each {"setup", "version", "passages", "load_s", "build_s", "p50_ms", "p95_ms", "hit_at_1",
    "hit_at_3", "hit_at_5", "mrr", ...}; a peer row also has "vs_ours" (peer / ours for build_s and
    p50_ms: above 1 means ours is faster). A peer whose package is missing is {"skipped": reason}.
    `limit_articles` indexes a seeded subset: the questions' own articles first (matched by
    `doc_id`, relative to `corpus`), then others; questions about articles left out are dropped.
    `encoder` replaces our MiniLM encoder (for tests; the peers always load the MiniLM folder).
    """
    if k < 5:
        raise ValueError(f"k must be >= 5 (hit@5 is reported), got {k}")
    unknown = set(peers) - set(PEERS)
    if unknown:
        raise ValueError(f"unknown peers {sorted(unknown)}; choose from {PEERS}")
    chosen = _unique_questions(questions, log)
    with tempfile.TemporaryDirectory(prefix="rag-bench-peers-") as tmp:
        work = Path(tmp)
        if limit_articles is not None:
            corpus, chosen = subset_corpus(corpus, chosen, limit_articles, work / "corpus", seed=seed)
            log(f"subset: {limit_articles} articles, {len(chosen)} questions about them")
        if not chosen:
            raise RagError("no questions to ask: none left after choosing the articles")
        ours, qa, texts = _build_ours(corpus, work / "index", k, encoder, log)
        try:
            systems = [ours]
            result: dict[str, dict[str, Any]] = {}
            for name in peers:
                built, skipped = _build_peer(name, texts, k, extras, log)
                systems.extend(built)
                if skipped:
                    result[name] = {"skipped": skipped}
            for system in systems:  # said now, so a run cut short still reports its builds
                log(f"{system.name}: load {system.load_s:.1f} s, build {system.build_s:.1f} s")
            log(f"asking {len(chosen)} questions of {len(systems)} systems")
            runs = measure(systems, chosen, k)
        finally:
            qa.close()
    for system in systems:
        result[system.name] = {
            "setup": system.setup,
            "version": system.version,
            "passages": system.passages,
            "load_s": round(system.load_s, 3),
            "build_s": round(system.build_s, 3),
            **runs[system.name],
        }
    for name, row in result.items():
        if name != "ours" and "skipped" not in row:
            row["vs_ours"] = {
                "build": _ratio(row["build_s"], result["ours"]["build_s"]),
                "p50": _ratio(row["p50_ms"], result["ours"]["p50_ms"]),
            }
    order = ["ours", "haystack", "haystack_bm25", "txtai", "txtai_hybrid"]
    return {name: result[name] for name in order if name in result}


def _ratio(peer: float | None, ours: float | None) -> float | None:
    return round(peer / ours, 4) if peer is not None and ours else None


def _unique_questions(questions: Sequence[Question], log: Callable[[str], None]) -> list[Question]:
    unique = list({q.question.strip(): q for q in reversed(questions)}.values())[::-1]
    if len(unique) < len(questions):  # a repeat would hit our question-vector cache
        log(f"asking each question text once: {len(questions) - len(unique)} repeats left out")
    return unique


def subset_corpus(
    corpus: Path, questions: Sequence[Question], limit: int, dest: Path, *, seed: int = 0
) -> tuple[Path, list[Question]]:
    """Copy `limit` articles of `corpus` to `dest`: the questions' own articles first, then a seeded
    sample of the rest. Returns `dest` and the questions whose `doc_id` (if any) was copied."""
    if limit < 1:
        raise ValueError(f"limit_articles must be >= 1, got {limit}")
    files = [p.relative_to(corpus).as_posix() for p in discover(corpus)]
    rng = random.Random(seed)
    asked = sorted({q.doc_id for q in questions if q.doc_id} & set(files))
    chosen = rng.sample(asked, limit) if len(asked) > limit else asked
    rest = sorted(set(files) - set(asked))
    chosen += rng.sample(rest, min(limit - len(chosen), len(rest)))
    for rel in chosen:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus / rel, dest / rel)
    kept = set(chosen)
    return dest, [q for q in questions if q.doc_id is None or q.doc_id in kept]


def questions_under(questions: Sequence[Question], questions_root: Path, corpus: Path) -> list[Question]:
    """The questions whose article (`questions_root / doc_id`) lies inside `corpus` (e.g. bbc/business),
    with `doc_id` made relative to `corpus`."""
    inside = corpus.resolve()
    kept = []
    for q in questions:
        path = (questions_root / q.doc_id).resolve() if q.doc_id else None
        if path is not None and path.is_relative_to(inside):
            kept.append(replace(q, doc_id=path.relative_to(inside).as_posix()))
    return kept


# --- the systems -------------------------------------------------------------------------------


def _build_ours(
    corpus: Path, index_dir: Path, k: int, encoder: Encoder | None, log: Callable[[str], None]
) -> tuple[System, QAPipeline, list[str]]:
    """Our whole pipeline build (read, clean, chunk, embed, store) and the product's retriever."""
    settings = PipelineSettings(reader="heuristic")  # retrieval settings are the defaults; no reader runs
    started = time.perf_counter()
    encoder = encoder or make_encoder(settings.encoder)
    encoder.encode(["warm up the model before timing"])
    load_s = time.perf_counter() - started
    chunker = Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
    log("ours: indexing")
    # The retrieval index alone: the peers build none of the reader's data (rag/reading.py) either.
    report = sync_index(corpus, index_dir, encoder=encoder, chunker=chunker, reading=False)
    qa = QAPipeline(CorpusIndex.open(index_dir), encoder, settings, report)
    texts = [p.text for p in qa.index.store.all_passages()]
    describe = getattr(qa.index.vectors, "describe", None)  # the FAISS kind depends on the corpus size
    faiss_kind = describe()["factory"] if describe else "Flat"
    runtime = type(getattr(encoder, "inner", encoder)).__name__
    setup = (
        "rag-news-qa: sync_index without reader data (read, clean, chunk "
        f"{settings.chunk_size} word pieces, embed "
        f"{encoder.model_id} with {runtime}, SQLite FTS5 + FAISS {faiss_kind} IP) then QAPipeline.retrieve "
        f"({settings.fusion} fusion, keyword_weight {settings.keyword_weight}, {settings.candidates} "
        "candidates each), question vectors cached"
    )

    def search(question: str) -> list[str]:
        return [hit.passage.text for hit in qa.retrieve(question, k)]

    system = System("ours", setup, _version("rag-news-qa"), load_s, report.seconds, report.passages, search)
    return system, qa, texts


def _build_peer(
    name: str, texts: list[str], k: int, extras: bool, log: Callable[[str], None]
) -> tuple[list[System], str | None]:
    """The peer's systems, or none and the reason it was skipped (its package is not installed)."""
    try:
        if name == "haystack":
            return _build_haystack(texts, k, extras, log), None
        return _build_txtai(texts, k, extras, log), None
    except ImportError as exc:
        package = "haystack-ai / sentence-transformers-haystack" if name == "haystack" else "txtai"
        reason = f"{package} not installed ({exc}); {BENCH_EXTRA}"
        log(f"{name}: skipped: {reason}")
        return [], reason


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _build_haystack(texts: list[str], k: int, extras: bool, log: Callable[[str], None]) -> list[System]:
    os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"  # read when haystack is first imported
    from haystack import Document
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.telemetry import _telemetry
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    if _telemetry.telemetry is not None:  # imported earlier by someone without the variable set
        log("haystack: turning off its telemetry (it was imported before HAYSTACK_TELEMETRY_ENABLED)")
        _telemetry.telemetry = None
    options: dict[str, Any] = {
        "model": str(verified_model_dir()),
        "device": ComponentDevice.from_str("cpu"),
        "token": None,
        "local_files_only": True,
        "progress_bar": False,
        "normalize_embeddings": True,
    }
    started = time.perf_counter()
    doc_embedder = SentenceTransformersDocumentEmbedder(**options)
    doc_embedder.warm_up()
    doc_embedder.run([Document(content="warm up the model before timing")])
    text_embedder = SentenceTransformersTextEmbedder(**options)
    text_embedder.warm_up()
    load_s = time.perf_counter() - started
    # Haystack derives ids from content and rejects duplicates: give each passage its row number.
    docs = [Document(id=str(i), content=text) for i, text in enumerate(texts)]
    log("haystack: embedding")
    started = time.perf_counter()
    embedded = doc_embedder.run(docs)["documents"]
    embedded_at = time.perf_counter()
    store = InMemoryDocumentStore()
    store.write_documents(embedded)
    built_at = time.perf_counter()
    dense = InMemoryEmbeddingRetriever(document_store=store, top_k=k)
    bm25 = InMemoryBM25Retriever(document_store=store, top_k=k)

    def dense_search(question: str) -> list[str]:
        vector = text_embedder.run(text=question)["embedding"]
        return [d.content or "" for d in dense.run(query_embedding=vector, top_k=k)["documents"]]

    def bm25_search(question: str) -> list[str]:
        return [d.content or "" for d in bm25.run(query=question, top_k=k)["documents"]]

    versions = f"haystack-ai {_version('haystack-ai')}, sentence-transformers-haystack " + _version(
        "sentence-transformers-haystack"
    )
    dense_setup = (
        f"{versions}: SentenceTransformersDocumentEmbedder(model=<local MiniLM>, cpu, batch_size=32, "
        "normalize_embeddings=True) -> InMemoryDocumentStore (dot product); query: "
        "SentenceTransformersTextEmbedder -> InMemoryEmbeddingRetriever, components called directly "
        "(no Pipeline); build_s = embed + write our passages"
    )
    bm25_setup = f"{versions}: InMemoryBM25Retriever (BM25L), same store; build_s = write_documents only"
    systems = [
        System("haystack", dense_setup, versions, load_s, built_at - started, len(texts), dense_search)
    ]
    if extras:
        bm25_s = built_at - embedded_at
        systems.append(System("haystack_bm25", bm25_setup, versions, 0.0, bm25_s, len(texts), bm25_search))
    return systems


def _build_txtai(texts: list[str], k: int, extras: bool, log: Callable[[str], None]) -> list[System]:
    from txtai import Embeddings

    # txtai builds an approximate IVF index above 5,000 rows unless told: compare exact with exact.
    config: dict[str, Any] = {
        "path": str(verified_model_dir()),
        "backend": "faiss",
        "faiss": {"components": "IDMap,Flat"},
        "content": True,
    }
    txtai_version = f"txtai {_version('txtai')}"
    models: dict[str, Any] = {}  # txtai's model cache: the hybrid index reuses the loaded model
    variants = [("txtai", False)] + ([("txtai_hybrid", True)] if extras else [])
    systems = []
    for name, hybrid in variants:
        started = time.perf_counter()
        embeddings = Embeddings({**config, "hybrid": hybrid}, models=models)
        embeddings.transform("warm up the model before timing")
        load_s = time.perf_counter() - started
        log(f"{name}: indexing")
        started = time.perf_counter()
        embeddings.index([(i, text, None) for i, text in enumerate(texts)])
        build_s = time.perf_counter() - started
        setup = (
            f"{txtai_version} Embeddings(path=<local MiniLM> (its default transformers mean pooling, "
            f"encodebatch 32), backend=faiss IDMap,Flat (exact), content=True"
            f"{', hybrid=True (+ its BM25, default weights)' if hybrid else ''}); build_s = embed + index"
        )

        def search(question: str, embeddings: Any = embeddings) -> list[str]:
            return [str(row["text"]) for row in embeddings.search(question, k)]

        systems.append(System(name, setup, txtai_version, load_s, build_s, len(texts), search))
    return systems


# --- measuring ---------------------------------------------------------------------------------


def measure(systems: Sequence[System], questions: Sequence[Question], k: int) -> dict[str, dict[str, Any]]:
    """Ask every question of every system, one at a time, after warm-up; score each with score_run.

    Systems take turns per question, starting with a different one each time, so background load
    and cache effects fall on all of them alike.
    """
    for system in systems:
        for warm in WARMUP_QUESTIONS:
            system.search(warm)
    retrieved: dict[str, list[list[str]]] = {s.name: [] for s in systems}
    latencies: dict[str, list[float]] = {s.name: [] for s in systems}
    for i, question in enumerate(questions):
        for j in range(len(systems)):
            system = systems[(i + j) % len(systems)]
            started = time.perf_counter()
            texts = system.search(question.question)
            latencies[system.name].append((time.perf_counter() - started) * 1000)
            if len(texts) > k:
                raise RagError(f"{system.name} returned {len(texts)} passages for k={k}")
            retrieved[system.name].append(texts)
    return {s.name: score_run(questions, retrieved[s.name], latencies[s.name], k) for s in systems}


def score_run(
    questions: Sequence[Question], retrieved: Sequence[Sequence[str]], latencies_ms: Sequence[float], k: int
) -> dict[str, Any]:
    """hit@1/3/5 (and @10 when k >= 10), MRR and latency percentiles, by our evaluation's rules.

    Over answerable questions, a hit at rank r is the first retrieved passage that contains a gold
    answer (rag.evaluation.contains_answer); MRR counts ranks up to k.
    """
    if not len(questions) == len(retrieved) == len(latencies_ms):
        raise ValueError(
            f"need one result per question: {len(questions)} questions, {len(retrieved)} results, "
            f"{len(latencies_ms)} latencies"
        )
    records = [
        score_record(q, None, None, True, list(texts), ms)
        for q, texts, ms in zip(questions, retrieved, latencies_ms, strict=True)
    ]
    summary = summarize(records)
    row: dict[str, Any] = {
        "questions": summary["n_questions"],
        "answerable": summary["n_answerable"],
        "p50_ms": _round(summary["latency_ms"]["p50"]),
        "p95_ms": _round(summary["latency_ms"]["p95"]),
    }
    for cut, value in summary["hit_at"].items():
        if int(cut) <= k:
            row[f"hit_at_{cut}"] = _round(value, 4)
    row["mrr"] = _round(summary["mrr"], 4)
    return row


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def format_peers(result: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of the rows, then each row's setup line (skipped peers say why)."""
    lines = [
        "| system | passages | build s | p50 ms | p95 ms | hit@3 | hit@5 | build vs ours | p50 vs ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name, row in result.items():
        if "skipped" in row:
            notes.append(f"- {name}: skipped: {row['skipped']}")
            continue
        vs = row.get("vs_ours", {})
        lines.append(
            f"| {name} | {row['passages']} | {row['build_s']:.1f} | {_fmt(row['p50_ms'])} | "
            f"{_fmt(row['p95_ms'])} | {_fmt(row.get('hit_at_3'), 3)} | {_fmt(row.get('hit_at_5'), 3)} | "
            f"{'-' if name == 'ours' else ratio_text(row['build_s'], result['ours']['build_s'])} | "
            f"{_fmt(vs.get('p50'), 2, 'x')} |"
        )
        notes.append(f"- {name}: {row['setup']}")
    return "\n".join([*lines, "", *notes])


def ratio_text(peer: float, ours: float) -> str:
    """peer / ours to 3 significant digits (a BM25-only build is ~0.002x of an embedding one)."""
    if not ours:
        return "-"
    ratio = peer / ours
    return f"{ratio:.2f}x" if ratio >= 0.01 else f"{ratio:.3g}x"


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _load_question_file(path: Path, corpus_root: Path) -> list[Question]:
    load = load_question_file(path, corpus_root)
    for problem in load.problems:
        print(f"{path}: {problem}", file=sys.stderr)
    return list(load.questions)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rag.bench_peers`: the BBC comparison, printed as a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m rag.bench_peers", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="folder to index (default: the BBC root); in a "
                        "sub-folder (bbc/business) only the questions about its articles")  # fmt: skip
    parser.add_argument("--questions", type=Path, default=BBC_QUESTIONS)
    parser.add_argument("--questions-root", type=Path, default=BBC_ROOT,
                        help="folder the questions' doc_id paths are relative to")  # fmt: skip
    parser.add_argument("--limit-articles", type=int, help="index a seeded subset of this many articles")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--no-extras", action="store_true", help="skip Haystack BM25 and txtai hybrid")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    corpus = args.corpus or args.questions_root
    try:
        questions = _load_question_file(args.questions, args.questions_root)
        if corpus.resolve() != args.questions_root.resolve():
            questions = questions_under(questions, args.questions_root, corpus)
        result = bench_peers(corpus, questions, k=args.k, limit_articles=args.limit_articles,
                             extras=not args.no_extras, log=lambda m: print(m, file=sys.stderr))  # fmt: skip
    except (RagError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_peers(result))
    if args.json:
        args.json.write_text(json.dumps({"peers": result}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
