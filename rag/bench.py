"""Benchmarks measured in one process, so the ratios compare like with like on a noisy machine."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from embeddings.encoder import SentenceTransformerEncoder
from embeddings.tokens import default_counter
from rag.chunking import Chunker
from rag.corpus_index import CorpusIndex
from rag.indexing import sync_index
from rag.pipeline import PipelineSettings


def bench_index(corpus: Path, settings: PipelineSettings | None = None) -> dict[str, Any]:
    """Whole index build (read, clean, chunk, embed, store) vs raw encode of the same passages."""
    settings = settings or PipelineSettings()
    encoder = SentenceTransformerEncoder()
    encoder.encode(["warm up the model before timing"])
    chunker = Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        started = time.perf_counter()
        report = sync_index(corpus, Path(tmp) / "index", encoder=encoder, chunker=chunker)
        pipeline_s = time.perf_counter() - started
        index = CorpusIndex.open(Path(tmp) / "index")
        texts = [p.text for p in index.store.all_passages()]
        index.close()
    started = time.perf_counter()
    encoder.model.encode(texts, batch_size=encoder.batch_size, show_progress_bar=False)
    raw_s = time.perf_counter() - started
    return {
        "corpus": str(corpus),
        "articles": report.articles,
        "passages": report.passages,
        "pipeline_s": round(pipeline_s, 3),
        "raw_encode_s": round(raw_s, 3),
        "pipeline_passages_per_s": round(report.passages / pipeline_s, 2),
        "raw_encode_passages_per_s": round(len(texts) / raw_s, 2),
        "ratio": round((report.passages / pipeline_s) / (len(texts) / raw_s), 3),
    }
