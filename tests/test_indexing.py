from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from embeddings.tokens import default_counter
from rag.chunking import Chunker
from rag.corpus_index import CorpusIndex
from rag.errors import IndexStateError, RagError
from rag.indexing import index_lock, sync_index
from tests.conftest import FakeEncoder


class RecordingEncoder(FakeEncoder):
    """The fake encoder, keeping every text it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        self.texts.extend(texts)
        return super().encode(texts, show_progress=show_progress)


CHUNKER = Chunker(default_counter(), chunk_size=60, chunk_overlap=1)


def _article(title: str, body: str) -> str:
    return f"{title}\n\n{body}\n"


def _corpus(root: Path) -> Path:
    root.mkdir()
    (root / "a.txt").write_text(_article("Dock strike", "Dock workers in Antwerp walked out on Monday. " * 8))
    (root / "b.txt").write_text(_article("Tea prices", "Tea prices in Kenya rose by 12% in March. " * 8))
    (root / "sub").mkdir()
    (root / "sub" / "c.md").write_text(_article("# Chess final", "Anna Petrova won the chess final in Oslo."))
    return root


def _sync(corpus: Path, index_dir: Path, encoder: FakeEncoder, **kwargs):  # type: ignore[no-untyped-def]
    return sync_index(corpus, index_dir, encoder=encoder, chunker=CHUNKER, **kwargs)


def test_first_build_then_unchanged_corpus_embeds_nothing(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    first = _sync(corpus, index_dir, fake_encoder)
    assert first.articles == 3 and set(first.added) == {"a.txt", "b.txt", "sub/c.md"}
    assert first.embedded_passages == first.passages > 3
    encoded = fake_encoder.texts_encoded
    again = _sync(corpus, index_dir, fake_encoder)
    assert again.up_to_date and again.embedded_passages == 0
    assert fake_encoder.texts_encoded == encoded
    opened = CorpusIndex.open(index_dir)
    assert len(opened.vectors) == first.passages
    article = opened.store.article("sub/c.md")
    assert article is not None and article.title == "Chess final"


def test_changing_adding_deleting_one_article_re_embeds_only_it(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    _sync(corpus, index_dir, fake_encoder)
    (corpus / "b.txt").write_text(_article("Tea prices", "Tea prices in Kenya fell sharply."))
    (corpus / "d.txt").write_text(_article("New mayor", "Maria Lopez became mayor of Seville."))
    (corpus / "a.txt").unlink()
    recorder = RecordingEncoder()
    report = _sync(corpus, index_dir, recorder)
    assert report.changed == ("b.txt",) and report.added == ("d.txt",) and report.removed == ("a.txt",)
    assert report.embedded_passages == 2
    # Only the two new articles are embedded: their passages and, for the reader, their sentences.
    new_text = (corpus / "b.txt").read_text() + (corpus / "d.txt").read_text()
    assert len(recorder.texts) > 2 and all(text in new_text for text in recorder.texts)
    opened = CorpusIndex.open(index_dir)
    assert opened.store.article("a.txt") is None
    assert len(opened.vectors) == report.passages == opened.store.count()[1]
    assert [h for h, _ in opened.store.keyword_search("Antwerp dock workers", 5)] == []
    assert opened.store.keyword_search("Seville mayor", 5)
    leftovers = sorted(p.name for p in index_dir.iterdir())
    assert len([n for n in leftovers if n.startswith("store-")]) == 1


def test_duplicates_are_reported_and_not_indexed(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    (corpus / "copy.txt").write_bytes((corpus / "a.txt").read_bytes())
    report = _sync(corpus, index_dir, fake_encoder)
    assert [(d.doc_id, d.duplicate_of, d.kind) for d in report.duplicates] == [("copy.txt", "a.txt", "exact")]
    assert report.articles == 3
    (corpus / "a.txt").unlink()  # the copy is no longer a duplicate: now it is indexed
    report = _sync(corpus, index_dir, fake_encoder)
    assert report.duplicates == () and report.articles == 3 and "copy.txt" in report.added


def test_unreadable_files_are_listed_with_a_reason(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus = _corpus(tmp_path / "corpus")
    (corpus / "empty.txt").write_text("  \n")
    (corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    report = _sync(corpus, tmp_path / "index", fake_encoder)
    assert {s.doc_id for s in report.skipped} == {"empty.txt", "image.txt"}
    assert all(s.reason for s in report.skipped)
    assert report.articles == 3


def test_missing_and_empty_corpus_are_clear_errors(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    with pytest.raises(RagError, match="not found"):
        _sync(tmp_path / "nope", tmp_path / "index", fake_encoder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RagError, match="no .*articles"):
        _sync(tmp_path / "empty", tmp_path / "index", fake_encoder)
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "x.txt").write_text("")
    with pytest.raises(RagError, match="no readable articles"):
        _sync(tmp_path / "blank", tmp_path / "index", fake_encoder)
    assert not (tmp_path / "index" / "manifest.json").exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_damaged_index_is_detected_and_rebuilt_with_a_message(
    tmp_path: Path, fake_encoder: FakeEncoder, damage: str
) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    built = _sync(corpus, index_dir, fake_encoder)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    target = index_dir / manifest["files"]["vectors"]["name"]
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    else:
        (index_dir / "manifest.json").write_text("{not json")
    with pytest.raises(IndexStateError):
        CorpusIndex.open(index_dir)
    messages: list[str] = []
    report = _sync(corpus, index_dir, fake_encoder, log=messages.append)
    assert report.rebuilt_because and messages and "rebuilding" in messages[0]
    assert report.passages == built.passages
    assert len(CorpusIndex.open(index_dir).vectors) == built.passages


def test_changed_model_or_chunking_forces_a_rebuild(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    _sync(corpus, index_dir, fake_encoder)
    other = sync_index(
        corpus,
        index_dir,
        encoder=fake_encoder,
        chunker=Chunker(default_counter(), chunk_size=90, chunk_overlap=0),
    )
    assert other.rebuilt_because and "chunking" in other.rebuilt_because


def test_a_crash_before_the_manifest_leaves_the_previous_index(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    before = _sync(corpus, index_dir, fake_encoder)
    (corpus / "d.txt").write_text(_article("New mayor", "Maria Lopez became mayor of Seville."))

    class Crash(Exception):
        pass

    def explode(_: Path, __: dict) -> None:  # type: ignore[type-arg]
        raise Crash

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("rag.indexing.write_manifest", explode)
        with pytest.raises(Crash):
            _sync(corpus, index_dir, fake_encoder)
    opened = CorpusIndex.open(index_dir)
    assert opened.store.count() == (before.articles, before.passages)
    assert _sync(corpus, index_dir, fake_encoder).added == ("d.txt",)


def test_a_second_writer_is_told_the_index_is_busy(tmp_path: Path) -> None:
    with index_lock(tmp_path), pytest.raises(RagError, match="another process"):
        with index_lock(tmp_path, wait=False):
            pass
    assert os.path.exists(tmp_path / ".lock")
