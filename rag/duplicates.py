"""Find repeated articles: byte copies ("exact") and the same body under another title ("near")."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Duplicate:
    """An article whose body repeats an earlier one (`kind` is "exact" or "near")."""

    doc_id: str
    duplicate_of: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in ("exact", "near"):
            raise ValueError(f"kind must be 'exact' or 'near', got {self.kind!r}")


def normalize_words(text: str) -> str:
    """Lowercased alphanumeric word tokens joined by single spaces (punctuation and layout go).

    >>> normalize_words("Oil prices -- up 3%!\\n\\nSee: 'BP'")
    'oil prices up 3 see bp'
    """
    return " ".join(_WORD.findall(text.lower()))


def fingerprint(body: str, *, title: str = "") -> str:
    """sha256 hex of the normalized `body`.

    A title-only article has no body to compare, so it is fingerprinted by its title instead;
    otherwise every title-only article would be a "near" duplicate of every other.
    """
    words = normalize_words(body)
    if not words:
        words = "\x00title-only " + normalize_words(title)
    return hashlib.sha256(words.encode("utf-8")).hexdigest()


def find_duplicates(items: Iterable[tuple[str, str, str]]) -> list[Duplicate]:
    """Duplicates among (doc_id, content_hash, body_fingerprint) items, first occurrence kept.

    Items are taken in doc_id order (sorted here, so the result does not depend on the caller's
    order). "exact" means the raw bytes are equal, "near" that only the normalized body is.
    `duplicate_of` is the first doc_id with the same bytes (exact) or body (near).

    >>> find_duplicates([("a", "h1", "f1"), ("b", "h1", "f1"), ("c", "h2", "f1")])
    [Duplicate(doc_id='b', duplicate_of='a', kind='exact'), \
Duplicate(doc_id='c', duplicate_of='a', kind='near')]
    """
    first_by_hash: dict[str, str] = {}
    first_by_body: dict[str, str] = {}
    seen: set[str] = set()
    found: list[Duplicate] = []
    for doc_id, content_hash, body in sorted(items):
        if doc_id in seen:
            raise ValueError(f"doc_id {doc_id!r} appears more than once")
        seen.add(doc_id)
        if content_hash in first_by_hash:
            found.append(Duplicate(doc_id, first_by_hash[content_hash], "exact"))
        elif body in first_by_body:
            found.append(Duplicate(doc_id, first_by_body[body], "near"))
        first_by_hash.setdefault(content_hash, doc_id)
        first_by_body.setdefault(body, doc_id)
    return found
