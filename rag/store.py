"""The passage store: articles, passages and their BM25 keyword index in one SQLite file.

It also keeps each passage's reader data, made at index time (rag.reading), in `reading`.

SQLite FTS5 gives BM25 ranking, incremental inserts and deletes, and lives in the same file as
the passages, so the keyword index can never drift from them (no extra dependency either).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.chunking import Passage
from rag.documents import Article, RawSpan
from rag.keywords import fts_query

SCHEMA = """
CREATE TABLE articles (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, source TEXT,
    author TEXT, published TEXT, encoding TEXT NOT NULL, content_hash TEXT NOT NULL,
    raw_spans TEXT
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES articles(doc_id),
    start_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX passages_by_doc ON passages(doc_id);
CREATE TABLE reading (
    passage_id INTEGER PRIMARY KEY REFERENCES passages(id), parse BLOB NOT NULL, vectors BLOB NOT NULL
);
CREATE VIRTUAL TABLE passages_fts USING fts5(
    title, text, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""
TITLE_WEIGHT = 0.5  # BM25 column weight of the article title relative to the passage text


class PassageStore:
    """Read and write access to one store file; safe to share between threads."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: Path) -> PassageStore:
        db = sqlite3.connect(str(path), check_same_thread=False)
        db.executescript(SCHEMA)
        return cls(db)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = True) -> PassageStore:
        uri = f"file:{path}?mode={'ro' if readonly else 'rw'}"
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        db.execute("SELECT count(*) FROM passages_fts").fetchone()  # fails fast on a bad file
        return cls(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_article(
        self,
        article: Article,
        passages: Sequence[Passage],
        reading: Sequence[tuple[bytes, bytes]] | None = None,
    ) -> list[int]:
        """Insert an article and its passages (with their reader data, one row per passage, if
        given); returns the new passage ids (uncommitted)."""
        if reading is not None and len(reading) != len(passages):
            raise ValueError(f"{len(reading)} reader data rows for {len(passages)} passages")
        spans = None if article.raw_spans is None else json.dumps([list(_span(s)) for s in article.raw_spans])
        with self._lock:
            self._db.execute(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    article.doc_id,
                    article.title,
                    article.text,
                    article.source,
                    article.author,
                    article.published,
                    article.encoding,
                    article.content_hash,
                    spans,
                ),
            )
            ids = []
            for p in passages:
                cursor = self._db.execute(
                    "INSERT INTO passages (doc_id, start_offset, end_offset, text) VALUES (?, ?, ?, ?)",
                    (p.doc_id, p.start, p.end, p.text),
                )
                pid = int(cursor.lastrowid or 0)
                self._db.execute(
                    "INSERT INTO passages_fts (rowid, title, text) VALUES (?, ?, ?)",
                    (pid, article.title, p.text),
                )
                ids.append(pid)
            if reading is not None:
                self._db.executemany(
                    "INSERT INTO reading VALUES (?, ?, ?)",
                    [(pid, parse, vectors) for pid, (parse, vectors) in zip(ids, reading, strict=True)],
                )
            return ids

    def remove_articles(self, doc_ids: Iterable[str]) -> list[int]:
        """Delete articles with their passages; returns the removed passage ids (uncommitted)."""
        removed: list[int] = []
        with self._lock:
            for doc_id in doc_ids:
                rows = self._db.execute("SELECT id FROM passages WHERE doc_id = ?", (doc_id,))
                ids = [int(r[0]) for r in rows]
                self._db.executemany("DELETE FROM passages_fts WHERE rowid = ?", [(i,) for i in ids])
                self._db.executemany("DELETE FROM reading WHERE passage_id = ?", [(i,) for i in ids])
                self._db.execute("DELETE FROM passages WHERE doc_id = ?", (doc_id,))
                self._db.execute("DELETE FROM articles WHERE doc_id = ?", (doc_id,))
                removed.extend(ids)
        return removed

    def commit(self) -> None:
        with self._lock:
            self._db.commit()

    def passages(self, ids: Sequence[int]) -> dict[int, tuple[Passage, str]]:
        """Passage and article title for each known id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT p.id, p.doc_id, p.start_offset, p.end_offset, p.text, a.title "
                f"FROM passages p JOIN articles a USING (doc_id) WHERE p.id IN ({marks})",
                list(ids),
            ).fetchall()
        return {int(r[0]): (Passage(r[1], int(r[2]), int(r[3]), r[4]), r[5]) for r in rows}

    def all_passages(self) -> list[Passage]:
        """Every passage, in id order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT doc_id, start_offset, end_offset, text FROM passages ORDER BY id"
            ).fetchall()
        return [Passage(r[0], int(r[1]), int(r[2]), r[3]) for r in rows]

    def reading(self, doc_id: str, start: int, end: int) -> tuple[bytes, bytes] | None:
        """The reader data of the passage at [start, end) of `doc_id`: (parse, vectors), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT r.parse, r.vectors FROM passages p JOIN reading r ON r.passage_id = p.id "
                "WHERE p.doc_id = ? AND p.start_offset = ? AND p.end_offset = ? LIMIT 1",
                (doc_id, start, end),
            ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def keyword_search(self, question: str, k: int) -> list[tuple[int, float]]:
        """BM25 over passage text and title: (passage id, score) with higher = better."""
        query = fts_query(question)
        if query is None:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, bm25(passages_fts, ?, 1.0) AS s FROM passages_fts "
                "WHERE passages_fts MATCH ? ORDER BY s LIMIT ?",
                (TITLE_WEIGHT, query, k),
            ).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def article(self, doc_id: str) -> Article | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc_id, title, text, content_hash, encoding, source, author, published, "
                "raw_spans FROM articles WHERE doc_id = ?",
                (doc_id,),
            ).fetchone()
        if row is None:
            return None
        spans = None if row[8] is None else tuple(RawSpan(*s) for s in json.loads(row[8]))
        return Article(
            doc_id=row[0],
            title=row[1],
            text=row[2],
            content_hash=row[3],
            encoding=row[4],
            source=row[5],
            author=row[6],
            published=row[7],
            raw_spans=spans,
        )

    def count(self) -> tuple[int, int]:
        """(articles, passages)."""
        with self._lock:
            n_articles = self._db.execute("SELECT count(*) FROM articles").fetchone()[0]
            n_passages = self._db.execute("SELECT count(*) FROM passages").fetchone()[0]
        return int(n_articles), int(n_passages)


def _span(span: RawSpan) -> tuple[int, int, int]:
    return span.clean_start, span.raw_start, span.length
