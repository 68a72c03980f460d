"""Project error types: each carries a one-line, user-facing message."""

from __future__ import annotations


class RagError(Exception):
    """Bad input or state the user can fix; the CLI prints it on one line and exits with 2."""


class ArticleError(RagError):
    """An article that cannot be read as text (binary, empty, undecodable)."""


class IndexStateError(RagError):
    """A missing, corrupt or mismatched index directory."""
