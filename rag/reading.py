"""Reader data made at index time: each passage's spaCy parse and its sentences' vectors.

The heuristic reader needs every retrieved passage parsed by spaCy and its candidate sentences
embedded. Done at question time, that was most of a question's cost on passages the process had
not read before (docs/BENCHMARKS.md, the BBC query rows). `sync_index` now does it once per
passage, in the same store transaction as the passage itself, and the reader loads it:

    >>> prep = ReadingPrep(load_spacy(), encoder)
    >>> rows = prep.prepare(["First line.\\nSecond line. And a third sentence."])  # (parse, vectors)
    >>> source = ReadingSource(store, load_spacy().vocab, encoder.dim)
    >>> source(passage).docs, source(passage).vectors  # None when the store has no data for it

Per passage the store keeps a spaCy `DocBin` with one `Doc` per non-empty line (the unit the reader
parses; it keeps the tags, lemmas, dependencies, entities and sentence starts the reader uses) and
the float32 vectors of the passage's distinct sentence texts, in order of first appearance.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.encoder import Encoder

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    from rag.chunking import Passage
    from rag.store import PassageStore

PARSE_BATCH = 64  # lines per spaCy batch at index time


def passage_lines(text: str) -> list[str]:
    """The lines of a passage the reader parses (blank lines carry no sentence)."""
    return [line for line in text.split("\n") if line.strip()]


def sentence_texts(docs: Sequence[Doc]) -> list[str]:
    """The distinct sentence texts of parsed lines, in order: the texts the reader embeds."""
    return list(dict.fromkeys(t for doc in docs for s in doc.sents if (t := s.text.strip())))


def spacy_id(nlp: Language) -> str:
    """Names the parser, so data it made is never read by another version."""
    return _meta_id(nlp.meta)


def packaged_spacy_id(package: str) -> str:
    """`spacy_id` of an installed pipeline package, from its meta.json: an index that is up to date is
    checked without importing spaCy (seconds) or loading the pipeline."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"spaCy pipeline package '{package}' is not installed")
    return _meta_id(json.loads((Path(spec.origin).parent / "meta.json").read_text(encoding="utf-8")))


def _meta_id(meta: dict[str, Any]) -> str:
    return f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}"


def made_by(spacy: str, encoder: Encoder) -> dict[str, str]:
    """What makes reader data: the index manifest keeps it, and a difference means a rebuild."""
    return {"spacy": spacy, "encoder": encoder.model_id}


@dataclass(frozen=True)
class PassageReading:
    """One passage's index-time reader data."""

    docs: list[Doc]  # one per line of `passage_lines(passage.text)`
    vectors: dict[str, np.ndarray]  # sentence text -> unit vector


class ReadingPrep:
    """Parses and embeds passages at index time (`sync_index` calls it per block of articles)."""

    def __init__(self, nlp: Language, encoder: Encoder) -> None:
        self.nlp = nlp
        self.encoder = encoder

    def describe(self) -> dict[str, str]:
        """What makes the data (`made_by`)."""
        return made_by(spacy_id(self.nlp), self.encoder)

    def prepare(self, texts: Sequence[str]) -> list[tuple[bytes, bytes]]:
        """(serialized parse, sentence vectors) per passage text, in order."""
        from spacy.tokens import DocBin

        from rag.indexing import encode_all

        lines = [passage_lines(text) for text in texts]
        unique = list(dict.fromkeys(line for group in lines for line in group))
        parsed = dict(zip(unique, self.nlp.pipe(unique, batch_size=PARSE_BATCH), strict=True))
        sentences = [sentence_texts([parsed[line] for line in group]) for group in lines]
        distinct = list(dict.fromkeys(s for group in sentences for s in group))
        matrix = encode_all(self.encoder, distinct) if distinct else np.zeros((0, self.encoder.dim))
        row = {text: i for i, text in enumerate(distinct)}
        out = []
        for group, texts_here in zip(lines, sentences, strict=True):
            docs = DocBin(store_user_data=False)
            for line in group:
                docs.add(parsed[line])
            vectors = np.ascontiguousarray(matrix[[row[t] for t in texts_here]], dtype=np.float32)
            out.append((docs.to_bytes(), vectors.reshape(len(texts_here), self.encoder.dim).tobytes()))
        return out


class ReadingSource:
    """Loads the index-time data of a retrieved passage for the reader; None where it has none.

    Data that does not decode or does not match the passage's text is ignored (the reader then
    parses and embeds as it would without an index), so a damaged row costs time, not answers.
    """

    def __init__(self, store: PassageStore, vocab: Vocab, dim: int) -> None:
        self.store = store
        self.vocab = vocab
        self.dim = dim

    def __call__(self, passage: Passage) -> PassageReading | None:
        row = self.store.reading(passage.doc_id, passage.start, passage.end)
        return None if row is None else decode(row[0], row[1], passage.text, self.vocab, self.dim)


def decode(parse: bytes, vectors: bytes, text: str, vocab: Vocab, dim: int) -> PassageReading | None:
    """The stored data of a passage with this `text`, or None if it is not that passage's."""
    from spacy.tokens import DocBin

    try:
        docs = list(DocBin().from_bytes(parse).get_docs(vocab))
    except Exception:  # noqa: BLE001 - any undecodable blob means "not usable", never a failed answer
        return None
    if [doc.text for doc in docs] != passage_lines(text):
        return None
    texts = sentence_texts(docs)
    matrix = np.frombuffer(vectors, dtype=np.float32)
    if matrix.size != len(texts) * dim:
        return None
    matrix = matrix.reshape(len(texts), dim)
    return PassageReading(docs, {t: matrix[i] for i, t in enumerate(texts)})


def reading_source(store: PassageStore, manifest: dict[str, Any], nlp: Language, encoder: Encoder) -> (
    Callable[[Passage], PassageReading | None] | None
):
    """The index's reader data, when it was made by this parser and this encoder."""
    if manifest.get("reading") != made_by(spacy_id(nlp), encoder):
        return None
    return ReadingSource(store, nlp.vocab, encoder.dim)
