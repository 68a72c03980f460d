"""Crash consistency: index runs killed with SIGKILL at random moments leave the previous index or
the new one, never a mix, and the next run completes (SQLite's crash testing is the model).

`run_crash_test` kills `python -m rag.crashtest_worker` (the real `sync_index` with a test-double
encoder, so hundreds of kills fit in minutes) during a first build, an incremental update and a
deletion. `run_cli_kill_check` is the independent check: it kills the real `rag index` command
(real encoder) and then asks the real `rag search` and `rag ask` commands.

    >>> result = run_crash_test(kills=54, seed=20261201)
    >>> result["kills"], result["attempts"], result["failures"]
    (54, 62, [])
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.corpus_index import CorpusIndex
from rag.crashtest_worker import HashEncoder
from rag.errors import RagError
from rag.manifest import MANIFEST
from rag.retrieval import HybridRetriever

SCENARIOS = ("build", "update", "delete")
DELAY_S = 0.05  # per encoder call in a killed run, so that the embedding phase is not instant
RUN_TIMEOUT_S = 600
MAX_ATTEMPTS_PER_KILL = 3  # runs that end before their kill moment are retried, this many at most
WORDS = "harbour storm mayor budget vaccine river festival strike election orchestra".split()
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # so `python -m rag...` works from a checkout

Log = Callable[[str], None]


@dataclass(frozen=True)
class IndexState:
    """What a committed index holds: (doc_id, content hash) per article and the passage count."""

    docs: tuple[tuple[str, str], ...]
    passages: int

    def describe(self) -> str:
        return f"{len(self.docs)} articles, {self.passages} passages"


def harness_article(n: int, version: int = 0) -> str:
    """Article `n` of a synthetic corpus; a new `version` changes its title and every sentence."""
    rng = random.Random(n * 31 + version)
    body = " ".join(
        f"Sentence {k} of story {n} version {version} mentions {rng.choice(WORDS)}." for k in range(12)
    )
    return f"Story {n} v{version}\n\n{body}\n"


def write_articles(corpus: Path, numbers: range, version: int = 0) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (corpus / f"{n:04d}.txt").write_text(harness_article(n, version), encoding="utf-8")


def read_state(index_dir: Path) -> IndexState | None:
    """The committed state after verifying every checksum and answering a search; None when there
    is no index yet. Raises IndexStateError for a damaged index, RagError when it does not answer."""
    if not (index_dir / MANIFEST).is_file():
        return None
    index = CorpusIndex.open(index_dir, verify=True)
    try:
        listed = sorted(d for d, entry in index.manifest["articles"].items() if entry.get("indexed"))
        stored = {d: a for d in listed if (a := index.store.article(d)) is not None}
        articles, passages = index.store.count()
        if articles != len(listed) or len(stored) != len(listed):
            raise RagError(f"the store holds {articles} articles, the manifest lists {len(listed)}")
        if passages != len(index.vectors):
            raise RagError(f"{len(index.vectors)} vectors for {passages} passages")
        docs = tuple((d, a.content_hash) for d, a in stored.items())
        if any(index.manifest["articles"][d]["content_hash"] != h for d, h in docs):
            raise RagError("an article in the store is not the version the manifest lists")
        if docs:
            title = stored[docs[0][0]].title
            hits = HybridRetriever(index, HashEncoder()).retrieve(title, k=3)
            if not hits:
                raise RagError(f"a search for the title {title!r} found nothing")
            for hit in hits:
                article = index.store.article(hit.passage.doc_id)
                if article is None or article.text[hit.passage.start : hit.passage.end] != hit.passage.text:
                    raise RagError(f"hit {hit.passage.doc_id} is not a verbatim slice of its article")
        return IndexState(docs, passages)
    finally:
        index.close()


def start_worker(
    corpus: Path, index_dir: Path, delay: float, stdout: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`python -m rag.crashtest_worker` in a new process (stderr piped; stdout as asked)."""
    command = [sys.executable, "-m", "rag.crashtest_worker", str(corpus), str(index_dir), str(delay)]
    return subprocess.Popen(
        command, cwd=PACKAGE_ROOT, env=harness_env(), stdout=stdout, stderr=subprocess.PIPE
    )


def harness_env() -> dict[str, str]:
    """This environment, with the package importable from a checkout too."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT) + (os.pathsep + path if path else "")}


def _complete_run(corpus: Path, index_dir: Path, delay: float) -> float:
    """One uninterrupted worker run; its length in seconds."""
    began = time.monotonic()
    process = start_worker(corpus, index_dir, delay)
    _, err = process.communicate(timeout=RUN_TIMEOUT_S)
    if process.returncode != 0:
        raise RagError(f"an uninterrupted index run failed: {err.decode(errors='replace').strip()}")
    return time.monotonic() - began


def _restore(snapshot: Path, index_dir: Path) -> None:
    shutil.rmtree(index_dir, ignore_errors=True)
    if snapshot.exists():
        shutil.copytree(snapshot, index_dir)


@dataclass
class _Tally:
    attempts: int = 0  # runs started to be killed
    kills: int = 0  # of those, runs still going when their moment came: SIGKILLed mid-run


def _kill_loop(
    scenario: str,
    corpus: Path,
    index_dir: Path,
    scratch: Path,
    kills: int,
    rng: random.Random,
    failures: list[str],
    log: Log,
) -> _Tally:
    """Kill `kills` runs of the pending change at random moments; after each, the index must be
    old or new. A run that ends before its moment is not killed and does not count."""
    before = read_state(index_dir)
    snapshot, trial = scratch / "snapshot", scratch / "trial"
    for folder in (snapshot, trial):
        shutil.rmtree(folder, ignore_errors=True)
    if index_dir.exists():
        shutil.copytree(index_dir, snapshot)
        shutil.copytree(index_dir, trial)
    duration = _complete_run(corpus, trial, DELAY_S)  # an uninterrupted run on a copy: its length
    after = read_state(trial)
    expected = sorted(p.name for p in corpus.glob("*.txt"))
    if after is None or [d for d, _ in after.docs] != expected:
        failures.append(f"{scenario}: an uninterrupted run did not index exactly the corpus's articles")
    tally = _Tally()
    while tally.kills < kills and tally.attempts < kills * MAX_ATTEMPTS_PER_KILL:
        process = start_worker(corpus, index_dir, DELAY_S)
        delay = rng.uniform(0.0, duration)
        time.sleep(delay)
        tally.attempts += 1
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            tally.kills += 1
        process.communicate()
        where = f"{scenario} run {tally.attempts} (SIGKILL at {delay:.2f} s)"
        try:
            state = read_state(index_dir)
        except RagError as exc:  # IndexStateError included: the index does not open or answer
            failures.append(f"{where}: the index does not open and answer: {exc}")
            _restore(snapshot, index_dir)
            continue
        if state != before and state != after:
            shown = state.describe() if state else "no index"
            failures.append(f"{where}: a mix of the old and the new index ({shown})")
        if state != before:  # committed before the kill: go back to the old index and go on
            _restore(snapshot, index_dir)
    _complete_run(corpus, index_dir, 0.0)  # after all that, a normal run completes
    final = read_state(index_dir)
    if final != after:
        failures.append(f"{scenario}: the run after the kills did not produce the new index")
    if tally.kills < kills:
        failures.append(
            f"{scenario}: only {tally.kills} of {tally.attempts} runs were still going to be killed"
        )
    log(f"{scenario}: {tally.kills} runs SIGKILLed mid-run, {tally.attempts} started ({duration:.1f} s runs)")
    return tally


def run_crash_test(
    kills: int,
    seed: int = 0,
    articles: int = 300,
    log: Log = lambda message: None,
    *,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """SIGKILL `kills` index runs mid-run in all (split over a first build of `articles` articles,
    an incremental update and a deletion), checking the index after every kill.

    Returns {"kills" (SIGKILLs that landed mid-run), "mid_run_kills" (the same count), "attempts"
    (runs started; those that ended before their moment were not killed), "failures" (empty when
    the index always held the old or the new state and the next run completed), "scenarios" (name
    -> kills), "scenario_attempts", "articles", "seed", "seconds"}.
    """
    if kills < len(SCENARIOS):
        raise RagError(f"kills must be >= {len(SCENARIOS)} (one per scenario), got {kills}")
    if articles < 10:
        raise RagError(f"articles must be >= 10, got {articles}")
    started = time.monotonic()
    rng = random.Random(seed)
    per = [kills // 3 + (1 if i < kills % 3 else 0) for i in range(3)]
    failures: list[str] = []
    tallies: dict[str, _Tally] = {}
    with tempfile.TemporaryDirectory(prefix="rag-crashtest-", dir=workdir) as tmp:
        scratch = Path(tmp)
        corpus, index_dir = scratch / "corpus", scratch / "index"
        for scenario, count in zip(SCENARIOS, per, strict=True):
            if scenario == "build":
                write_articles(corpus, range(articles))
            elif scenario == "update":  # with 300 articles: 50 changed, 30 new
                write_articles(corpus, range(articles * 5 // 6, articles * 11 // 10), version=1)
            else:  # every fifth of the first articles deleted
                for n in range(0, articles, 5):
                    (corpus / f"{n:04d}.txt").unlink()
            tallies[scenario] = _kill_loop(scenario, corpus, index_dir, scratch, count, rng, failures, log)
    return {
        "kills": sum(t.kills for t in tallies.values()),
        "mid_run_kills": sum(t.kills for t in tallies.values()),
        "attempts": sum(t.attempts for t in tallies.values()),
        "failures": failures,
        "scenarios": {name: t.kills for name, t in tallies.items()},
        "scenario_attempts": {name: t.attempts for name, t in tallies.items()},
        "articles": articles,
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
    }


# -- the independent check: the real `rag index`, `rag search` and `rag ask` commands -----------

FIRST_NAMES = "Helena Marcus Ingrid Tobias Yara Dmitri Lucia Oskar Priya Rafael Noemi Anselm".split()
LAST_NAMES = "Vasquez Lindqvist Okafor Brennan Moreau Halvorsen Castellano Ferreira Novak Whitlock".split()
TOWN_HEADS = "Ash Brook Cold Elm Fair Glen High Kings Lake Mill North Oak Red Stone West".split()
TOWN_TAILS = "ford field haven bury wick mouth dale port cliff moor".split()
FILLER = [
    "The council of {town} met on Tuesday to discuss the harbour budget.",
    "Residents of {town} asked for more buses and a new library.",
    "A storm last winter flooded the river bank near the market of {town}.",
    "Local shops in {town} reported a busy festival weekend.",
    "The school board of {town} will publish its plans next month.",
    "Engineers inspected the old bridge that links {town} to the coast road.",
]


def _town(n: int) -> str:
    return f"{TOWN_HEADS[n % len(TOWN_HEADS)]}{TOWN_TAILS[n // len(TOWN_HEADS) % len(TOWN_TAILS)]}"


def _mayor(n: int, version: int) -> str:
    """A name that differs between consecutive versions, so a stale index answers wrongly."""
    return f"{FIRST_NAMES[(n + version) % len(FIRST_NAMES)]} {LAST_NAMES[n * 7 % len(LAST_NAMES)]}"


def _town_article(n: int, version: int) -> str:
    town = _town(n)
    lines = [line.format(town=town) for line in FILLER]
    lines.insert(3, f"The mayor of {town} is {_mayor(n, version)}, who took office this spring.")
    return f"{town} council news, edition {version}\n\n" + " ".join(lines) + "\n"


def town_fact(n: int, version: int = 0) -> tuple[str, str, str]:
    """(question, doc_id, answer) about the article `write_towns` writes for town `n`."""
    return f"Who is the mayor of {_town(n)}?", f"town{n:03d}.txt", _mayor(n, version)


def write_towns(corpus: Path, numbers: range, version: int = 0) -> None:
    """Articles with one checkable fact each (the mayor of a town), for real-model checks."""
    corpus.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (corpus / f"town{n:03d}.txt").write_text(_town_article(n, version), encoding="utf-8")


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rag", *args],
        cwd=PACKAGE_ROOT,
        env=harness_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_cli(*args: str) -> tuple[int, str, str]:
    """`python -m rag ARGS...`: (exit code, stdout, stderr)."""
    process = _cli(*args)
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _check_cli_answers(
    corpus: Path, index_dir: Path, n: int, version: int, where: str, failures: list[str]
) -> tuple[int, int]:
    """`rag search` and `rag ask` about town `n`; returns (correct answers, runs that rebuilt)."""
    import json

    from rag.documents import parse_article

    question, doc_id, mayor = town_fact(n, version)
    place = ["--corpus", str(corpus), "--index", str(index_dir), "--json"]
    correct = rebuilt = 0
    code, out, err = run_cli("search", question, "-k", "3", *place)
    rebuilt += "rebuilding the index" in err
    hits = json.loads(out) if code == 0 else []
    if code != 0:
        failures.append(f"{where}: rag search exited {code}: {err.strip()[-300:]}")
    elif not any(h["doc_id"] == doc_id and mayor in h["text"] for h in hits):
        failures.append(f"{where}: rag search did not find the current text of {doc_id}")
    else:
        correct += 1
    code, out, err = run_cli("ask", question, *place)
    rebuilt += "rebuilding the index" in err
    if code != 0:
        failures.append(f"{where}: rag ask exited {code}: {err.strip()[-300:]}")
        return correct, rebuilt
    answer = json.loads(out)
    article = parse_article(doc_id, (corpus / doc_id).read_bytes())
    start, end = answer["answer_start"], answer["answer_end"]
    if answer["answer"] != mayor or answer["doc_id"] != doc_id or article.text[start:end] != mayor:
        got = f"{answer['answer']!r} from {answer['doc_id']}"
        failures.append(f"{where}: rag ask answered {got}, not {mayor!r} from {doc_id}")
    else:
        correct += 1
    return correct, rebuilt


def run_cli_kill_check(
    kills: int, seed: int = 0, articles: int = 120, log: Log = lambda message: None
) -> dict[str, Any]:
    """Kill the real `rag index` (real encoder) at random moments, then ask the real `rag search`
    and `rag ask`: they must answer from the corpus as it now is (rebuilding with a message if
    the index needs it). Before each kill every article changes, so each run re-embeds them all.

    Returns {"kills" (runs killed at their moment), "mid_run_kills" (of those, runs still going
    then), "answers" (correct CLI answers), "questions", "rebuilds" (CLI runs that said they
    rebuilt), "failures" (empty when all was well), "seconds"}.
    """
    if kills < 1:
        raise RagError(f"kills must be >= 1, got {kills}")
    towns = len(TOWN_HEADS) * len(TOWN_TAILS)
    if articles < 1 or articles + kills > towns:
        raise RagError(f"articles + kills must be at most {towns} (one town each), got {articles + kills}")
    started = time.monotonic()
    rng = random.Random(seed)
    failures: list[str] = []
    mid_run = correct = rebuilds = 0
    with tempfile.TemporaryDirectory(prefix="rag-cli-kill-") as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        write_towns(corpus, range(articles), version=0)
        began = time.monotonic()  # an uninterrupted build elsewhere gives the length of a run
        trial = Path(tmp) / "trial"
        code, _, err = run_cli("index", "--corpus", str(corpus), "--index", str(trial), "--quiet")
        if code != 0:
            raise RagError(f"rag index failed on the check's corpus: {err.strip()[-300:]}")
        duration = time.monotonic() - began
        for attempt in range(kills):
            version = attempt  # every article changes before each run but the first
            if attempt:
                write_towns(corpus, range(attempt, articles + attempt), version)
                (corpus / f"town{attempt - 1:03d}.txt").unlink()
            process = _cli("index", "--corpus", str(corpus), "--index", str(index_dir), "--quiet")
            delay = duration * (attempt + rng.random()) / kills  # spread over the phases of a run
            time.sleep(delay)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                mid_run += 1
            process.communicate()
            where = f"CLI kill {attempt + 1} at {delay:.1f} s of {duration:.1f} s"
            got, rebuilt = _check_cli_answers(
                corpus, index_dir, attempt + rng.randrange(articles), version, where, failures
            )
            correct, rebuilds = correct + got, rebuilds + rebuilt
            log(f"{where}: {got} of 2 CLI answers correct{' (rebuilt)' if rebuilt else ''}")
        code, out, err = run_cli("index", "--corpus", str(corpus), "--index", str(index_dir), "--quiet")
        if code != 0 or "up to date" not in out:
            failures.append(f"a final rag index run did not find the index up to date: {(out + err)[-300:]}")
    return {
        "kills": kills,
        "mid_run_kills": mid_run,
        "answers": correct,
        "questions": 2 * kills,
        "rebuilds": rebuilds,
        "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
    }
