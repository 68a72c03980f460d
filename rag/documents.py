"""Load articles from a folder: decode, strip web boilerplate, keep offsets back to the raw file.

Offsets: `RawSpan.raw_start` indexes the *decoded raw text* returned by `decode(data)`: the file
decoded as `Article.encoding`, a leading UTF-8 BOM removed, newlines left as they were
("\\r\\n" stays two characters). Every span satisfies
`article.text[cs:cs + n] == decode(data).text[rs:rs + n]`.

    >>> load = load_corpus(Path("corpus"))  # doctest: +SKIP
    >>> load.articles[0].title, load.skipped, load.duplicates  # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag import boilerplate
from rag.duplicates import Duplicate, find_duplicates, fingerprint
from rag.errors import ArticleError, RagError

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md", ".html", ".htm")
HTML_SUFFIXES = (".html", ".htm")
MAX_ARTICLE_BYTES = 20 * 1024 * 1024
_CONTROL_SHARE = 0.05  # more control characters than this and it is not prose
_MAGIC = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"PK\x03\x04": "a ZIP archive (or DOCX/XLSX)",
    b"\x1f\x8b": "a gzip archive",
    b"\xd0\xcf\x11\xe0": "an old MS Office document",
}
_NEWLINE = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # C0/C1 controls but tab..CR


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
    published: str | None = None  # ISO date YYYY-MM-DD when the article states one
    raw_spans: tuple[RawSpan, ...] | None = None  # None for HTML (extracted, not copied)
    notes: tuple[str, ...] = ()  # how loading degraded, if it did (fallback decoder/extractor)

    def __post_init__(self) -> None:
        if not self.text.startswith(self.title):
            raise ValueError(f"text of {self.doc_id!r} must start with its title {self.title!r}")

    def raw_offset(self, clean_offset: int) -> int | None:
        """Map an offset in `text` to a character offset in the decoded raw file.

        None for HTML articles and for offsets in separators the cleaner inserted; for an
        exclusive end offset use `raw_offset(end - 1) + 1`.
        """
        if clean_offset < 0:
            raise ValueError(f"clean_offset must be >= 0, got {clean_offset}")
        if not self.raw_spans:
            return None
        k = bisect.bisect_right(self.raw_spans, clean_offset, key=lambda s: s.clean_start) - 1
        if k < 0:
            return None
        span = self.raw_spans[k]
        inside = clean_offset - span.clean_start
        return span.raw_start + inside if inside < span.length else None


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why (never dropped silently)."""

    doc_id: str
    reason: str


@dataclass(frozen=True)
class Decoded:
    """A file's text as decoded (BOM removed, newlines untouched) and the codec that worked."""

    text: str
    encoding: str


@dataclass(frozen=True)
class CorpusLoad:
    """Everything `load_corpus` found: parsed articles, skipped files, duplicate pairs."""

    articles: tuple[Article, ...]
    skipped: tuple[Skipped, ...]
    duplicates: tuple[Duplicate, ...]


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def discover(corpus: Path) -> list[Path]:
    """Every article file under `corpus`, recursively, sorted by relative path.

    Hidden files and folders are skipped; symlinked folders are not descended into, and a
    symlinked file counts only when its target lies inside the corpus.
    """
    if not corpus.exists():
        raise RagError(f"corpus folder not found: {str(corpus)!r}")
    if not corpus.is_dir():
        raise RagError(f"corpus must be a folder, but {str(corpus)!r} is a file")
    root = corpus.resolve()
    found: list[tuple[str, Path]] = []

    def unreadable(err: OSError) -> None:
        if Path(err.filename or "") == corpus:
            raise RagError(f"cannot read corpus folder {str(corpus)!r}: {err.strerror}")
        log.warning("cannot list folder %r: %s", err.filename, err.strerror)

    for dirpath, dirnames, filenames in os.walk(corpus, onerror=unreadable):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(corpus)
            if _is_hidden(rel) or path.suffix.lower() not in ARTICLE_SUFFIXES:
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                log.warning("not following symlink %r: it points outside the corpus", str(rel))
                continue
            found.append((rel.as_posix(), path))
    if not found:
        raise RagError(f"no .txt/.md/.html articles in {str(corpus)!r}")
    return [path for _, path in sorted(found)]


def doc_id_for(path: Path, corpus: Path) -> str:
    """The stable id of `path`: its posix path relative to `corpus`, e.g. "sport/199.txt"."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(corpus))
    except ValueError:
        raise RagError(f"{str(path)!r} is not inside the corpus {str(corpus)!r}") from None
    return rel.as_posix()


def decode(data: bytes) -> Decoded:
    """Decode as UTF-8 (BOM stripped), else cp1252, else latin-1, which always succeeds."""
    for encoding, codec in (("utf-8", "utf-8-sig"), ("cp1252", "cp1252")):
        try:
            return Decoded(data.decode(codec), encoding)
        except UnicodeDecodeError:
            continue
    return Decoded(data.decode("latin-1"), "latin-1")


def _check_text(doc_id: str, data: bytes, text: str) -> None:
    if not data:
        raise ArticleError(f"{doc_id!r} is an empty file")
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            raise ArticleError(f"{doc_id!r} is binary ({kind}), not text")
    if b"\x00" in data:
        raise ArticleError(f"{doc_id!r} is binary (contains NUL bytes), not text")
    if not text.strip():
        raise ArticleError(f"{doc_id!r} holds only whitespace")
    controls = len(_CONTROL.findall(text))
    if controls > _CONTROL_SHARE * len(text):
        share = controls / len(text)
        raise ArticleError(f"{doc_id!r} looks binary: {share:.0%} of its characters are controls")


def parse_article(doc_id: str, data: bytes) -> Article:
    """Decode, clean and title one article; raises ArticleError with a specific reason."""
    decoded = decode(data)
    _check_text(doc_id, data, decoded.text)
    notes = () if decoded.encoding == "utf-8" else (f"not UTF-8; decoded as {decoded.encoding}",)
    content_hash = hashlib.sha256(data).hexdigest()
    if doc_id.lower().endswith(HTML_SUFFIXES):
        return _parse_html(doc_id, decoded, content_hash, notes)
    return _parse_plain(doc_id, decoded, content_hash, notes)


def _lines(raw: str) -> list[tuple[int, str]]:
    """(raw offset of the stripped line, stripped line) for each line of `raw`."""
    out: list[tuple[int, str]] = []
    start = 0
    for end, nxt in [(m.start(), m.end()) for m in _NEWLINE.finditer(raw)] + [(len(raw), 0)]:
        line = raw[start:end]
        out.append((start + len(line) - len(line.lstrip()), line.strip()))
        start = nxt
    return out


def _title_without_hashes(paragraphs: list[list[tuple[int, str]]]) -> None:
    """Markdown: the title is the first line minus its "#" marks (a bare "#" line is dropped)."""
    for paragraph in paragraphs:
        while paragraph:
            start, line = paragraph[0]
            title = line.lstrip("#").lstrip()
            if title:
                paragraph[0] = (start + len(line) - len(title), title)
                return
            paragraph.pop(0)


def _parse_plain(doc_id: str, decoded: Decoded, content_hash: str, notes: tuple[str, ...]) -> Article:
    lines = _lines(decoded.text)
    keep = boilerplate.keep_mask([line for _, line in lines])
    paragraphs: list[list[tuple[int, str]]] = [[]]
    for (start, line), kept in zip(lines, keep, strict=True):
        if line and kept:
            paragraphs[-1].append((start, line))
        elif paragraphs[-1]:
            paragraphs.append([])
    if doc_id.lower().endswith(".md"):
        _title_without_hashes(paragraphs)
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        raise ArticleError(f"{doc_id!r}: no text left after removing boilerplate")
    spans: list[RawSpan] = []
    pieces: list[str] = []
    pos = 0
    for n, paragraph in enumerate(paragraphs):
        for k, (start, line) in enumerate(paragraph):
            sep = "\n\n" if n and not k else "\n" if k else ""
            pieces.append(sep + line)
            pos += len(sep)
            spans.append(RawSpan(clean_start=pos, raw_start=start, length=len(line)))
            pos += len(line)
    byline = boilerplate.read_byline([line for p in paragraphs for _, line in p])
    return Article(
        doc_id=doc_id,
        title=paragraphs[0][0][1],
        text="".join(pieces),
        content_hash=content_hash,
        encoding=decoded.encoding,
        source=byline.source,
        author=byline.author,
        published=byline.published,
        raw_spans=tuple(spans),
        notes=notes,
    )


def _parse_html(doc_id: str, decoded: Decoded, content_hash: str, notes: tuple[str, ...]) -> Article:
    page = boilerplate.extract_html(decoded.text)
    if page.used_fallback:
        log.warning("trafilatura found no main text in %r; used plain lxml text", doc_id)
        notes += ("trafilatura found no main text; used plain lxml text extraction",)
    if not page.body and not page.title_in_body:
        raise ArticleError(f"{doc_id!r}: no article text left after removing HTML markup")
    return Article(
        doc_id=doc_id,
        title=page.title,
        text="\n\n".join([page.title, *page.body]),
        content_hash=content_hash,
        encoding=decoded.encoding,
        source=page.byline.source,
        author=page.byline.author,
        published=page.byline.published,
        raw_spans=None,
        notes=notes,
    )


def body_fingerprint(article: Article) -> str:
    """A hash of the normalized body (title excluded): equal for exact and near duplicates."""
    return fingerprint(article.text[len(article.title) :], title=article.title)


def read_article_bytes(path: Path) -> bytes:
    """The file's bytes; ArticleError for one over MAX_ARTICLE_BYTES, which is never read whole."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_ARTICLE_BYTES:
            raise ArticleError(f"file is too large ({size:,} bytes > {MAX_ARTICLE_BYTES:,})")
        data = handle.read(MAX_ARTICLE_BYTES + 1)
    if len(data) > MAX_ARTICLE_BYTES:
        raise ArticleError(f"file is too large (it grew past {MAX_ARTICLE_BYTES:,} bytes while read)")
    return data


def _load_one(path: Path, doc_id: str) -> Article | Skipped:
    try:
        return parse_article(doc_id, read_article_bytes(path))
    except OSError as err:
        return Skipped(doc_id, f"cannot read file: {err.strerror or err}")
    except ArticleError as err:
        return Skipped(doc_id, str(err))


def check_readable(corpus: Path) -> None:
    """RagError unless `corpus` holds a readable article; stops at the first one it can parse."""
    reasons: list[str] = []
    for path in discover(corpus):
        loaded = _load_one(path, doc_id_for(path, corpus))
        if isinstance(loaded, Article):
            return
        reasons.append(loaded.reason)
    raise RagError(
        f"no readable articles in '{corpus}': {len(reasons)} file(s) skipped (first: {reasons[0]})"
    )


def load_corpus(corpus: Path) -> CorpusLoad:
    """Read every article under `corpus`; unreadable files become `Skipped`, never vanish.

    Duplicates are reported, not removed: `articles` holds every parsed file.
    """
    articles: list[Article] = []
    skipped: list[Skipped] = []
    for path in discover(corpus):
        loaded = _load_one(path, doc_id_for(path, corpus))
        (articles if isinstance(loaded, Article) else skipped).append(loaded)  # type: ignore[arg-type]
    items: Iterable[tuple[str, str, str]] = (
        (a.doc_id, a.content_hash, body_fingerprint(a)) for a in articles
    )
    return CorpusLoad(tuple(articles), tuple(skipped), tuple(find_duplicates(items)))
