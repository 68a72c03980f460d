from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embeddings.tokens import default_counter
from rag.chunking import Chunker, crosses_sentences, split_sentences
from tests.conftest import SEEDS

COUNTER = default_counter()


def test_passages_rebuild_the_article_and_respect_the_token_limit() -> None:
    text = (SEEDS / "000_cf52fe43d28daad2.txt").read_text(encoding="utf-8")
    passages = Chunker(COUNTER, chunk_size=120, chunk_overlap=1).split("seed", text)
    assert len(passages) > 3
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert COUNTER.count([p.text])[0] <= 120
    covered = {i for p in passages for i in range(p.start, p.end)}
    for start, end in split_sentences(text):
        assert set(range(start, end)) <= covered


def test_overlap_shares_whole_sentences() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    passages = Chunker(COUNTER, chunk_size=30, chunk_overlap=1).split("d", text)
    for a, b in zip(passages, passages[1:], strict=False):
        assert b.start < a.end  # one sentence shared
        assert text[b.start : a.end].endswith(".")


def test_no_overlap_tiles_the_text() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    passages = Chunker(COUNTER, chunk_size=30, chunk_overlap=0).split("d", text)
    for a, b in zip(passages, passages[1:], strict=False):
        assert a.end < b.start and text[a.end : b.start].strip() == ""


def test_a_sentence_longer_than_the_limit_is_cut_at_word_pieces() -> None:
    text = "word " * 700 + "end."
    passages = Chunker(COUNTER, chunk_size=100, chunk_overlap=1).split("d", text)
    assert len(passages) >= 7
    assert all(COUNTER.count([p.text])[0] <= 100 for p in passages)
    assert all(text[p.start : p.end] == p.text for p in passages)


def test_empty_and_blank_text_give_no_passages() -> None:
    chunker = Chunker(COUNTER)
    assert chunker.split("d", "") == []
    assert chunker.split("d", " \n\n \t") == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 1), (255, 1), (100, -1)])
def test_bad_settings_are_refused_with_the_value(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match=str(size if size in (0, 255) else overlap)):
        Chunker(COUNTER, chunk_size=size, chunk_overlap=overlap)


def test_split_many_matches_split() -> None:
    chunker = Chunker(COUNTER, chunk_size=60, chunk_overlap=1)
    docs = [("a", "First one. Second one here.\n\nThird."), ("b", "Only. " * 50)]
    assert chunker.split_many(docs) == [chunker.split(d, t) for d, t in docs]


sentence = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=0,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(sentence, max_size=25),
    seps=st.lists(st.sampled_from([" ", "\n", "\n\n", ". ", "! ", "? "]), min_size=25, max_size=25),
    size=st.integers(min_value=8, max_value=254),
    overlap=st.integers(min_value=0, max_value=3),
)
def test_property_offsets_increase_and_every_sentence_is_covered(
    parts: list[str], seps: list[str], size: int, overlap: int
) -> None:
    text = "".join(p + s for p, s in zip(parts, seps, strict=False))
    passages = Chunker(COUNTER, chunk_size=size, chunk_overlap=overlap).split("d", text)
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert p.text.strip() == p.text and p.text
        assert COUNTER.count([p.text])[0] <= size
    starts = [p.start for p in passages]
    ends = [p.end for p in passages]
    assert starts == sorted(set(starts)) and ends == sorted(set(ends))
    covered = {i for p in passages for i in range(p.start, p.end)}
    for start, end in split_sentences(text):  # cuts inside a long sentence may drop spaces
        assert {i for i in range(start, end) if not text[i].isspace()} <= covered


def test_crosses_sentences_at_a_headline_or_a_sentence_start() -> None:
    text = "Storm hits coast\n\nThe storm hit at dawn. Ten people fled."

    def crosses(span: str) -> bool:
        start = text.index(span)
        return crosses_sentences(text, start, start + len(span))

    assert crosses("coast\n\nThe storm")  # a headline into its paragraph
    assert crosses("dawn. Ten")  # one sentence into the next
    assert not crosses("The storm hit at dawn.")  # a whole sentence
    assert not crosses("Ten people")  # from a sentence's own start
    assert not crosses("Storm hits coast")
