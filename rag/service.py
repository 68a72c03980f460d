"""One corpus served to many chat sessions: a shared pipeline that uploads refresh in place.

The app keeps one `SharedCorpus` per corpus folder (Streamlit's `cache_resource`), so every
browser session uses the same models and index. A refresh builds the next index generation
while questions are still answered from the current one, then swaps the pipeline in one
assignment; a session that is in the middle of a question finishes on the generation it began.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from embeddings.encoder import Encoder
from embeddings.factory import make_encoder
from rag.indexing import IndexReport
from rag.pipeline import PipelineSettings, QAPipeline


@dataclass(frozen=True)
class CorpusInfo:
    """What the sidebar shows about the loaded corpus."""

    corpus: Path
    index_dir: Path
    articles: int
    passages: int
    updated_at: datetime | None
    skipped: tuple[tuple[str, str], ...]  # (doc_id, reason)
    duplicates: int


class SharedCorpus:
    """A corpus folder, its index and one pipeline, safe to share across threads."""

    def __init__(
        self,
        corpus: str | Path,
        *,
        index_dir: str | Path | None = None,
        encoder: Encoder | None = None,
        settings: PipelineSettings | None = None,
    ) -> None:
        self.corpus = Path(corpus)
        self._index_dir = index_dir
        self._encoder = encoder
        self._settings = settings
        self._refresh_lock = threading.Lock()
        self._pipeline = self._build(None, rebuild=False, on_progress=None)

    @property
    def pipeline(self) -> QAPipeline:
        """The current pipeline; take it once per question and use that object throughout."""
        return self._pipeline

    def refresh(
        self, *, rebuild: bool = False, on_progress: Callable[[int, int], None] | None = None
    ) -> IndexReport:
        """Index what changed in the folder (or everything, with `rebuild`) and swap it in."""
        with self._refresh_lock:
            pipeline = self._build(self._pipeline, rebuild=rebuild, on_progress=on_progress)
            self._pipeline = pipeline
        assert pipeline.report is not None
        return pipeline.report

    def _build(
        self,
        current: QAPipeline | None,
        *,
        rebuild: bool,
        on_progress: Callable[[int, int], None] | None,
    ) -> QAPipeline:
        encoder = (
            current.encoder
            if current
            else (self._encoder or make_encoder((self._settings or PipelineSettings()).encoder))
        )
        pipeline = QAPipeline.from_corpus(
            self.corpus,
            index_dir=self._index_dir,
            encoder=encoder,
            settings=self._settings,
            on_progress=on_progress,
            rebuild=rebuild,
        )
        if current is not None:  # keep the loaded readers (spaCy, the span model)
            pipeline._readers, pipeline._reader_lock = current._readers, current._reader_lock
        return pipeline

    def warm(self, question: str = "Who is this article about?") -> None:
        """Load everything the first question needs (spaCy, the span model) before it is asked."""
        self._pipeline.ask(question)

    def info(self) -> CorpusInfo:
        pipeline = self._pipeline
        manifest = pipeline.index.manifest
        updated = manifest.get("updated_at")
        skipped = tuple((s["doc_id"], s["reason"]) for s in manifest.get("skipped", []))
        return CorpusInfo(
            corpus=self.corpus,
            index_dir=pipeline.index.index_dir,
            articles=int(manifest["counts"]["articles"]),
            passages=int(manifest["counts"]["passages"]),
            updated_at=datetime.fromisoformat(updated) if updated else None,
            skipped=skipped,
            duplicates=len(manifest.get("duplicates", [])),
        )
