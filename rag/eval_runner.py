"""Run question sets through the same pipeline the app uses, and score the results."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rag.chunking import Passage
from rag.errors import RagError
from rag.evaluation import (
    Question,
    exact_match,
    f1,
    load_question_file,
    score_record,
    separation_auc,
    summarize,
)
from rag.manifest import atomic_write_bytes
from rag.pipeline import PipelineSettings, QAPipeline
from rag.retrieval import Hit
from rag.squad import SquadQuestion, SquadSet, load_squad, sample_questions, unanswerable_twin

RETRIEVE_K = 10  # hit@10 needs ten passages; the reader reads the first `read_k` of them


def run_questions(qa: QAPipeline, questions: Sequence[Question], *, progress: bool = False) -> dict[str, Any]:
    """Ask every question end to end; returns the summary with `per_question` records."""
    records = []
    for question in tqdm(questions, desc="questions", disable=not progress):
        records.append(ask_one(qa, question))
    return summarize(records)


def ask_one(qa: QAPipeline, question: Question) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        hits = qa.retrieve(question.question, k=max(RETRIEVE_K, qa.settings.read_k))
        answer = qa.answer_from_hits(question.question, hits[: qa.settings.read_k])
    except RagError as exc:  # a bad question in the file is scored as an abstention, and said why
        record = score_record(question, None, 0.0, True, [], None)
        record["error"] = str(exc)
        record["candidates"] = []
        return record
    latency = (time.perf_counter() - started) * 1000
    top = answer.text or (answer.alternatives[0].text if answer.alternatives else None)
    record = score_record(
        question,
        answer.text,
        answer.score,
        answer.text is None,
        [h.passage.text for h in hits],
        round(latency, 2),
        top_prediction=top,
    )
    record["doc_id"] = answer.doc_id
    # What the app and `rag ask` list, best first: the answer (when given) and the other candidates.
    record["candidates"] = [t for t in (answer.text, *(a.text for a in answer.others)) if t]
    return record


def squad_corpus(squad: SquadSet, cache_root: Path | None = None) -> Path:
    """Write each SQuAD article as one .txt file (title line, blank line, paragraphs) once."""
    digest = hashlib.sha256("".join(d.doc_id for d in squad.documents).encode()).hexdigest()[:12]
    root = cache_root or Path(os.environ.get("RAG_INDEX_HOME") or Path.home() / ".cache" / "rag-news-qa")
    folder = root / "corpora" / f"squad-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    for doc in squad.documents:
        path = folder / f"{_safe_name(doc.doc_id)}.txt"
        data = doc.text.encode("utf-8")
        if not path.exists() or path.read_bytes() != data:
            atomic_write_bytes(path, data)
    return folder


def _safe_name(doc_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id)[:120]


def reader_alone(
    qa: QAPipeline, questions: Sequence[SquadQuestion], *, progress: bool = False
) -> dict[str, Any]:
    """The reader given each question's own paragraph: tells reading errors from retrieval errors.

    Each question is also read against its paragraph less the answer's sentence
    (`rag.squad.unanswerable_twin`): `no_answer_auc` is how well the reader's top score tells the
    paragraph that answers from the one that no longer does (1.0 always, 0.5 chance).
    """
    ems, f1s, latencies, answered, unanswered = [], [], [], [], []
    for q in tqdm(questions, desc="reader alone", disable=not progress):
        started = time.perf_counter()
        answers = qa.reader.read(q.question, [_hit(q, q.paragraph_text)])
        latencies.append((time.perf_counter() - started) * 1000)
        prediction = answers[0].text if answers else None
        ems.append(exact_match(prediction, q.answers))
        f1s.append(f1(prediction, q.answers))
        answered.append(answers[0].score if answers else 0.0)
        twin = unanswerable_twin(q)
        if twin is not None:
            cut = qa.reader.read(q.question, [_hit(q, twin)])
            unanswered.append(cut[0].score if cut else 0.0)
    n = len(questions)
    return {
        "n_questions": n,
        "exact_match": sum(ems) / n if n else None,
        "f1": sum(f1s) / n if n else None,
        "latency_ms_p50": sorted(latencies)[n // 2] if n else None,
        "no_answer_auc": separation_auc(answered, unanswered),
        "no_answer_pairs": len(unanswered),
    }


def _hit(q: SquadQuestion, text: str) -> Hit:
    return Hit(Passage(q.doc_id, 0, len(text), text), q.doc_id, 1.0, 1)


@dataclass(frozen=True)
class EvalResult:
    summary: dict[str, Any]  # exactly the documented `rag eval --json` shape
    problems: tuple[str, ...] = ()  # malformed lines of the question file, by line number
    reader_alone: dict[str, Any] | None = None  # SQuAD only
    corpus: Path | None = None


def is_squad_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".zip", ".json", ".json.gz"))


def evaluate_file(
    path: Path,
    *,
    corpus: Path | None = None,
    index_dir: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    settings: PipelineSettings | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
) -> EvalResult:
    """`rag eval`: a JSON Lines question file over `corpus`, or a SQuAD file over its own articles."""
    if not path.is_file():
        raise RagError(f"question file not found: '{path}'")
    if is_squad_file(path):
        squad = load_squad(path)
        chosen = sample_questions(squad.questions, limit, seed) if limit else list(squad.questions)
        corpus = squad_corpus(squad)
        qa = QAPipeline.from_corpus(
            corpus, index_dir=index_dir, settings=settings, progress=progress, log=log
        )
        summary = run_questions(qa, [q.as_question() for q in chosen], progress=progress)
        return EvalResult(summary, (), reader_alone(qa, chosen, progress=progress), corpus)
    if corpus is None:
        raise RagError("--corpus is required for a JSON Lines question file")
    load = load_question_file(path, corpus)
    chosen_q = list(load.questions)
    if limit and limit < len(chosen_q):
        chosen_q = random.Random(seed).sample(sorted(chosen_q, key=lambda q: q.id), limit)
    qa = QAPipeline.from_corpus(corpus, index_dir=index_dir, settings=settings, progress=progress, log=log)
    return EvalResult(run_questions(qa, chosen_q, progress=progress), load.problems, None, corpus)
