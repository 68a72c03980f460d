"""An index run meant to be killed: `python -m rag.crashtest_worker CORPUS INDEX_DIR [DELAY_S]`.

It runs the real `sync_index` with a test double for the embedder (`HashEncoder`: no model to
load, so a run starts in a second), sleeping DELAY_S per encoder call so that a SIGKILL can land
in every phase of a build: reading, chunking, embedding, writing files, the manifest swap. It
prints one JSON line with what the run did. The reliability harnesses (rag.crashtest,
rag.concurrency, rag.corruption, rag.fuzz) share the test double from here.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from embeddings.encoder import normalize_rows
from embeddings.tokens import default_counter
from rag.chunking import Chunker

HARNESS_CHUNK_SIZE = 60  # small passages: more of them, so a build has more moments to kill


class HashEncoder:
    """TEST DOUBLE, not a language model: bag-of-hashed-words unit vectors, deterministic and
    instant (the same scheme as the test suite's FakeEncoder), so harnesses need no model."""

    model_id = "fake-hash-encoder"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0
        self.texts_encoded = 0

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                vectors[row, bucket % self.dim] += 1.0
        return normalize_rows(vectors)


class SlowHashEncoder(HashEncoder):
    """TEST DOUBLE: `HashEncoder` that sleeps `delay_s` per call, to stretch the embedding phase."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        self.delay_s = delay_s

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        time.sleep(self.delay_s)
        return super().encode(texts, show_progress=show_progress)


class TokenizingHashEncoder(HashEncoder):
    """TEST DOUBLE: runs the embedder's own word-piece tokenizer on every text first (what the
    real model does, and where odd input such as a lone surrogate fails), then hashes; no torch."""

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        default_counter().count(list(texts))
        return super().encode(texts, show_progress=show_progress)


def harness_chunker() -> Chunker:
    """The chunker every harness index uses (the real tokenizer, small passages)."""
    return Chunker(default_counter(), chunk_size=HARNESS_CHUNK_SIZE, chunk_overlap=1)


def main(argv: list[str]) -> int:
    from rag.errors import RagError
    from rag.indexing import sync_index

    if len(argv) not in (2, 3):
        print("usage: python -m rag.crashtest_worker CORPUS INDEX_DIR [DELAY_S]", file=sys.stderr)
        return 2
    corpus, index_dir = Path(argv[0]), Path(argv[1])
    delay = float(argv[2]) if len(argv) == 3 else 0.0
    started = time.time()
    try:
        report = sync_index(
            corpus,
            index_dir,
            encoder=SlowHashEncoder(delay),
            chunker=harness_chunker(),
            log=lambda message: print(message, file=sys.stderr, flush=True),
        )
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {
        "articles": report.articles,
        "passages": report.passages,
        "embedded": report.embedded_passages,
        "started_at": started,
        "finished_at": time.time(),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
