"""Fuzzing: random bytes, HTML and unicode through ingestion, chunking and the question path.

Each target is a hypothesis property run programmatically (`@given` with a seeded, database-free
budget), so a fuzz run is repeatable and needs no fixtures. A *crash* is any exception other than
the documented RagError family, or a broken invariant: an article whose raw-offset map does not
point at its own text, a passage that is not `article.text[start:end]`, an answer that is not a
verbatim span at its offsets. hypothesis is a dev dependency; without it `run_fuzz` says so.

    >>> result = run_fuzz(examples=20_000, seed=1)
    >>> result["inputs"], result["crashes"]
    (20000, [])
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.answer import Answer
from rag.chunking import Chunker
from rag.documents import Article, decode, load_corpus
from rag.errors import RagError

TARGETS = ("documents-bytes", "documents-html", "documents-unicode", "chunking", "question")
MAX_SHOWN = 160  # characters of a failing input kept in its crash description
# The fixed corpus of the question target: names, dates, numbers and places for the reader to find.
FUZZ_ARTICLES = (
    "Harbour storm closes port\n\nA storm closed the port of Eastbrook on Monday, March 3, 2025. "
    "Mayor Helena Vasquez said 40 boats were damaged. The harbour master, Tobias Lindqvist, "
    "expects repairs to cost £2.5 million.\nShips will return on Friday.",
    "Orchestra wins award\n\nThe Millford Symphony Orchestra won the national prize in Leeds. "
    'Its conductor, Ingrid Okafor, 52, has led it since 2011. "We played for the town," she said.',
    "# Vaccine trial begins\n\nResearchers at Kingsbury University began a vaccine trial with "
    "1,200 volunteers. Dr. Priya Novak leads the team; results are due in June.",
    "Election results\n\nAuthor: Staff reporter\nPublished: 2024-11-05\n\nTurnout reached 61% "
    "in Stonehaven, where Marcus Brennan won by 312 votes after a recount.",
)

Log = Callable[[str], None]


# -- inputs (hypothesis strategies, built lazily: hypothesis is a dev dependency) ----------------

_HTML_TAGS = (
    "html head title body article main p div span h1 h2 script style a nav footer aside br "
    "table tr td ul li meta time noscript template iframe form b i"
).split()
_ENTITIES = ("&amp;", "&lt;", "&nbsp;", "&#0;", "&#x1F600;", "&#99999999;", "&bogus;", "&", "<", ">")
_PREFIXES = (b"", b"\xef\xbb\xbf", b"\xff\xfe", b"%PDF", b"\x89PNG", b"<html>", b"# ", b"PK\x03\x04")
_ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1", "surrogates")


def _char(surrogates: bool = True) -> Any:
    """Any code point; lone surrogates too unless asked not to (a CLI argument can carry them, via
    Python's surrogateescape, but decoded article text never does)."""
    from hypothesis import strategies as st

    return st.characters(codec=None if surrogates else "utf-8")


def _text(max_size: int, surrogates: bool = True) -> Any:
    from hypothesis import strategies as st

    return st.text(_char(surrogates), max_size=max_size)


def random_documents() -> Any:
    """(bytes, suffix): arbitrary bytes, sometimes behind a BOM, a magic number or markup."""
    from hypothesis import strategies as st

    data = st.builds(lambda p, b: p + b, st.sampled_from(_PREFIXES), st.binary(max_size=3000))
    return st.tuples(data, st.sampled_from([".txt", ".md", ".html", ".htm"]))


def _encoded(text: str, encoding: str) -> bytes:
    if encoding == "surrogates":  # lone surrogates: invalid UTF-8 that must fall back cleanly
        return text.encode("utf-8", errors="surrogatepass")
    return text.encode(encoding, errors="replace")


def html_documents() -> Any:
    """(bytes, suffix): random nested markup with attributes, entities, scripts and bad nesting."""
    from hypothesis import strategies as st

    words = st.one_of(_text(40), st.sampled_from(_ENTITIES), st.sampled_from(FUZZ_ARTICLES))
    attrs = st.lists(st.tuples(st.sampled_from(["class", "id", "href", "lang", "content", "x"]), _text(20)))

    def element(children: Any) -> Any:
        def render(tag: str, pairs: list[tuple[str, str]], inner: list[str], close: bool) -> str:
            shown = "".join(f' {k}="{v}"' for k, v in pairs)
            return f"<{tag}{shown}>{''.join(inner)}" + (f"</{tag}>" if close else "")

        return st.builds(
            render, st.sampled_from(_HTML_TAGS), attrs, st.lists(children, max_size=4), st.booleans()
        )

    tree = st.recursive(words, element, max_leaves=40)
    page = st.builds(lambda parts: "".join(parts), st.lists(tree, max_size=6))
    encoding = st.sampled_from(["utf-8", "cp1252", "utf-16", "surrogates"])
    return st.tuples(st.builds(_encoded, page, encoding), st.sampled_from([".html", ".htm"]))


def unicode_documents() -> Any:
    """(bytes, suffix): lines of any unicode, any newline style, in several encodings."""
    from hypothesis import strategies as st

    lines = st.lists(st.one_of(_text(100), st.sampled_from(["", "  ", "# Title", "Home > News", "..."])))
    newline = st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x0b", "\x85"])
    text = st.builds(lambda ls, nl: nl.join(ls), lines, newline)
    return st.tuples(st.builds(_encoded, text, st.sampled_from(_ENCODINGS)), st.sampled_from([".txt", ".md"]))


def chunk_inputs() -> Any:
    """(text, chunk_size, chunk_overlap): sentences, junk and very long tokens, any separators."""
    from hypothesis import strategies as st

    part = st.one_of(
        _text(80, surrogates=False),
        st.sampled_from(["Mr. Smith went to Washington.", "U.S. growth hit 3.5%!", "Why?", "a" * 600]),
        st.builds(lambda c, n: c * n, _char(surrogates=False), st.integers(1, 400)),
    )
    separator = st.sampled_from([" ", "\n", "\n\n", ". ", "! ", "? ", "\t", "\r", "\u3002", ""])
    text = st.builds(lambda ps, sep: sep.join(ps), st.lists(part, max_size=20), separator)
    # From 8 pieces up: a lone word piece cut out of a long word may re-tokenize into several.
    return st.tuples(text, st.integers(8, 254), st.integers(0, 4))


def question_inputs() -> Any:
    """(question, k, history): junk, near-limit and corpus-word questions, odd k, random turns."""
    from hypothesis import strategies as st

    from rag.followup import Turn
    from rag.retrieval import MAX_QUESTION_CHARS

    vocabulary = sorted({w.strip('.,;"#:') for text in FUZZ_ARTICLES for w in text.split()} - {""})
    wh = st.sampled_from(["Who", "When", "Where", "How many", "How old is", "What", "Why", "Which", ""])
    worded = st.builds(
        lambda w, ws, end: " ".join([w, *ws]) + end,
        wh,
        st.lists(st.sampled_from(vocabulary), max_size=12),
        st.sampled_from(["?", "", " ?", "??", "."]),
    )
    question = st.one_of(
        worded,
        _text(200),
        st.builds(lambda c, n: c * n, _char(), st.integers(1, MAX_QUESTION_CHARS + 10)),
        st.builds(lambda a, b: a + b, worded, _text(40)),
    )
    turn = st.builds(
        Turn,
        st.one_of(worded, _text(60)),
        st.one_of(st.none(), st.sampled_from(vocabulary), _text(30)),
        st.one_of(st.none(), st.sampled_from(FUZZ_ARTICLES), _text(80)),
    )
    k = st.one_of(st.none(), st.integers(-2, 12), st.just(1001))
    return st.tuples(question, k, st.lists(turn, max_size=3))


# -- checks ---------------------------------------------------------------------------------------


class BrokenInvariant(Exception):
    """A fuzz input broke a documented invariant (counted as a crash)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BrokenInvariant(message)


def check_chunks(chunker: Chunker, doc_id: str, text: str) -> None:
    """Passages are stripped, non-empty `text[start:end]` slices in order, within the token limit,
    covering every non-space character of every sentence."""
    from rag.chunking import split_sentences

    passages = chunker.split(doc_id, text)
    for p in passages:
        _require(text[p.start : p.end] == p.text, f"passage {p.start}-{p.end} is not text[start:end]")
        _require(
            bool(p.text) and p.text.strip() == p.text, f"passage {p.start}-{p.end} is blank or unstripped"
        )
    counts = chunker.counter.count([p.text for p in passages])
    _require(all(n <= chunker.chunk_size for n in counts), f"a passage exceeds {chunker.chunk_size} pieces")
    starts, ends = [p.start for p in passages], [p.end for p in passages]
    _require(starts == sorted(set(starts)) and ends == sorted(set(ends)), "passage offsets do not increase")
    covered = {i for p in passages for i in range(p.start, p.end)}
    for start, end in split_sentences(text):
        missing = [i for i in range(start, end) if not text[i].isspace() and i not in covered]
        _require(not missing, f"characters {missing[:5]} of a sentence are in no passage")


def check_article(article: Article, data: bytes, chunker: Chunker) -> None:
    """A loaded article: titled, its raw-offset map exact, and it chunks cleanly."""
    _require(bool(article.title.strip()), "an article with an empty title")
    _require(article.text.startswith(article.title), "the text does not start with the title")
    raw = decode(data).text
    previous = -1
    for span in article.raw_spans or ():
        clean = article.text[span.clean_start : span.clean_start + span.length]
        _require(clean == raw[span.raw_start : span.raw_start + span.length], f"raw span {span} is not exact")
        _require(span.clean_start > previous, "raw spans out of order")
        previous = span.clean_start
    check_chunks(chunker, article.doc_id, article.text)


def _document_check(folder: Path, chunker: Chunker) -> Callable[[tuple[bytes, str]], None]:
    """Write the input as the only file of a corpus folder and load it the way `rag index` does."""

    def check(value: tuple[bytes, str]) -> None:
        data, suffix = value
        for old in folder.iterdir():
            old.unlink()
        (folder / f"article{suffix}").write_bytes(data)
        load = load_corpus(folder)
        _require(len(load.articles) + len(load.skipped) == 1, "the file was neither loaded nor skipped")
        for skipped in load.skipped:
            _require(bool(skipped.reason), "a file skipped without a reason")
        for article in load.articles:
            check_article(article, data, chunker)

    return check


def check_answer(answer: Answer, store: Any) -> None:
    """Answers and their alternatives are verbatim spans at their offsets, inside their citations."""
    _require(isinstance(answer, Answer), f"ask returned {type(answer).__name__}, not an Answer")
    _require(0.0 <= answer.score <= 1.0, f"score {answer.score} is outside [0, 1]")
    for citation in answer.citations:
        article = store.article(citation.doc_id)
        _require(article is not None, f"cited article {citation.doc_id!r} is not in the index")
        passage = article.text[citation.passage_start : citation.passage_end]
        _require(passage == citation.passage_text, "a cited passage is not a slice of its article")
    for candidate in (answer, *answer.alternatives):
        if candidate.text is None:
            continue
        article = store.article(candidate.doc_id)
        _require(article is not None, f"answer article {candidate.doc_id!r} is not in the index")
        if candidate.start is None or candidate.end is None:
            raise BrokenInvariant("an answer without article offsets")
        _require(article.text[candidate.start : candidate.end] == candidate.text, "answer is not verbatim")
        if candidate.sentence is not None and candidate.sentence_start is not None:
            sentence = article.text[candidate.sentence_start : candidate.sentence_end]
            _require(sentence == candidate.sentence, "the supporting sentence is not verbatim")
        if candidate.citations:
            cited = candidate.citations[0]
            _require(
                cited.doc_id == candidate.doc_id
                and cited.passage_start <= candidate.start < candidate.end <= cited.passage_end,
                "the answer lies outside the passage it cites",
            )


def _question_check(qa: Any) -> Callable[[tuple[str, int | None, list[Any]]], None]:
    def check(value: tuple[str, int | None, list[Any]]) -> None:
        question, k, history = value
        try:
            answer = qa.ask(question, k=k, history=history)
        except RagError:
            return  # the documented refusal of a bad question or k
        check_answer(answer, qa.index.store)

    return check


def _chunk_check(value: tuple[str, int, int]) -> None:
    from embeddings.tokens import default_counter

    text, size, overlap = value
    check_chunks(Chunker(default_counter(), chunk_size=size, chunk_overlap=overlap), "fuzz", text)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def fuzz_target(
    name: str,
    strategy: Any,
    check: Callable[[Any], None],
    budget: int,
    seed: int,
    crashes: dict[str, list[Any]],
) -> int:
    """Run `check` on `budget` inputs drawn from the hypothesis `strategy`; returns how many ran.

    Every exception but a RagError is recorded in `crashes` as "name: Type: message" -> [count,
    the first input that raised it]."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    ran = 0

    @fixed_seed(seed)
    @settings(
        max_examples=budget,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def probe(value: Any) -> None:
        nonlocal ran
        ran += 1
        try:
            check(value)
        except RagError:
            pass  # the documented error family: a clear refusal, not a crash
        except Exception as exc:  # anything else is what fuzzing looks for
            first_line = (str(exc).splitlines() or [""])[0][:200]
            key = f"{name}: {type(exc).__name__}: {first_line}"
            crashes.setdefault(key, [0, _shown(value)])[0] += 1

    probe()
    return ran


def _question_pipeline(folder: Path, reader: str) -> Any:
    from rag.crashtest_worker import TokenizingHashEncoder, harness_chunker
    from rag.pipeline import PipelineSettings, QAPipeline

    corpus = folder / "corpus"
    corpus.mkdir()
    for n, text in enumerate(FUZZ_ARTICLES):
        (corpus / f"news{n}.txt").write_text(text, encoding="utf-8")
    return QAPipeline.from_corpus(
        corpus,
        index_dir=folder / "index",
        encoder=TokenizingHashEncoder(),
        chunker=harness_chunker(),
        settings=PipelineSettings(reader=reader),
    )


def run_fuzz(
    examples: int,
    seed: int = 0,
    log: Log = lambda message: None,
    *,
    targets: Sequence[str] = TARGETS,
    reader: str = "heuristic",
) -> dict[str, Any]:
    """Fuzz each of `targets` with an equal share of `examples` inputs, seeded.

    Targets: documents-bytes / -html / -unicode (files through `load_corpus`, the articles then
    chunked), chunking (random text into the real-tokenizer Chunker), question (questions, k and
    chat histories into `QAPipeline.ask` over a small fixed index with `reader` and a test-double
    encoder that runs the real tokenizer: TokenizingHashEncoder).
    Returns {"inputs", "crashes" (descriptions; empty when nothing broke), "seconds", "targets"
    (name -> inputs), "target_seconds", "seed"}.
    """
    try:
        import hypothesis  # noqa: F401
    except ImportError as exc:
        raise RagError("fuzzing needs hypothesis, a dev dependency: pip install -e '.[dev]'") from exc
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        raise RagError(f"targets must be some of {TARGETS}, got {list(targets)}")
    if examples < len(targets):
        raise RagError(f"examples must be >= {len(targets)} (one per target), got {examples}")

    started = time.monotonic()
    quiet = [logging.getLogger(n) for n in ("rag.documents", "trafilatura", "htmldate", "courlan")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # a degraded-extraction warning per random page would drown the log
        logger.setLevel(logging.ERROR)
    try:
        return _fuzz(examples, seed, log, targets, reader, started)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _fuzz(
    examples: int, seed: int, log: Log, targets: Sequence[str], reader: str, started: float
) -> dict[str, Any]:
    from embeddings.tokens import default_counter

    crashes: dict[str, list[Any]] = {}
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    chunker = Chunker(default_counter(), chunk_size=60, chunk_overlap=1)
    with tempfile.TemporaryDirectory(prefix="rag-fuzz-") as tmp:
        folder = Path(tmp) / "documents"
        folder.mkdir()
        for i, name in enumerate(targets):
            budget = examples // len(targets) + (1 if i < examples % len(targets) else 0)
            began = time.monotonic()
            strategy: Any
            check: Callable[[Any], None]
            if name.startswith("documents-"):
                make = {"bytes": random_documents, "html": html_documents, "unicode": unicode_documents}
                strategy, check = make[name.split("-", 1)[1]](), _document_check(folder, chunker)
            elif name == "chunking":
                strategy, check = chunk_inputs(), _chunk_check
            else:
                qa = _question_pipeline(Path(tmp), reader)
                strategy, check = question_inputs(), _question_check(qa)
            counts[name] = fuzz_target(name, strategy, check, budget, seed, crashes)
            seconds[name] = round(time.monotonic() - began, 1)
            found = sum(c[0] for k, c in crashes.items() if k.startswith(name + ":"))
            log(f"{name}: {counts[name]} inputs in {seconds[name]:.1f} s, {found} crashing")
    return {
        "inputs": sum(counts.values()),
        "crashes": [f"{key} ({n} inputs; first: {shown})" for key, (n, shown) in crashes.items()],
        "seconds": round(time.monotonic() - started, 1),
        "targets": counts,
        "target_seconds": seconds,
        "seed": seed,
    }
