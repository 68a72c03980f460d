"""A synthetic corpus of any size for the scale benchmark, anchored in real passages and vectors.

Encoding a million real passages takes hours on 2 CPU cores, so the scale corpus is derived
from real data by a stated, seeded scheme:

- **Base**: the product's own index of the BBC articles (~6.9k passages, real MiniLM vectors,
  chunked and encoded by `sync_index`; built once and cached like any corpus index).
- **Copies**: copy 0 is the real corpus; copy c >= 1 repeats every article in a seeded order,
  each passage lightly rewritten by `rewrite_text` (words dropped, neighbours swapped, digits
  changed). A copy's vector is `normalize(v + a * w + sigma * g)`: `v` its source passage's
  vector, `w` another random passage's (a ~ U(0, MIX_MAX): topic drift), `g` Gaussian noise, with
  sigma set per copy so that its cosine to `v` is drawn from the cosines *measured* between real
  passages and their encoded rewrites (`rewrite_cosines`): copies are as near their source as a
  light rewrite makes them, no nearer. The first n passages are the same for every n.
- **Queries**: real question vectors (the BBC set, the seeds set, a SQuAD dev sample).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.encoder import Encoder, normalize_rows
from rag.manifest import default_index_dir
from rag.store import PassageStore

ROOT = Path(__file__).resolve().parents[1]
BBC_ROOT = Path.home() / ".cache" / "rag-news-qa" / "corpora" / "bbc-news" / "bbc"
BBC_QUESTIONS = ROOT / "benchmarks" / "bbc_questions.jsonl"
SQUAD_DEV = ROOT.parent / "shared" / "datasets" / "squad-v1.1-dev" / "dev-v1.1.json.zip"
VECTOR_BLOCK = 16_384  # rows per seeded vector block (fixed, so that sizes are nested)
STORE_BLOCK = 20_000  # passages per SQLite transaction: bounds the texts held in memory
REWRITE_DROP, REWRITE_SWAP, REWRITE_NUMBER = 0.04, 0.04, 0.5
MIX_MAX = 0.1
CALIBRATION_SAMPLE = 200
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class ScaleBase:
    """Real passages in id order (articles contiguous) and their encoder vectors."""

    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    vectors: np.ndarray
    articles: list[tuple[int, int]]  # [first row, end row) of each article's passages

    def __post_init__(self) -> None:
        if not self.texts:
            raise ValueError("the base corpus has no passages")
        if len(self.vectors) != len(self.texts):
            raise ValueError(f"got {len(self.vectors)} vectors for {len(self.texts)} passages")

    @classmethod
    def from_passages(
        cls, doc_ids: list[str], titles: list[str], texts: list[str], vectors: np.ndarray
    ) -> ScaleBase:
        starts = [i for i in range(len(doc_ids)) if i == 0 or doc_ids[i] != doc_ids[i - 1]]
        articles = list(zip(starts, [*starts[1:], len(doc_ids)], strict=True))
        return cls(doc_ids, titles, texts, normalize_rows(vectors), articles)

    @classmethod
    def from_index(cls, index_dir: Path) -> ScaleBase:
        """The passages and vectors of a built product index (exact vectors need a flat index)."""
        from rag.corpus_index import CorpusIndex

        index = CorpusIndex.open(index_dir)
        try:
            ids, vectors = index.vectors.export()
            order = np.argsort(ids)
            ids, vectors = ids[order], vectors[order]
            found = index.store.passages([int(i) for i in ids])
        finally:
            index.close()
        rows = [found[int(i)] for i in ids]
        return cls.from_passages(
            [p.doc_id for p, _ in rows], [t for _, t in rows], [p.text for p, _ in rows], vectors
        )


@dataclass(frozen=True)
class ScaleQueries:
    """Real questions and their unit vectors."""

    texts: list[str]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        if not self.texts or len(self.texts) != len(self.vectors):
            raise ValueError(
                f"need one vector per question and >= 1 question, got {len(self.texts)} questions "
                f"and {len(self.vectors)} vectors"
            )


def bbc_base(encoder: Encoder, corpus: Path | None = None) -> ScaleBase:
    """The passages of `corpus` (default: the BBC articles) as the product indexes them.

    Reuses the corpus's own index when it was built with `encoder` and today's chunking; else
    builds one beside it (under `scale/`), so that a differing encoder never rebuilds the
    product's index of the corpus.
    """
    from embeddings.tokens import default_counter
    from rag.chunking import Chunker
    from rag.errors import IndexStateError
    from rag.indexing import sync_index
    from rag.manifest import read_manifest
    from rag.pipeline import PipelineSettings

    corpus = corpus or BBC_ROOT
    settings = PipelineSettings()
    chunker = Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
    index_dir = default_index_dir(corpus)
    try:
        manifest = read_manifest(index_dir, verify=False)
        same_model = manifest["encoder"]["model_id"] == encoder.model_id
        usable = same_model and manifest["chunking"] == chunker.settings
    except (IndexStateError, KeyError):
        usable = False
    if not usable:
        index_dir = index_dir.parent / "scale" / f"base-{index_dir.name}"
    sync_index(corpus, index_dir, encoder=encoder, chunker=chunker)
    return ScaleBase.from_index(index_dir)


def default_queries(encoder: Encoder, *, squad_sample: int = 100, seed: int = 0) -> ScaleQueries:
    """BBC questions + the seeds set + a SQuAD dev sample (~316), vectors cached by content."""
    from rag.evaluation import load_questions
    from rag.squad import load_squad, sample_questions

    # only the questions' text is needed, so the BBC set is read without resolving its answers
    lines = BBC_QUESTIONS.read_text(encoding="utf-8").splitlines()
    texts = [str(json.loads(line)["question"]) for line in lines if line.strip()]
    texts += [q.question for q in load_questions(ROOT / "seeds" / "questions.jsonl").questions]
    squad = load_squad(SQUAD_DEV)
    texts += [q.question for q in sample_questions(squad.questions, squad_sample, seed)]
    return ScaleQueries(texts, _cached_encode(encoder, texts, "queries"))


def rewrite_text(text: str, rng: random.Random) -> str:
    """A light seeded rewrite: ~4% of words dropped, ~4% swapped with the next, half the numbers changed.

    Python's `random` rather than numpy's: a draw per word costs 50 ns instead of ~1 us, and this
    runs on every word of a million passages.
    """
    words = text.split()
    if len(words) < 2:
        return text
    draw = rng.random
    out = [w for w in words if draw() >= REWRITE_DROP] or words[:1]
    for j in range(len(out) - 1):
        if draw() < REWRITE_SWAP:
            out[j], out[j + 1] = out[j + 1], out[j]
    return _NUMBER.sub(lambda m: _new_number(m.group(), rng), " ".join(out))


def _new_number(number: str, rng: random.Random) -> str:
    if rng.random() >= REWRITE_NUMBER:
        return number
    return "".join(str(rng.randrange(10)) for _ in number)


def rewrite_cosines(
    base: ScaleBase, encoder: Encoder, *, sample: int = CALIBRATION_SAMPLE, seed: int = 0
) -> np.ndarray:
    """Cosine between real passages and their encoded `rewrite_text` rewrites (cached by content)."""
    rng = np.random.default_rng([seed, 4])
    rows = np.sort(rng.choice(len(base.texts), size=min(sample, len(base.texts)), replace=False))
    rewrites = [rewrite_text(base.texts[r], random.Random(f"rewrite-{seed}-{r}")) for r in rows]
    vectors = _cached_encode(encoder, rewrites, "rewrites")
    return np.einsum("ij,ij->i", vectors, base.vectors[rows]).clip(-1.0, 1.0)


@dataclass(frozen=True)
class CopyPlan:
    """Synthetic passage i (id i + 1) is copy `copy[i]` of base row `source[i]`, from article `article[i]`."""

    source: np.ndarray
    copy: np.ndarray
    article: np.ndarray

    @classmethod
    def make(cls, base: ScaleBase, n: int, seed: int = 0) -> CopyPlan:
        sources, copies, articles = [], [], []
        total, c = 0, 0
        while total < n:
            n_articles = len(base.articles)
            shuffle = np.random.default_rng([seed, 3, c])
            order = np.arange(n_articles) if c == 0 else shuffle.permutation(n_articles)
            rows = np.concatenate([np.arange(*base.articles[a]) for a in order])
            sources.append(rows)
            articles.append(np.repeat(order, [base.articles[a][1] - base.articles[a][0] for a in order]))
            copies.append(np.full(len(rows), c))
            total, c = total + len(rows), c + 1
        return cls(*(np.concatenate(parts)[:n].astype(np.int32) for parts in (sources, copies, articles)))


def synthetic_vectors(
    base: ScaleBase, plan: CopyPlan, target_cosines: np.ndarray, out: np.ndarray, seed: int = 0
) -> None:
    """Fill `out[:n]` with the copies' vectors, block by seeded block (see the module docstring)."""
    dim = base.vectors.shape[1]
    for begin in range(0, len(plan.source), VECTOR_BLOCK):
        end = min(begin + VECTOR_BLOCK, len(plan.source))
        rng = np.random.default_rng([seed, 1, begin // VECTOR_BLOCK])
        size = VECTOR_BLOCK  # draw full blocks so a row's noise does not depend on n
        v = base.vectors[plan.source[begin:end]]
        w = base.vectors[rng.integers(len(base.vectors), size=size)][: end - begin]
        a = rng.uniform(0.0, MIX_MAX, size=size)[: end - begin, None]
        cos = rng.choice(target_cosines, size=size)[: end - begin]
        g = rng.standard_normal((size, dim), dtype=np.float32)[: end - begin]
        u = v + a * w
        vu, uu = np.einsum("ij,ij->i", v, u), np.einsum("ij,ij->i", u, u)
        # |g|^2 ~ dim and g is ~orthogonal to u, so cos(v, u + s g) ~ v.u / sqrt(|u|^2 + s^2 dim)
        sigma = np.sqrt(np.maximum((vu / np.maximum(cos, 1e-3)) ** 2 - uu, 0.0) / dim)
        block = normalize_rows(u + sigma[:, None] * g)
        real = plan.copy[begin:end] == 0
        block[real] = v[real]
        out[begin:end] = block


@dataclass(frozen=True)
class SyntheticArticle:
    """One article of the scale corpus: `text[start:end] == passage` for each of `passages`."""

    first_id: int
    doc_id: str
    title: str
    text: str
    passages: list[tuple[int, str]]  # (start offset, text)


def synthetic_articles(base: ScaleBase, plan: CopyPlan, seed: int = 0) -> Iterator[SyntheticArticle]:
    """The articles of `plan` in passage-id order: the title, then the passages, blank-line separated.

    (The title leads the text as in every product article; a passage that already starts with it,
    as a real first passage does, is not given it twice.)
    """
    cuts = np.flatnonzero((np.diff(plan.copy) != 0) | (np.diff(plan.article) != 0)) + 1
    for begin, end in zip([0, *cuts.tolist()], [*cuts.tolist(), len(plan.source)], strict=True):
        c, art = int(plan.copy[begin]), int(plan.article[begin])
        rng = random.Random(f"copy-{seed}-{c}-{art}")
        rows = plan.source[begin:end]
        doc_id = base.doc_ids[rows[0]] if c == 0 else f"copy-{c:04d}/{base.doc_ids[rows[0]]}"
        title = base.titles[rows[0]] if c == 0 else rewrite_text(base.titles[rows[0]], rng)
        texts = [base.texts[r] if c == 0 else rewrite_text(base.texts[r], rng) for r in rows]
        head = "" if texts[0].startswith(title) else f"{title}\n\n"
        start, passages = len(head), []
        for passage in texts:
            passages.append((start, passage))
            start += len(passage) + 2
        yield SyntheticArticle(begin + 1, doc_id, title, head + "\n\n".join(texts), passages)


def build_store(path: Path, base: ScaleBase, plan: CopyPlan, seed: int = 0) -> tuple[float, float]:
    """The product's store (schema, FTS5) for `plan`; (seconds inserting, seconds making texts)."""
    PassageStore.create(path).close()
    db = sqlite3.connect(str(path))
    insert_s = synth_s = 0.0
    try:
        started = time.perf_counter()
        articles: list[tuple[Any, ...]] = []
        passages: list[tuple[Any, ...]] = []
        fts: list[tuple[Any, ...]] = []
        for article in synthetic_articles(base, plan, seed):
            digest = hashlib.sha256(article.text.encode()).hexdigest()
            articles.append(
                (article.doc_id, article.title, article.text, "synthetic", None, None, "utf-8", digest, None)
            )
            for offset, (start, text) in enumerate(article.passages):
                pid = article.first_id + offset
                passages.append((pid, article.doc_id, start, start + len(text), text))
                fts.append((pid, article.title, text))
            if len(passages) >= STORE_BLOCK:
                synth_s += time.perf_counter() - started
                insert_s += _insert(db, articles, passages, fts)
                articles, passages, fts = [], [], []
                started = time.perf_counter()
        synth_s += time.perf_counter() - started
        insert_s += _insert(db, articles, passages, fts)
    finally:
        db.close()
    return insert_s, synth_s


def _insert(db: sqlite3.Connection, articles: list[Any], passages: list[Any], fts: list[Any]) -> float:
    started = time.perf_counter()
    db.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", articles)
    db.executemany("INSERT INTO passages VALUES (?, ?, ?, ?, ?)", passages)
    db.executemany("INSERT INTO passages_fts (rowid, title, text) VALUES (?, ?, ?)", fts)
    db.commit()
    return time.perf_counter() - started


def _cached_encode(encoder: Encoder, texts: list[str], kind: str) -> np.ndarray:
    key = hashlib.sha256(json.dumps([encoder.model_id, texts]).encode()).hexdigest()[:16]
    path = default_index_dir(ROOT).parent / "scale" / f"{kind}-{key}.npy"  # beside the indexes
    if path.is_file():
        return np.load(path)
    vectors = encoder.encode(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors
