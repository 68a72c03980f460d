"""Duplicate detection: byte copies are "exact", the same body under a new title is "near"."""

from __future__ import annotations

import pytest

from rag.documents import Duplicate, body_fingerprint, parse_article
from rag.duplicates import find_duplicates, fingerprint, normalize_words


def test_normalize_words_keeps_only_lowercase_word_tokens() -> None:
    assert normalize_words("Oil  prices -- UP 3%!\n\nSee: 'BP_plc'") == "oil prices up 3 see bp plc"
    assert normalize_words("Café über") == "café über"


def test_body_fingerprint_ignores_title_case_punctuation_and_layout() -> None:
    a = parse_article("a.txt", b"Nasdaq planning $100m share sale\n\nThe owner plans to sell.")
    b = parse_article("b.txt", b"Nasdaq planning $100m-share sale\r\n\r\nThe owner  plans\nto SELL!")
    c = parse_article("c.txt", b"Nasdaq planning $100m share sale\n\nThe owner plans to buy.")
    assert body_fingerprint(a) == body_fingerprint(b)
    assert body_fingerprint(a) != body_fingerprint(c)


def test_title_only_articles_are_not_all_near_duplicates() -> None:
    one, two = parse_article("1.txt", b"First headline"), parse_article("2.txt", b"Second one")
    assert body_fingerprint(one) != body_fingerprint(two)
    assert body_fingerprint(one) == fingerprint("", title="first HEADLINE")


def test_find_duplicates_keeps_the_first_by_doc_id() -> None:
    items = [
        ("b/2.txt", "h1", "f1"),  # given out of order: sorted by doc_id first
        ("a/1.txt", "h1", "f1"),
        ("c/3.txt", "h3", "f1"),
        ("d/4.txt", "h3", "f1"),
        ("e/5.txt", "h5", "f5"),
    ]
    assert find_duplicates(items) == [
        Duplicate("b/2.txt", "a/1.txt", "exact"),
        Duplicate("c/3.txt", "a/1.txt", "near"),
        Duplicate("d/4.txt", "c/3.txt", "exact"),
    ]


def test_find_duplicates_of_nothing_is_nothing() -> None:
    assert find_duplicates([]) == []


def test_find_duplicates_rejects_a_repeated_doc_id() -> None:
    with pytest.raises(ValueError, match="'a.txt' appears more than once"):
        find_duplicates([("a.txt", "h", "f"), ("a.txt", "h2", "f2")])


def test_duplicate_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="got 'same'"):
        Duplicate("a", "b", "same")
