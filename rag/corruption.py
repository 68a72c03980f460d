"""Corruption matrix: every file of an index directory (the vectors, the passage store that also
holds the FTS5 keyword index, the manifest) truncated, bit-flipped or missing must be refused when
the index is opened, with a message naming the file, and repaired by the normal path
(`QAPipeline.from_corpus`, hence `rag ask`) by a rebuild that says so, after which it answers.

    >>> result = run_corruption_matrix()
    >>> result["detected"], result["repaired"], result["trials"]
    (21, 21, 21)
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.corpus_index import CorpusIndex
from rag.crashtest import IndexState, read_state, run_cli, town_fact, write_articles, write_towns
from rag.crashtest_worker import HashEncoder, harness_chunker
from rag.errors import IndexStateError, RagError
from rag.indexing import sync_index
from rag.manifest import MANIFEST
from rag.pipeline import PipelineSettings, QAPipeline

FILES = ("vectors", "store", "manifest")
DAMAGES = ("truncated", "bit-flipped", "missing")
ALL_CASES = tuple((role, kind) for role in FILES for kind in DAMAGES)
REBUILD_MESSAGE = "rebuilding the index"
ARTICLES = 30

Log = Callable[[str], None]


def damaged_file(index_dir: Path, role: str) -> Path:
    """The file of `role` ("vectors", "store" or "manifest") in the committed index."""
    if role == "manifest":
        return index_dir / MANIFEST
    manifest = json.loads((index_dir / MANIFEST).read_bytes())
    return index_dir / manifest["files"][role]["name"]


def damage(path: Path, kind: str, trial: int, rng: random.Random) -> str:
    """Truncate, flip one bit of, or delete `path`; returns what was done, for the record."""
    data = path.read_bytes()
    if kind == "missing":
        path.unlink()
        return "deleted"
    if kind == "truncated":
        keep = [0, len(data) // 2, len(data) - 1][trial % 3]
        path.write_bytes(data[:keep])
        return f"cut to {keep} of {len(data)} bytes"
    if kind == "bit-flipped":
        position, bit = rng.randrange(len(data)), rng.randrange(8)
        flipped = bytearray(data)
        flipped[position] ^= 1 << bit
        path.write_bytes(bytes(flipped))
        return f"bit {bit} of byte {position} of {len(data)} flipped"
    raise ValueError(f"kind must be one of {DAMAGES}, got {kind!r}")


def _refusal(index_dir: Path, name: str) -> str | None:
    """The message opening the damaged index gives when it names `name`; None if it opens or is vague."""
    try:
        CorpusIndex.open(index_dir, verify=True).close()
    except IndexStateError as exc:
        return str(exc) if name in str(exc) else None
    return None


def _repair(
    corpus: Path, index_dir: Path, name: str, clean: IndexState | None, ask: bool
) -> tuple[bool, str]:
    """The normal path on the damaged index: (rebuilt with a message naming the file, and answers;
    the message, or why not). `ask=False` checks retrieval only (no spaCy)."""
    messages: list[str] = []
    try:
        qa = QAPipeline.from_corpus(
            corpus,
            index_dir=index_dir,
            encoder=HashEncoder(),
            chunker=harness_chunker(),
            settings=PipelineSettings(reader="heuristic"),
            log=messages.append,
        )
    except RagError as exc:
        return False, f"QAPipeline.from_corpus failed: {exc}"
    try:
        title = "Story 3 v0"
        hits = qa.retrieve(title, k=3)
        cited = len(qa.ask(f"What does {title} mention?").citations) if ask else len(hits)
    except RagError as exc:
        return False, f"the repaired pipeline does not answer: {exc}"
    finally:
        qa.close()
    said = [m for m in messages if REBUILD_MESSAGE in m]
    if not said:
        return False, f"no rebuild message (messages: {messages})"
    if not any(name in m for m in said):
        return False, f"the rebuild message does not name {name}: {said[0]}"
    if not hits or hits[0].passage.doc_id != "0003.txt" or not cited:
        return False, "the repaired index does not find the article a search names"
    if read_state(index_dir) != clean:
        return False, "the repaired index differs from a clean build"
    return True, said[0]


@dataclass(frozen=True)
class CaseResult:
    """One damaged index: what was done, the refusal on opening it, and whether the normal path
    repaired it (`note`: the rebuild message, or why it was not repaired)."""

    done: str
    refusal: str | None
    repaired: bool
    note: str


def check_case(
    corpus: Path,
    index_dir: Path,
    role: str,
    kind: str,
    *,
    clean: IndexState | None,
    trial: int = 0,
    rng: random.Random | None = None,
    ask: bool = True,
) -> CaseResult:
    """Damage the `role` file of the index in `index_dir` (built from `corpus` with the harness
    encoder and chunker; `clean` is its state), try to open it, then take the normal path."""
    path = damaged_file(index_dir, role)
    done = damage(path, kind, trial, rng or random.Random(trial))
    refusal = _refusal(index_dir, path.name)
    repaired, note = _repair(corpus, index_dir, path.name, clean, ask)
    return CaseResult(done, refusal, repaired, note)


def build_harness_index(corpus: Path, index_dir: Path) -> IndexState | None:
    """The small index every case damages a copy of: ARTICLES synthetic articles, test encoder."""
    write_articles(corpus, range(ARTICLES))
    sync_index(corpus, index_dir, encoder=HashEncoder(), chunker=harness_chunker())
    return read_state(index_dir)


def run_corruption_matrix(
    seed: int = 0, trials: int = 3, log: Log = lambda message: None, *, cli: bool = False
) -> dict[str, Any]:
    """Each of FILES x DAMAGES, `trials` times (other cut points and bits), on a copy of a small index.

    Returns {"cases": [{"file", "damage", "trials", "detected", "repaired", "example"}], "trials",
    "detected", "repaired", "failures", "seconds"} (+ "cli" with `cli=True`: the same matrix once
    per case through the real `rag ask` command and the real encoder; minutes).
    """
    if trials < 1:
        raise RagError(f"trials must be >= 1, got {trials}")
    started = time.monotonic()
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rag-corruption-") as tmp:
        corpus, base = Path(tmp) / "corpus", Path(tmp) / "base"
        clean = build_harness_index(corpus, base)
        for role in FILES:
            for kind in DAMAGES:
                case: dict[str, Any] = {"file": role, "damage": kind, "trials": 0, "detected": 0}
                case["repaired"] = 0
                for trial in range(1 if kind == "missing" else trials):
                    index_dir = Path(tmp) / f"{role}-{kind}-{trial}"
                    shutil.copytree(base, index_dir)
                    got = check_case(corpus, index_dir, role, kind, clean=clean, trial=trial, rng=rng)
                    name = damaged_file(base, role).name
                    case["trials"] += 1
                    case["detected"] += got.refusal is not None
                    case["repaired"] += got.repaired
                    case.setdefault("example", got.refusal or got.note)
                    where = f"{role} {kind} ({got.done})"
                    if got.refusal is None:
                        failures.append(f"{where}: opening it was not refused with a message naming {name}")
                    if not got.repaired:
                        failures.append(f"{where}: not repaired: {got.note}")
                    shutil.rmtree(index_dir)
                counts = f"{case['detected']} of {case['trials']} detected, {case['repaired']} repaired"
                log(f"{role} {kind}: {counts}")
                cases.append(case)
    result: dict[str, Any] = {
        "cases": cases,
        "trials": sum(c["trials"] for c in cases),
        "detected": sum(c["detected"] for c in cases),
        "repaired": sum(c["repaired"] for c in cases),
        "failures": failures,
    }
    if cli:
        result["cli"] = run_cli_corruption(seed, log=log)
        failures.extend(result["cli"]["failures"])
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def run_cli_corruption(
    seed: int = 0,
    cases: tuple[tuple[str, str], ...] = ALL_CASES,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Damage a real index (built by `rag index`), then run `rag ask`: it must rebuild with a
    message naming the file and give the right answer. Returns {"cases", "repaired", "failures"}."""
    rng = random.Random(seed)
    failures: list[str] = []
    repaired = 0
    with tempfile.TemporaryDirectory(prefix="rag-cli-corruption-") as tmp:
        corpus, base = Path(tmp) / "corpus", Path(tmp) / "base"
        write_towns(corpus, range(12))
        code, _, err = run_cli("index", "--corpus", str(corpus), "--index", str(base), "--quiet")
        if code != 0:
            raise RagError(f"rag index failed on the check's corpus: {err.strip()[-300:]}")
        for n, (role, kind) in enumerate(cases):
            index_dir = Path(tmp) / f"{role}-{kind}"
            shutil.copytree(base, index_dir)
            path = damaged_file(index_dir, role)
            done = damage(path, kind, n, rng)
            question, doc_id, expected = town_fact(n % 12)
            place = ("--corpus", str(corpus), "--index", str(index_dir))
            code, out, err = run_cli("ask", question, *place, "--json")
            where = f"rag ask after {role} {kind} ({done})"
            before = repaired
            said = [line for line in err.splitlines() if REBUILD_MESSAGE in line]
            if code != 0:
                failures.append(f"{where}: exited {code}: {err.strip()[-300:]}")
            elif not said or path.name not in said[0]:
                failures.append(f"{where}: no rebuild message naming {path.name}: {err.strip()[-300:]}")
            elif json.loads(out)["answer"] != expected or json.loads(out)["doc_id"] != doc_id:
                failures.append(f"{where}: answered {json.loads(out)['answer']!r}, not {expected!r}")
            else:
                repaired += 1
            log(f"{where}: {'repaired and answered' if repaired > before else failures[-1]}")
            shutil.rmtree(index_dir)
    return {"cases": len(cases), "repaired": repaired, "failures": failures}
