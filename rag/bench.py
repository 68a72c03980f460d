"""Index throughput and query latency; `rag bench` (rag.bench_suite) runs them with the rest."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.encoder import SentenceTransformerEncoder
from embeddings.factory import make_encoder
from embeddings.tokens import default_counter
from rag.chunking import Chunker
from rag.corpus_index import CorpusIndex
from rag.documents import check_readable
from rag.errors import RagError
from rag.indexing import sync_index
from rag.pipeline import PipelineSettings, QAPipeline
from rag.reader import load_spacy


def bench_index(corpus: Path, settings: PipelineSettings | None = None) -> dict[str, Any]:
    """Whole index build (read, clean, chunk, embed, store) vs raw encode of the same passages.

    Built twice: the retrieval index alone (`ratio`: what #2's >= 0.9x target measures, the cost
    around the encoder), then as the product builds it, with each passage's reader data too
    (`with_reading`: spaCy parses and sentence vectors, rag/reading.py), which moves the reader's
    per-passage work from question time to index time.
    """
    check_readable(corpus)  # before loading the model: a bad corpus is said at once
    settings = settings or PipelineSettings()
    encoder = make_encoder(settings.encoder)  # what the product indexes with
    raw = SentenceTransformerEncoder()  # the reference: plain sentence-transformers
    for warm in (encoder, raw):
        warm.encode(["warm up the model before timing"])
    chunker = Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        started = time.perf_counter()
        report = sync_index(corpus, Path(tmp) / "index", encoder=encoder, chunker=chunker, reading=False)
        pipeline_s = time.perf_counter() - started
        index = CorpusIndex.open(Path(tmp) / "index")
        texts = [p.text for p in index.store.all_passages()]
        index.close()
        load_spacy()  # loaded before timing, as the encoder was warmed
        started = time.perf_counter()
        sync_index(corpus, Path(tmp) / "full", encoder=encoder, chunker=chunker)
        full_s = time.perf_counter() - started
    started = time.perf_counter()
    raw.model.encode(texts, batch_size=raw.batch_size, show_progress_bar=False)
    raw_s = time.perf_counter() - started
    return {
        "corpus": str(corpus),
        "encoder": settings.encoder,
        "articles": report.articles,
        "passages": report.passages,
        "pipeline_s": round(pipeline_s, 3),
        "raw_encode_s": round(raw_s, 3),
        "pipeline_passages_per_s": round(report.passages / pipeline_s, 2),
        "raw_encode_passages_per_s": round(len(texts) / raw_s, 2),
        "ratio": round((report.passages / pipeline_s) / (len(texts) / raw_s), 3),
        "with_reading": {
            "pipeline_s": round(full_s, 3),
            "pipeline_passages_per_s": round(report.passages / full_s, 2),
            "ratio": round((report.passages / full_s) / (len(texts) / raw_s), 3),
        },
    }


def bench_query(
    corpus: Path, questions: list[str], *, warmup: int = 5, settings: PipelineSettings | None = None
) -> dict[str, Any]:
    """Per-question latency of retrieve, read and total, after `warmup` questions."""
    if not questions:
        raise RagError("no questions to time")
    qa = QAPipeline.from_corpus(corpus, settings=settings)
    if len(questions) <= warmup:
        raise RagError(f"need more than {warmup} questions to time (the first {warmup} warm up)")
    for question in questions[:warmup]:
        qa.ask(question)
    timings: dict[str, list[float]] = {"retrieve": [], "read": [], "total": []}
    for question in questions[warmup:]:
        answer = qa.ask(question)
        for key in timings:
            timings[key].append(answer.timings_ms[key])
    result: dict[str, Any] = {"corpus": str(corpus), "questions": len(questions) - warmup, "warmup": warmup}
    for key, values in timings.items():
        result[key] = {
            "p50_ms": round(float(np.percentile(values, 50)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
        }
    return result
