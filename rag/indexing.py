"""Bring an index directory in line with a corpus folder, embedding only what changed."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from embeddings.encoder import Encoder
from embeddings.index import VectorIndex, fit_to_size
from rag.chunking import Chunker
from rag.documents import (
    Article,
    Duplicate,
    Skipped,
    body_fingerprint,
    discover,
    parse_article,
    read_article_bytes,
)
from rag.duplicates import find_duplicates
from rag.errors import ArticleError, IndexStateError, RagError
from rag.manifest import (
    FORMAT,
    check_compatible,
    file_entry,
    fsync_dir,
    read_manifest,
    write_manifest,
)
from rag.reader import SPACY_MODEL
from rag.reading import ReadingPrep, made_by, packaged_spacy_id
from rag.store import PassageStore

ENCODE_BLOCK = 256  # passages per encoder call: bounds memory and drives the progress bar
ARTICLE_BLOCK = 512  # articles chunked, stored and embedded together: bounds memory on huge corpora


@dataclass(frozen=True)
class IndexReport:
    """What one `sync_index` run found and did."""

    index_dir: Path
    articles: int
    passages: int
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    embedded_passages: int = 0
    skipped: tuple[Skipped, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    rebuilt_because: str | None = None
    seconds: float = 0.0

    @property
    def up_to_date(self) -> bool:
        return not (self.added or self.changed or self.removed)


@contextmanager
def index_lock(index_dir: Path, wait: bool = True) -> Iterator[None]:
    """One writer per index directory, across processes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("a") as handle:
        flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle.fileno(), flags)
        except BlockingIOError as exc:
            raise RagError(f"another process is indexing into '{index_dir}'; try again later") from exc
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def sync_index(
    corpus: Path,
    index_dir: Path,
    *,
    encoder: Encoder,
    chunker: Chunker,
    progress: bool = False,
    log: Callable[[str], None] = lambda message: None,
    on_progress: Callable[[int, int], None] | None = None,
    rebuild: bool = False,
    reading: bool = True,
) -> IndexReport:
    """Index `corpus` into `index_dir`: new, changed and deleted articles only.

    `on_progress(done, total)` is called as passages are embedded; `rebuild` re-embeds
    everything (the previous index stays readable until the new manifest replaces it).
    `reading` also stores each passage's spaCy parse and sentence vectors for the reader
    (rag.reading): slower to index, much faster to answer from passages not read before.

    >>> report = sync_index(Path("seeds"), Path("/tmp/idx"), encoder=enc, chunker=chunker)
    >>> report.articles, report.passages
    (1, 6)
    """
    started = time.perf_counter()
    files = discover(corpus)  # raises RagError for a missing or empty folder
    with index_lock(index_dir):
        reader_data = made_by(packaged_spacy_id(SPACY_MODEL), encoder) if reading else None
        manifest, rebuilt_because = _previous(index_dir, encoder, chunker, reader_data)
        last_generation = int(manifest.get("generation", 0)) if manifest else _generation_on_disk(index_dir)
        if rebuild:
            manifest, rebuilt_because = None, "a rebuild was requested"
        if rebuilt_because:
            log(f"rebuilding the index: {rebuilt_because}")
        plan = _Plan.make(corpus, files, manifest)
        if not plan.to_index:
            first = plan.skipped[0].reason if plan.skipped else "no articles"
            raise RagError(
                f"no readable articles in '{corpus}': {len(plan.skipped)} file(s) skipped (first: {first})"
            )
        if manifest is not None and not plan.add and not plan.remove:
            if plan.entries_changed(manifest):
                write_manifest(index_dir, plan.manifest(manifest, manifest["files"], manifest["counts"]))
            counts = manifest["counts"]
            return plan.report(index_dir, counts, 0, None, time.perf_counter() - started)
        prep = _reading_prep(encoder) if reading else None  # spaCy is loaded only to add passages
        generation, embedded, counts, files_entry, vector_index = _write_generation(
            index_dir, manifest, last_generation + 1, plan, encoder, chunker, prep, progress, on_progress
        )
        new_manifest = plan.manifest(manifest, files_entry, counts)
        new_manifest["generation"] = generation
        new_manifest["encoder"] = {"model_id": encoder.model_id, "dim": encoder.dim}
        new_manifest["chunking"] = chunker.settings
        new_manifest["vector_index"] = vector_index
        new_manifest["reading"] = reader_data
        write_manifest(index_dir, new_manifest)
        _remove_stale_files(index_dir, new_manifest)
        return plan.report(index_dir, counts, embedded, rebuilt_because, time.perf_counter() - started)


def _reading_prep(encoder: Encoder) -> ReadingPrep:
    from rag.reader import load_spacy  # SPACY_MODEL, loaded once per process

    return ReadingPrep(load_spacy(), encoder)


def _previous(
    index_dir: Path, encoder: Encoder, chunker: Chunker, reader_data: dict[str, str] | None
) -> tuple[dict[str, Any] | None, str | None]:
    if not (index_dir / "manifest.json").exists():
        if _generation_on_disk(index_dir):  # data files without the manifest that vouches for them
            return None, "manifest.json is missing; the index files without it cannot be trusted"
        return None, None
    try:
        manifest = read_manifest(index_dir)
        check_compatible(manifest, encoder.model_id, chunker.settings)
    except IndexStateError as exc:
        return None, str(exc)
    had = manifest.get("reading")
    if had != reader_data:
        if reader_data and not had:
            return None, "the index has no reader data (parses, sentence vectors): an older version made it"
        return None, f"the index's reader data was made by {had}, not {reader_data}"
    return manifest, None


@dataclass
class _Plan:
    corpus: Path
    entries: dict[str, dict[str, Any]]
    skipped: list[Skipped]
    skipped_hashes: dict[str, str]
    duplicates: list[Duplicate]
    parsed: dict[str, Article]
    to_index: set[str]
    add: set[str]
    remove: set[str]
    old: dict[str, dict[str, Any]]

    @classmethod
    def make(cls, corpus: Path, files: list[Path], manifest: dict[str, Any] | None) -> _Plan:
        old = manifest["articles"] if manifest else {}
        old_skipped = {s["doc_id"]: s for s in manifest.get("skipped", [])} if manifest else {}
        entries: dict[str, dict[str, Any]] = {}
        skipped: list[Skipped] = []
        skipped_hashes: dict[str, str] = {}
        parsed: dict[str, Article] = {}
        held: dict[str, bytes] = {}  # unchanged former duplicates, parsed only if they are now indexed
        for path in files:
            doc_id = path.relative_to(corpus).as_posix()
            try:
                data = read_article_bytes(path)
            except OSError as exc:
                skipped.append(Skipped(doc_id, f"cannot read file: {exc.strerror or exc}"))
                continue
            except ArticleError as exc:
                skipped.append(Skipped(doc_id, str(exc)))
                continue
            digest = hashlib.sha256(data).hexdigest()
            previous = old.get(doc_id)
            if previous and previous["content_hash"] == digest:
                entries[doc_id] = {"content_hash": digest, "fingerprint": previous["fingerprint"]}
                if not previous.get("indexed"):  # a duplicate so far: keep the bytes that were hashed
                    held[doc_id] = data
                continue
            if doc_id in old_skipped and old_skipped[doc_id].get("content_hash") == digest:
                skipped.append(Skipped(doc_id, old_skipped[doc_id]["reason"]))
                skipped_hashes[doc_id] = digest
                continue
            try:
                article = parse_article(doc_id, data)
            except ArticleError as exc:
                skipped.append(Skipped(doc_id, str(exc)))
                skipped_hashes[doc_id] = digest
                continue
            parsed[doc_id] = article
            entries[doc_id] = {"content_hash": digest, "fingerprint": body_fingerprint(article)}
        duplicates = find_duplicates(
            (d, e["content_hash"], e["fingerprint"]) for d, e in sorted(entries.items())
        )
        to_index = set(entries) - {d.doc_id for d in duplicates}
        indexed_before = {d for d, e in old.items() if e.get("indexed")}
        unchanged = {
            d
            for d in to_index
            if d in indexed_before and old[d]["content_hash"] == entries[d]["content_hash"]
        }
        plan = cls(
            corpus,
            entries,
            skipped,
            skipped_hashes,
            list(duplicates),
            parsed,
            to_index,
            to_index - unchanged,
            indexed_before - unchanged,
            old,
        )
        for doc_id in plan.add - set(parsed):  # unchanged, no longer a duplicate: parse the hashed bytes
            parsed[doc_id] = parse_article(doc_id, held[doc_id])
        return plan

    def entries_changed(self, manifest: dict[str, Any]) -> bool:
        return self.manifest(manifest, manifest["files"], manifest["counts"]) != manifest

    def manifest(
        self, old: dict[str, Any] | None, files: dict[str, Any], counts: dict[str, int]
    ) -> dict[str, Any]:
        articles = {d: {**e, "indexed": d in self.to_index} for d, e in sorted(self.entries.items())}
        result = dict(old or {})
        result.update(
            format=FORMAT,
            corpus=str(self.corpus.resolve()),
            files=files,
            counts=counts,
            articles=articles,
            skipped=[
                {
                    "doc_id": s.doc_id,
                    "reason": s.reason,
                    "content_hash": self.skipped_hashes.get(s.doc_id),
                }
                for s in self.skipped
            ],
            duplicates=[vars(d) for d in self.duplicates],
        )
        if old is None or files is not old.get("files"):
            result["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return result

    def report(
        self,
        index_dir: Path,
        counts: dict[str, int],
        embedded: int,
        because: str | None,
        seconds: float,
    ) -> IndexReport:
        changed = {d for d in self.add & self.remove}
        return IndexReport(
            index_dir=index_dir,
            articles=counts["articles"],
            passages=counts["passages"],
            added=tuple(sorted(self.add - changed)),
            changed=tuple(sorted(changed)),
            removed=tuple(sorted(self.remove - changed)),
            embedded_passages=embedded,
            skipped=tuple(self.skipped),
            duplicates=tuple(self.duplicates),
            rebuilt_because=because,
            seconds=seconds,
        )


def _write_generation(
    index_dir: Path,
    manifest: dict[str, Any] | None,
    generation: int,
    plan: _Plan,
    encoder: Encoder,
    chunker: Chunker,
    prep: ReadingPrep | None,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> tuple[int, int, dict[str, int], dict[str, Any], dict[str, Any]]:
    store_path = index_dir / f"store-g{generation:06d}.sqlite"
    vectors_path = index_dir / f"vectors-g{generation:06d}.faiss"
    tmp_store = index_dir / f".{store_path.name}.tmp-{os.getpid()}"
    if manifest:
        shutil.copyfile(index_dir / manifest["files"]["store"]["name"], tmp_store)
        store = PassageStore.open(tmp_store, readonly=False)
        vectors = VectorIndex.load(index_dir / manifest["files"]["vectors"]["name"])
    else:
        tmp_store.unlink(missing_ok=True)
        store = PassageStore.create(tmp_store)
        vectors = VectorIndex(encoder.dim)
    try:
        vectors.remove(np.array(store.remove_articles(sorted(plan.remove)), dtype=np.int64))
        embedded = _add_articles(store, vectors, plan, encoder, chunker, prep, progress, on_progress)
        vectors = fit_to_size(vectors)  # exact search while fast enough, IVF beyond (embeddings/index.py)
        store.commit()
        articles, passages_count = store.count()
    finally:
        store.close()
    with tmp_store.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp_store, store_path)
    vectors.save(vectors_path)
    fsync_dir(index_dir)
    files = {"store": file_entry(store_path), "vectors": file_entry(vectors_path)}
    counts = {"articles": articles, "passages": passages_count}
    return generation, embedded, counts, files, vectors.describe()


def _add_articles(
    store: PassageStore,
    vectors: VectorIndex,
    plan: _Plan,
    encoder: Encoder,
    chunker: Chunker,
    prep: ReadingPrep | None,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> int:
    """Chunk, store and embed the plan's new articles ARTICLE_BLOCK at a time; returns passages added.

    Working memory is one block's passages and vectors, and each parsed article is released once
    stored, so a corpus of 100,000 articles costs no more at once than one of ARTICLE_BLOCK.
    `on_progress(done, total)` counts passages; `total` is extrapolated from the blocks so far
    (exact after the last one).
    """
    to_add = sorted(plan.add)
    embedded = 0
    with tqdm(total=len(to_add), unit="article", desc="embedding", disable=not progress) as bar:
        for begin in range(0, len(to_add), ARTICLE_BLOCK):
            block = [plan.parsed.pop(doc_id) for doc_id in to_add[begin : begin + ARTICLE_BLOCK]]
            ids: list[int] = []
            texts: list[str] = []
            split = chunker.split_many([(a.doc_id, a.text) for a in block])
            rows = prep.prepare([p.text for passages in split for p in passages]) if prep else None
            for article, passages in zip(block, split, strict=True):
                here = None if rows is None else rows[len(texts) : len(texts) + len(passages)]
                ids.extend(store.add_article(article, passages, here))
                texts.extend(p.text for p in passages)
            articles_done = begin + len(block)
            estimate = round((embedded + len(texts)) * len(to_add) / articles_done)

            def block_progress(done: int, _total: int, before: int = embedded, total: int = estimate) -> None:
                if on_progress is not None:
                    on_progress(before + done, max(total, before + done))

            vectors.add(np.array(ids, dtype=np.int64), encode_all(encoder, texts, on_progress=block_progress))
            embedded += len(texts)
            bar.update(len(block))
    return embedded


def encode_all(
    encoder: Encoder,
    texts: list[str],
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Encode in length-sorted blocks (little padding, bounded memory), in the original order."""
    result = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    with tqdm(total=len(texts), unit="passage", desc="embedding", disable=not progress) as bar:
        for begin in range(0, len(order), ENCODE_BLOCK):
            block = order[begin : begin + ENCODE_BLOCK]
            result[block] = encoder.encode([texts[i] for i in block])
            bar.update(len(block))
            if on_progress is not None:
                on_progress(min(begin + ENCODE_BLOCK, len(order)), len(order))
    return result


def _generation_on_disk(index_dir: Path) -> int:
    """The highest generation number among data files (so a rebuild never reuses a live name)."""
    numbers = [0]
    for path in index_dir.glob("*-g*.*"):
        digits = path.stem.rpartition("-g")[2]
        if digits.isdigit():
            numbers.append(int(digits))
    return max(numbers)


def _remove_stale_files(index_dir: Path, manifest: dict[str, Any]) -> None:
    keep = {entry["name"] for entry in manifest["files"].values()} | {"manifest.json", ".lock"}
    for path in index_dir.iterdir():
        if path.name not in keep and (path.name.startswith((".", "store-", "vectors-"))):
            path.unlink(missing_ok=True)
