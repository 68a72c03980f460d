"""Reader data made at index time (rag.reading): what it stores, that the reader answers the same
from it, and that it parses and embeds nothing it supplies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embeddings.tokens import default_counter
from rag.chunking import Chunker, Passage
from rag.corpus_index import CorpusIndex
from rag.indexing import sync_index
from rag.manifest import read_manifest, write_manifest
from rag.pipeline import QAPipeline
from rag.reader import HeuristicReader, load_spacy
from rag.reading import PassageReading, ReadingPrep, ReadingSource, decode, passage_lines, sentence_texts
from tests.conftest import FakeEncoder
from tests.test_reader import HITS

CHUNKER = Chunker(default_counter(), chunk_size=60, chunk_overlap=1)
QUESTIONS = (
    "Who is Jibril al-Mouhajer?",
    "How old is Oumar Diaby?",
    "Where is the camp of the French jihadists?",
    "What is the name of Oumar Diaby's wife?",
)


@pytest.fixture(scope="module")
def nlp():  # type: ignore[no-untyped-def]
    return load_spacy()


class NoParser:
    """Stands in for spaCy where nothing may be parsed."""

    def pipe(self, texts):  # type: ignore[no-untyped-def]
        texts = list(texts)
        if texts:
            raise AssertionError(f"parsed {len(texts)} line(s) the index had parsed: {texts[0][:40]!r}")
        return iter(())


def _prepared(nlp, encoder: FakeEncoder) -> dict[tuple[str, int], PassageReading]:  # type: ignore[no-untyped-def]
    passages = [hit.passage for hit in HITS]
    rows = ReadingPrep(nlp, encoder).prepare([p.text for p in passages])
    out = {}
    for passage, (parse, vectors) in zip(passages, rows, strict=True):
        reading = decode(parse, vectors, passage.text, nlp.vocab, encoder.dim)
        assert reading is not None
        out[(passage.doc_id, passage.start)] = reading
    return out


def test_stored_parse_and_vectors_are_those_the_reader_would_make(nlp) -> None:  # type: ignore[no-untyped-def]
    encoder = FakeEncoder()
    for passage in (hit.passage for hit in HITS):
        reading = _prepared(nlp, encoder)[(passage.doc_id, passage.start)]
        lines = passage_lines(passage.text)
        fresh = list(nlp.pipe(lines))
        assert [d.text for d in reading.docs] == lines
        for stored, parsed in zip(reading.docs, fresh, strict=True):
            assert [(t.text, t.lemma_, t.pos_, t.dep_, t.head.i, t.ent_type_) for t in stored] == [
                (t.text, t.lemma_, t.pos_, t.dep_, t.head.i, t.ent_type_) for t in parsed
            ]
            assert [s.text for s in stored.sents] == [s.text for s in parsed.sents]
        texts = sentence_texts(fresh)
        assert list(reading.vectors) == texts
        np.testing.assert_allclose(np.stack(list(reading.vectors.values())), encoder.encode(texts), atol=1e-6)


def test_reader_answers_the_same_from_index_data_without_parsing_or_embedding_it(nlp) -> None:  # type: ignore[no-untyped-def]
    prepared = _prepared(nlp, FakeEncoder())
    plain = HeuristicReader(FakeEncoder(), nlp)
    encoder = FakeEncoder()
    fed = HeuristicReader(encoder, NoParser(), prepared=lambda p: prepared[(p.doc_id, p.start)])  # type: ignore[arg-type]
    for question in QUESTIONS:
        before = encoder.texts_encoded
        assert fed.read(question, HITS) == plain.read(question, HITS), question
        assert encoder.texts_encoded == before + 1  # the question alone


def test_reader_parses_passages_the_index_has_no_data_for(nlp) -> None:  # type: ignore[no-untyped-def]
    plain = HeuristicReader(FakeEncoder(), nlp)
    fed = HeuristicReader(FakeEncoder(), nlp, prepared=lambda p: None)
    assert fed.read(QUESTIONS[0], HITS) == plain.read(QUESTIONS[0], HITS)


@pytest.mark.parametrize(
    "damage",
    [
        lambda parse, vectors, text: (parse[: len(parse) // 2], vectors, text),  # truncated parse
        lambda parse, vectors, text: (b"not a DocBin", vectors, text),
        lambda parse, vectors, text: (parse, vectors[:-4], text),  # one float short
        lambda parse, vectors, text: (parse, vectors, text.replace("Diaby", "Diabi")),  # another text
    ],
    ids=["truncated-parse", "garbage-parse", "short-vectors", "other-passage"],
)
def test_damaged_or_foreign_data_is_ignored_not_trusted(nlp, damage) -> None:  # type: ignore[no-untyped-def]
    passage = HITS[0].passage
    (parse, vectors), = ReadingPrep(nlp, FakeEncoder()).prepare([passage.text])
    assert decode(parse, vectors, passage.text, nlp.vocab, FakeEncoder.dim) is not None
    assert decode(*damage(parse, vectors, passage.text), nlp.vocab, FakeEncoder.dim) is None


def _corpus(root: Path) -> Path:
    root.mkdir()
    (root / "a.txt").write_text("Dock strike\n\nDock workers in Antwerp walked out on Monday. They want pay.")
    (root / "b.txt").write_text("Chess final\n\nAnna Petrova won the chess final in Oslo. She is 19.\n")
    return root


def _rows(index_dir: Path) -> tuple[int, int]:
    """(reader data rows, passages) of the live generation."""
    index = CorpusIndex.open(index_dir)
    try:
        db = index.store._db
        return db.execute("SELECT count(*) FROM reading").fetchone()[0], index.store.count()[1]
    finally:
        index.close()


def test_index_keeps_one_row_per_passage_through_edits_and_deletions(tmp_path: Path) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    encoder = FakeEncoder()
    sync_index(corpus, index_dir, encoder=encoder, chunker=CHUNKER)
    rows, passages = _rows(index_dir)
    assert rows == passages > 0
    (corpus / "a.txt").unlink()
    (corpus / "b.txt").write_text("Chess final\n\nAnna Petrova lost the chess final in Oslo.\n")
    (corpus / "c.txt").write_text("Tea prices\n\nTea prices in Kenya rose by 12% in March.\n")
    sync_index(corpus, index_dir, encoder=encoder, chunker=CHUNKER)
    assert _rows(index_dir) == (2, 2)
    index = CorpusIndex.open(index_dir)
    source = ReadingSource(index.store, load_spacy().vocab, encoder.dim)
    for passage in index.store.all_passages():
        reading = source(passage)
        assert reading is not None and [d.text for d in reading.docs] == passage_lines(passage.text)
    assert source(Passage("a.txt", 0, 10, "Dock strike")) is None  # deleted with its article
    index.close()


def test_an_index_without_reader_data_is_rebuilt_and_says_why(tmp_path: Path) -> None:
    corpus, index_dir = _corpus(tmp_path / "corpus"), tmp_path / "index"
    encoder = FakeEncoder()
    sync_index(corpus, index_dir, encoder=encoder, chunker=CHUNKER, reading=False)
    assert _rows(index_dir)[0] == 0 and read_manifest(index_dir)["reading"] is None
    report = sync_index(corpus, index_dir, encoder=encoder, chunker=CHUNKER)
    assert report.rebuilt_because is not None and "no reader data" in report.rebuilt_because
    assert _rows(index_dir)[0] == _rows(index_dir)[1]
    # data made by another parser version is not read either: rebuilt, with the versions named
    manifest = read_manifest(index_dir)
    write_manifest(index_dir, {**manifest, "reading": {**manifest["reading"], "spacy": "en_core_web_sm-0.1"}})
    report = sync_index(corpus, index_dir, encoder=encoder, chunker=CHUNKER)
    assert report.rebuilt_because is not None and "en_core_web_sm-0.1" in report.rebuilt_because


def test_pipeline_reader_uses_the_index_data_only_when_it_matches(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    qa = QAPipeline.from_corpus(corpus, index_dir=tmp_path / "index", encoder=FakeEncoder())
    reader = qa.with_settings(reader="heuristic").reader
    assert isinstance(reader, HeuristicReader) and isinstance(reader.prepared, ReadingSource)
    qa.close()
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    manifest["reading"]["encoder"] = "another-model"
    write_manifest(tmp_path / "index", {k: v for k, v in manifest.items() if k != "checksum"})
    stale = QAPipeline(CorpusIndex.open(tmp_path / "index"), FakeEncoder())
    reader = stale.with_settings(reader="heuristic").reader
    assert isinstance(reader, HeuristicReader) and reader.prepared is None
    stale.close()
