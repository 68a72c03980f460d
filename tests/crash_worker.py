"""A `sync_index` run to be killed: `python -m tests.crash_worker CORPUS INDEX_DIR [DELAY_S]`.

Uses the fake encoder (no model load), sleeping DELAY_S per encoder call so that a SIGKILL can
land in every phase of a build: reading, chunking, embedding, writing files, the manifest swap.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from embeddings.tokens import default_counter
from rag.chunking import Chunker
from rag.indexing import sync_index
from tests.conftest import FakeEncoder


class SlowFakeEncoder(FakeEncoder):
    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        time.sleep(self.delay_s)
        return super().encode(texts, show_progress=show_progress)


CHUNKER = Chunker(default_counter(), chunk_size=60, chunk_overlap=1)


def main() -> None:
    corpus, index_dir = Path(sys.argv[1]), Path(sys.argv[2])
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    report = sync_index(corpus, index_dir, encoder=SlowFakeEncoder(delay), chunker=CHUNKER)
    print(report.articles, report.passages, flush=True)


if __name__ == "__main__":
    main()
