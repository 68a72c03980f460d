"""The question-answering pipeline: corpus -> index -> retrieval (-> reader), one object."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

from embeddings.encoder import CachedEncoder, Encoder
from embeddings.factory import ENCODERS, make_encoder
from embeddings.tokens import default_counter
from rag.answer import Answer, Citation
from rag.chunking import Chunker, crosses_sentences
from rag.corpus_index import CorpusIndex
from rag.followup import Turn, rewrite
from rag.indexing import IndexReport, sync_index
from rag.manifest import default_index_dir
from rag.reader import Reader
from rag.retrieval import Hit, HybridRetriever, check_k, check_question, check_text


@dataclass(frozen=True)
class PipelineSettings:
    """Tunable knobs with the defaults chosen from measurements (docs/EVALUATION.md)."""

    chunk_size: int = 200
    chunk_overlap: int = 1
    fusion: str = "linear"
    keyword_weight: float = 0.6
    candidates: int = 50
    read_k: int = 5  # passages the reader reads
    abstain_threshold: float | None = None  # below it: "the articles don't say"; None: calibrated
    reader: str = "hybrid"  # the best measured (docs/EVALUATION.md, "Readers compared")
    reader_model: str | None = None  # span model folder for "neural"/"hybrid"; default: the shipped one
    # "onnx": the packaged weights on onnxruntime, faster than "torch" for the same vectors (one index
    # serves both); "onnx-int8" has its own index (docs/BENCHMARKS.md)
    encoder: str = "onnx"

    def __post_init__(self) -> None:
        if self.read_k < 1:
            raise ValueError(f"read_k must be >= 1, got {self.read_k}")
        if self.abstain_threshold is not None and not 0.0 <= self.abstain_threshold <= 1.0:
            raise ValueError(f"abstain_threshold must be between 0 and 1, got {self.abstain_threshold}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.reader not in READERS:
            raise ValueError(f"reader must be one of {READERS}, got {self.reader!r}")
        if self.reader != "heuristic" and not self.reader_model:
            from rag.neural_reader import packaged_model

            packaged = packaged_model()
            if packaged is None:
                raise ValueError(f"reader {self.reader!r} needs reader_model, a trained span model folder")
            object.__setattr__(self, "reader_model", str(packaged))

    @property
    def threshold(self) -> float:
        """The abstention threshold in use: the one set, else the one calibrated for the reader."""
        if self.abstain_threshold is not None:
            return self.abstain_threshold
        return CALIBRATED_THRESHOLDS[self.reader]


def _runs_across(answer: Answer) -> bool:
    """True when `answer` runs over a sentence start of the passage it cites."""
    cite = answer.citations[0] if answer.citations else None
    span = cite.answer_span_in_passage if cite else None
    return cite is not None and span is not None and crosses_sentences(cite.passage_text, *span)


READERS = ("heuristic", "neural", "hybrid")
# Per reader, the threshold `rag report` recommends under the abstention policy (docs/EVALUATION.md,
# "Readers compared"); tests/test_defaults.py checks these against docs/evaluation.json.
CALIBRATED_THRESHOLDS = {"heuristic": 0.3, "neural": 0.52, "hybrid": 0.33}
CLOSEST_PASSAGES = 3


class QAPipeline:
    """Index a folder of articles and query it.

    >>> qa = QAPipeline.from_corpus("seeds")
    >>> hits = qa.retrieve("Who leads the jihadists in the camp?", k=5)
    >>> hits[0].title, hits[0].passage.start
    """

    def __init__(
        self,
        index: CorpusIndex,
        encoder: Encoder,
        settings: PipelineSettings | None = None,
        report: IndexReport | None = None,
    ) -> None:
        self.settings = settings or PipelineSettings()
        self.index = index
        # Retrieval and the reader both embed the question; the cache makes that one model call.
        self.encoder: Encoder = encoder if isinstance(encoder, CachedEncoder) else CachedEncoder(encoder)
        self.report = report
        # Readers by (kind, model folder), shared with the views `with_settings` makes.
        self._readers: dict[tuple[str, str | None], Reader] = {}
        self._reader_lock = threading.Lock()
        self.retriever = HybridRetriever(
            index,
            self.encoder,
            fusion=self.settings.fusion,
            keyword_weight=self.settings.keyword_weight,
            candidates=self.settings.candidates,
        )

    @classmethod
    def from_corpus(
        cls,
        corpus: str | Path,
        *,
        index_dir: str | Path | None = None,
        encoder: Encoder | None = None,
        settings: PipelineSettings | None = None,
        chunker: Chunker | None = None,
        progress: bool = False,
        log: Callable[[str], None] = lambda message: None,
        on_progress: Callable[[int, int], None] | None = None,
        rebuild: bool = False,
    ) -> QAPipeline:
        """Build or update the index for `corpus` (only what changed), then open it."""
        corpus = Path(corpus)
        settings = settings or PipelineSettings()
        encoder = encoder or make_encoder(settings.encoder)
        chunker = chunker or Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
        target = Path(index_dir) if index_dir else default_index_dir(corpus)
        report = sync_index(
            corpus,
            target,
            encoder=encoder,
            chunker=chunker,
            progress=progress,
            log=log,
            on_progress=on_progress,
            rebuild=rebuild,
        )
        # sync_index has just checksummed (or written) every file of this generation.
        return cls(CorpusIndex.open(target, verify=False), encoder, settings, report)

    def retrieve(self, question: str, k: int = 5) -> list[Hit]:
        """The k passages that best match `question`, best first."""
        return self.retriever.retrieve(question, k)

    @property
    def reader(self) -> Reader:
        """The answer extractor, loaded on first use (spaCy takes a second)."""
        with self._reader_lock:
            return self._reader_of(self.settings.reader)

    def _reader_of(self, kind: str) -> Reader:
        """The shared reader of this kind (call with the lock held)."""
        key = (kind, self.settings.reader_model if kind != "heuristic" else None)
        if key not in self._readers:
            if kind == "neural":
                from rag.neural_reader import NeuralReader

                self._readers[key] = NeuralReader(str(self.settings.reader_model))
            elif kind == "hybrid":
                from rag.hybrid_reader import HybridReader

                self._readers[key] = HybridReader(self._reader_of("neural"), self._reader_of("heuristic"))
            else:
                from rag.reader import HeuristicReader, load_spacy
                from rag.reading import reading_source

                nlp = load_spacy()
                prepared = reading_source(self.index.store, self.index.manifest, nlp, self.encoder)
                self._readers[key] = HeuristicReader(self.encoder, nlp, prepared=prepared)
        return self._readers[key]

    def with_settings(self, **changes: object) -> QAPipeline:
        """A view of this pipeline with other settings; it shares the index, models and readers.

        Only reading and retrieval knobs can change (`read_k`, `abstain_threshold`, `reader`,
        `reader_model`, `keyword_weight`, `fusion`, `candidates`); chunking and the encoder belong to
        the index.
        """
        fixed = {"chunk_size", "chunk_overlap", "encoder"} & set(changes)
        if fixed:
            raise ValueError(f"{sorted(fixed)} are index settings; rebuild the index to change them")
        view = QAPipeline(self.index, self.encoder, replace(self.settings, **changes), self.report)  # type: ignore[arg-type]
        view._readers, view._reader_lock = self._readers, self._reader_lock
        return view

    def ask(self, question: str, *, k: int | None = None, history: Sequence[Turn] = ()) -> Answer:
        """Answer `question` with a verbatim span of an article, or say the articles don't.

        With `history` (the chat so far, oldest first), a follow-up such as "How old is he?" is
        first rewritten into a self-contained question (rag.followup); `answer.question` is then
        the question actually answered and `answer.interpreted_as` the same rewritten text (None
        when the question was used as asked).

        >>> answer = qa.ask("Who leads the jihadists in the camp?")
        >>> answer.text, answer.citations[0].doc_id
        (<a verbatim span>, <the doc_id it cites>)
        >>> qa.ask("How old is he?", history=[Turn(answer.question, answer.text, answer.sentence)])
        """
        started = time.perf_counter()
        question = check_question(question)
        interpreted: str | None = None
        if history:
            from rag.reader import load_spacy  # cached: the heuristic reader shares this model

            for turn in history:
                for text in (turn.question, turn.answer, turn.sentence):
                    check_text(text or "", "the chat history")

            rewritten = rewrite(question, history, load_spacy())
            if rewritten.changed:
                question = interpreted = check_question(rewritten.text)
        hits = self.retrieve(question, k=check_k(self.settings.read_k if k is None else k))
        retrieved = time.perf_counter()
        answer = self.answer_from_hits(question, hits)
        done = time.perf_counter()
        timings = {
            "retrieve": round((retrieved - started) * 1000, 2),
            "read": round((done - retrieved) * 1000, 2),
            "total": round((done - started) * 1000, 2),
        }
        return replace(answer, timings_ms=timings, interpreted_as=interpreted)

    def answer_from_hits(self, question: str, hits: Sequence[Hit]) -> Answer:
        """Read `hits` and apply the abstention threshold. An answer that runs from one sentence
        into the next (a span model's artifact) is never given; it keeps its part in the scores
        of the answers it overlaps (rag.hybrid_reader pools them)."""
        answers = self.reader.read(question, hits) if hits else []
        candidates = list(islice((a for a in answers if not _runs_across(a)), 4))  # the best, 3 more
        if candidates and candidates[0].score >= self.settings.threshold:
            return replace(candidates[0], alternatives=tuple(candidates[1:4]))
        closest = tuple(
            Citation(h.passage.doc_id, h.title, h.passage.start, h.passage.end, h.passage.text)
            for h in hits[:CLOSEST_PASSAGES]
        )
        top_score = candidates[0].score if candidates else 0.0
        return Answer(question, None, top_score, citations=closest, alternatives=tuple(candidates[:3]))

    def close(self) -> None:
        self.index.close()
