"""Load articles from a folder: decode, strip web boilerplate, keep offsets back to the raw file.

SKELETON: the data types below are the contract; the loading functions are being written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ARTICLE_SUFFIXES = (".txt", ".md", ".html", ".htm")


@dataclass(frozen=True)
class RawSpan:
    """A run of cleaned text copied verbatim from the decoded raw file."""

    clean_start: int
    raw_start: int
    length: int


@dataclass(frozen=True)
class Article:
    """One cleaned article. `text` starts with the title line; passages index into `text`."""

    doc_id: str  # posix path relative to the corpus root, e.g. "business/001.txt"
    title: str
    text: str
    content_hash: str  # sha256 hex of the raw file bytes
    encoding: str  # "utf-8", "cp1252", "latin-1"
    source: str | None = None
    author: str | None = None
    published: str | None = None
    raw_spans: tuple[RawSpan, ...] | None = None  # None for HTML (extracted, not copied)

    def raw_offset(self, clean_offset: int) -> int | None:
        """Map an offset in `text` to a character offset in the decoded raw file."""
        raise NotImplementedError


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why (never dropped silently)."""

    doc_id: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """An article whose body repeats an earlier one (`kind` is "exact" or "near")."""

    doc_id: str
    duplicate_of: str
    kind: str


def discover(corpus: Path) -> list[Path]:
    """Every article file under `corpus`, recursively, sorted by relative path."""
    raise NotImplementedError


def parse_article(doc_id: str, data: bytes) -> Article:
    """Decode, clean and title one article; raises ArticleError with a specific reason."""
    raise NotImplementedError


def body_fingerprint(article: Article) -> str:
    """A hash of the normalized body (title excluded): equal for exact and near duplicates."""
    raise NotImplementedError
