"""Save articles a user uploads into the corpus folder, safely.

Uploads are untrusted: the file name is reduced to a plain base name (no folders, no dots in
front, only letters, digits, '-', '_' and '.'), the content must parse as an article before
anything is written, and the write is atomic and never replaces an existing file.

    >>> saved = save_upload(Path("seeds"), "../../etc/passwd.txt", b"Title\\n\\nBody.")
    >>> saved.relative_to(Path("seeds").resolve()).as_posix()
    'uploads/passwd.txt'
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from rag.documents import ARTICLE_SUFFIXES, parse_article
from rag.errors import ArticleError, RagError
from rag.manifest import atomic_write_bytes

UPLOAD_FOLDER = "uploads"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # a long news article is ~50 kB; this leaves room for HTML
MAX_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(RagError):
    """An upload that was refused; the message says why and nothing was written."""


def safe_name(name: str) -> str:
    """A plain file name from an untrusted one: base name only, ASCII-safe, no leading dots."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:MAX_NAME_CHARS] or "article"
    suffix = _UNSAFE.sub("", suffix).lower()
    return f"{stem}.{suffix}" if suffix else stem


def save_upload(corpus: Path, name: str, data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Write one uploaded article under `corpus/uploads/`; returns its path.

    Raises UploadError (wrong type, too large, empty, binary, not text) without writing.
    A name already taken gets a numbered suffix rather than replacing the other file.
    """
    clean = safe_name(name)
    suffix = Path(clean).suffix
    if suffix not in ARTICLE_SUFFIXES:
        allowed = ", ".join(ARTICLE_SUFFIXES)
        raise UploadError(f"'{name}' is not an article file: use one of {allowed}")
    if len(data) > max_bytes:
        raise UploadError(f"'{name}' is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
    try:
        parse_article(clean, data)
    except ArticleError as exc:
        raise UploadError(f"'{name}' was not added: {exc}") from exc
    root = corpus.resolve()
    if not root.is_dir():
        raise UploadError(f"the corpus folder '{corpus}' does not exist")
    folder = root / UPLOAD_FOLDER
    folder.mkdir(exist_ok=True)
    target = folder / clean
    stem = target.stem
    n = 1
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    if not target.resolve().is_relative_to(root):  # defence in depth: safe_name allows no '/'
        raise UploadError(f"'{name}' would be written outside the corpus")
    atomic_write_bytes(target, data)
    return target
