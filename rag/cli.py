"""The `rag` command line: index a corpus, search it, and (later stages) ask and evaluate.

Built on click (composable subcommands, typed options, exit code 2 for usage errors). Every
RagError becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from embeddings.factory import ENCODERS
from rag.cli_support import F, echo_err, friendly
from rag.errors import RagError
from rag.pipeline import READERS, PipelineSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rag.answer import Answer

corpus_option = click.option(
    "--corpus",
    required=True,
    type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
    help="Folder of articles (.txt, .md, .html), searched recursively.",
)
index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Index folder (default: a per-corpus folder under ~/.cache/rag-news-qa).",
)
json_out_option = click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the numbers to this JSON file.",
)


def _settings(
    threshold: float | None,
    reader: str = PipelineSettings.reader,
    reader_model: Path | None = None,
    encoder: str = PipelineSettings.encoder,
) -> PipelineSettings:
    chosen: dict[str, Any] = {
        "reader": reader,
        "reader_model": str(reader_model) if reader_model else None,
        "encoder": encoder,
    }
    if threshold is not None:
        chosen["abstain_threshold"] = threshold
    if reader_model is not None and not reader_model.is_dir():
        raise RagError(f"reader model folder not found: '{reader_model}'")
    try:
        return PipelineSettings(**chosen)
    except ValueError as exc:
        raise RagError(str(exc)) from exc


encoder_option = click.option(
    "--encoder",
    type=click.Choice(list(ENCODERS)),
    default=PipelineSettings.encoder,
    show_default=True,
    help="Sentence encoder: onnx (the MiniLM weights on ONNX Runtime) and torch give the same vectors "
    "and share an index; onnx-int8 has its own (switching to or from it re-embeds).",
)

reader_options = [
    click.option(
        "--reader",
        type=click.Choice(list(READERS)),
        default=PipelineSettings.reader,
        show_default=True,
        help="Answer extractor.",
    ),
    click.option(
        "--reader-model",
        type=click.Path(path_type=Path),
        default=None,
        help="Folder of a trained span model (rag train-reader); default: the shipped one.",
    ),
]


def _reader_options(func: F) -> F:
    for option in reversed(reader_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Extractive question answering over a folder of news articles, with exact citations."""


@main.command()
@corpus_option
@index_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--show-duplicates", is_flag=True, help="List every duplicate article.")
@encoder_option
@friendly
def index(corpus: Path, index_dir: Path | None, quiet: bool, show_duplicates: bool, encoder: str) -> None:
    """Build or update the index of CORPUS (only new, changed or deleted articles)."""
    from rag.pipeline import QAPipeline

    qa = QAPipeline.from_corpus(
        corpus,
        index_dir=index_dir,
        settings=_settings(None, encoder=encoder),
        progress=not quiet,
        log=echo_err,
    )
    report = qa.report
    assert report is not None
    state = (
        "up to date"
        if report.up_to_date
        else (
            f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed; "
            f"{report.embedded_passages} passages embedded"
        )
    )
    click.echo(f"index: {report.index_dir}")
    click.echo(f"{report.articles} articles, {report.passages} passages ({state}) in {report.seconds:.2f} s")
    if report.duplicates:
        exact = sum(d.kind == "exact" for d in report.duplicates)
        click.echo(
            f"{len(report.duplicates)} duplicate articles not indexed "
            f"({exact} exact copies, {len(report.duplicates) - exact} same body)"
        )
        for dup in report.duplicates if show_duplicates else report.duplicates[:5]:
            click.echo(f"  {dup.doc_id} = {dup.duplicate_of} ({dup.kind})")
        if not show_duplicates and len(report.duplicates) > 5:
            click.echo("  ... (--show-duplicates lists them all)")
    for skipped in report.skipped:
        click.echo(f"skipped {skipped.doc_id}: {skipped.reason}")


@main.command()
@click.argument("question")
@corpus_option
@index_option
@click.option("-k", "k", type=int, default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@encoder_option
@friendly
def search(question: str, corpus: Path, index_dir: Path | None, k: int, as_json: bool, encoder: str) -> None:
    """Print the passages of CORPUS that best match QUESTION."""
    from rag.pipeline import QAPipeline
    from rag.retrieval import check_k, check_question

    check_question(question)
    check_k(k)
    qa = QAPipeline.from_corpus(
        corpus, index_dir=index_dir, settings=_settings(None, encoder=encoder), log=echo_err
    )
    hits = qa.retrieve(question, k=k)
    if as_json:
        rows = [
            {
                "rank": h.rank,
                "score": round(h.score, 6),
                "doc_id": h.passage.doc_id,
                "title": h.title,
                "start": h.passage.start,
                "end": h.passage.end,
                "text": h.passage.text,
                "dense_score": h.dense_score,
                "keyword_score": h.keyword_score,
            }
            for h in hits
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not hits:
        click.echo("no passages found")
    for h in hits:
        click.echo(
            f"{h.rank}. [{h.score:.3f}] {h.title} ({h.passage.doc_id} {h.passage.start}-{h.passage.end})"
        )
        click.echo("   " + h.passage.text.replace("\n", "\n   "))


@main.group(invoke_without_command=True)
@click.option("--quick", is_flag=True, help="CI size: a BBC subset and the scale table up to 100k.")
@json_out_option
@click.option(
    "--docs",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write BENCHMARKS.md, benchmarks.json and scale.svg here (default: docs/ for a full run).",
)
@click.option(
    "--bbc",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Unpacked BBC corpus (default: unpack ../shared/datasets/bbc-news/bbc.tar.gz into the cache).",
)
@click.option("--rerender", is_flag=True, help="Only re-render BENCHMARKS.md from its benchmarks.json.")
@click.option(
    "--refresh-query",
    is_flag=True,
    help="Measure only the query latencies again, into a full run's benchmarks.json.",
)
@click.option(
    "--refresh-index",
    is_flag=True,
    help="Measure only the index builds and the processes (memory, cold start) again, likewise.",
)
@click.pass_context
@friendly
def bench(
    ctx: click.Context,
    quick: bool,
    json_out: Path | None,
    docs: Path | None,
    bbc: Path | None,
    rerender: bool,
    refresh_query: bool,
    refresh_index: bool,
) -> None:
    """Measure speed and scale in one run (docs/BENCHMARKS.md); subcommands measure one part."""
    if ctx.invoked_subcommand is not None:
        return
    from rag.bench_markdown import write_benchmarks
    from rag.bench_suite import refresh_index as refresh_indexes
    from rag.bench_suite import refresh_query as refresh
    from rag.bench_suite import run_suite

    # the measured JSON is the record; the Markdown (and plot) are made from it
    if rerender or refresh_query or refresh_index:
        docs = docs or Path("docs")
        what = "re-render" if rerender else "refresh"
        try:
            measured = json.loads((docs / "benchmarks.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RagError(f"cannot {what}: no readable '{docs / 'benchmarks.json'}' ({exc})") from exc
        if refresh_index:
            measured = refresh_indexes(measured, bbc=bbc or _unpacked_bbc(), log=echo_err)
        if refresh_query:
            measured = refresh(measured, bbc=bbc or _unpacked_bbc(), log=echo_err)
        write_benchmarks(measured, docs)
        click.echo(f"wrote {docs / 'BENCHMARKS.md'} from {docs / 'benchmarks.json'}")
        return

    result = run_suite(quick=quick, bbc=bbc or _unpacked_bbc(), log=echo_err)
    if json_out:
        json_out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_out}")
    docs = docs or (None if quick else Path("docs"))
    if docs is not None:
        write_benchmarks(result, docs)
        click.echo(f"wrote {docs / 'BENCHMARKS.md'}")
    click.echo(f"done in {result['seconds'] / 60:.1f} minutes")


@bench.command("index")
@corpus_option
@json_out_option
@friendly
def bench_index_command(corpus: Path, json_out: Path | None) -> None:
    """Passages/second of the whole index build next to raw SentenceTransformer.encode."""
    from rag.bench import bench_index

    result = bench_index(corpus)
    click.echo(
        f"{result['articles']} articles, {result['passages']} passages\n"
        f"pipeline (read+clean+chunk+embed+store): {result['pipeline_passages_per_s']:.1f} passages/s "
        f"({result['pipeline_s']:.1f} s)\n"
        f"raw SentenceTransformer.encode:          {result['raw_encode_passages_per_s']:.1f} passages/s "
        f"({result['raw_encode_s']:.1f} s)\n"
        f"ratio pipeline/raw: {result['ratio']:.3f} (target >= 0.9)\n"
        f"with the reader's data (parses, sentence vectors), as `rag index` builds it: "
        f"{result['with_reading']['pipeline_passages_per_s']:.1f} passages/s, "
        f"ratio {result['with_reading']['ratio']:.3f}"
    )
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@main.command()
@click.argument("question")
@corpus_option
@index_option
@click.option("-k", "k", type=int, default=None, help="Passages to read (default 5).")
@click.option("--threshold", type=float, default=None, help="Abstention threshold in [0, 1].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_reader_options
@encoder_option
@friendly
def ask(
    question: str,
    corpus: Path,
    index_dir: Path | None,
    k: int | None,
    threshold: float | None,
    as_json: bool,
    reader: str,
    reader_model: Path | None,
    encoder: str,
) -> None:
    """Answer QUESTION with a verbatim span of an article in CORPUS, with its citation."""
    from rag.answer import NOT_FOUND_MESSAGE, answer_json
    from rag.pipeline import QAPipeline
    from rag.retrieval import check_k, check_question

    check_question(question)
    if k is not None:
        check_k(k)
    settings = _settings(threshold, reader, reader_model, encoder)
    qa = QAPipeline.from_corpus(corpus, index_dir=index_dir, settings=settings, log=echo_err)
    answer = qa.ask(question, k=k)
    if as_json:
        click.echo(json.dumps(answer_json(answer), ensure_ascii=False, indent=2))
        return
    # The other candidates are listed, as the chat app lists them: for about one new question in
    # ten the right span is the second or third (docs/EVALUATION.md: "best of the first 3").
    others = answer.others
    if answer.text is None:
        click.echo(f"{NOT_FOUND_MESSAGE} (best candidate scored {answer.score:.3f})")
        if others:
            click.echo(f"Unconfirmed, below the threshold {qa.settings.threshold:.3f}: {_located(others[0])}")
        if others[1:]:
            click.echo(f"Also unconfirmed: {_listed(others[1:])}")
        click.echo("Closest passages:")
    else:
        click.echo(f"Answer: {answer.text}   (score {answer.score:.3f})")
        click.echo(f"Sentence: {answer.sentence}")
        if others:
            click.echo(f"Other candidates: {_listed(others)}")
    for c in answer.citations:
        click.echo(f"  [{c.title}] {c.doc_id}, characters {c.passage_start}-{c.passage_end}")


def _located(answer: Answer) -> str:
    """A candidate with the article and characters it is a verbatim span of."""
    return f"{answer.text!r} in {answer.doc_id}, characters {answer.start}-{answer.end}"


def _listed(answers: Sequence[Answer]) -> str:
    return "; ".join(f"{_located(a)} (score {a.score:.3f})" for a in answers)


@bench.command("query")
@corpus_option
@click.option(
    "--questions",
    "questions_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="JSON Lines question file (default: CORPUS/questions.jsonl).",
)
@json_out_option
@_reader_options
@friendly
def bench_query_command(
    corpus: Path, questions_file: Path | None, json_out: Path | None, reader: str, reader_model: Path | None
) -> None:
    """Latency per question (retrieve, read, total; p50 and p95) after warm-up."""
    from rag.bench import bench_query
    from rag.evaluation import load_question_file

    path = questions_file or corpus / "questions.jsonl"
    load = load_question_file(path, corpus)  # answers as text, or as spans of the corpus's articles
    for problem in load.problems:
        click.echo(f"warning: {path}: {problem}", err=True)
    questions = [q.question for q in load.questions]
    result = bench_query(corpus, questions, settings=_settings(None, reader, reader_model))
    for key in ("retrieve", "read", "total"):
        click.echo(f"{key:9} p50 {result[key]['p50_ms']:7.1f} ms   p95 {result[key]['p95_ms']:7.1f} ms")
    click.echo(f"({result['questions']} questions after {result['warmup']} warm-up questions)")
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@main.command("eval")
@click.argument("questions", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--corpus",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of articles (not needed for a SQuAD file, which brings its own).",
)
@index_option
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the full results (summary and per question) to this JSON file.",
)
@click.option("--limit", type=int, default=None, help="A fixed, seeded sample of N questions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --limit sample.")
@click.option("--threshold", type=float, default=None, help="Abstention threshold in [0, 1].")
@click.option(
    "--failures",
    "worst",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many of the worst failures to print; 0 prints the summary only (keeps a held-out set unread).",
)
@_reader_options
@encoder_option
@friendly
def eval_command(
    questions: Path,
    corpus: Path | None,
    index_dir: Path | None,
    json_out: Path | None,
    limit: int | None,
    seed: int,
    threshold: float | None,
    worst: int,
    reader: str,
    reader_model: Path | None,
    encoder: str,
) -> None:
    """Score the pipeline on a question file (JSON Lines) or a SQuAD v1.1 file."""
    from rag.eval_runner import evaluate_file
    from rag.evaluation import format_summary

    if limit is not None and limit < 1:
        raise RagError(f"--limit must be >= 1, got {limit}")
    result = evaluate_file(
        questions,
        corpus=corpus,
        index_dir=index_dir,
        limit=limit,
        seed=seed,
        settings=_settings(threshold, reader, reader_model, encoder),
        progress=True,
        log=echo_err,
    )
    for problem in result.problems:
        click.echo(f"warning: {questions}: {problem}", err=True)
    click.echo(format_summary(result.summary, worst=worst))
    if result.reader_alone:
        alone = result.reader_alone
        auc = alone.get("no_answer_auc")
        click.echo(
            f"reader alone (gold paragraph): EM {alone['exact_match']:.3f}  F1 {alone['f1']:.3f}"
            + ("" if auc is None else f"  no-answer AUC {auc:.3f} ({alone['no_answer_pairs']} pairs)")
        )
    if json_out:
        json_out.write_text(json.dumps(result.summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_out}")


@main.command()
@click.option(
    "--seeds",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("seeds"),
    show_default=True,
    help="Corpus holding questions.jsonl.",
)
@click.option(
    "--bbc",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Unpacked BBC News folder (default: unpack ../shared/datasets/bbc-news/bbc.tar.gz).",
)
@click.option("--squad-sample", type=int, default=1000, show_default=True, help="0 skips SQuAD.")
@click.option(
    "--docs", type=click.Path(path_type=Path, file_okay=False), default=Path("docs"), show_default=True
)
@click.option("--rerender", is_flag=True, help="Only re-render the Markdown from docs/evaluation.json.")
@friendly
def report(seeds: Path, bbc: Path | None, squad_sample: int, docs: Path, rerender: bool) -> None:
    """Measure quality on every question set and regenerate docs/EVALUATION.md."""
    from rag.report import BBC_ARCHIVE, build_report, write_report

    if rerender:
        saved = docs / "evaluation.json"
        if not saved.is_file():
            raise RagError(f"no saved measurements to render: '{saved}'")
        write_report(json.loads(saved.read_text(encoding="utf-8")), docs)
        click.echo(f"re-rendered {docs / 'EVALUATION.md'} from {saved} (no new measurements)")
        return
    if bbc is None and BBC_ARCHIVE.is_file():
        bbc = _unpacked_bbc()
    result = build_report(seeds, bbc, squad_sample=squad_sample, log=echo_err)
    write_report(result, docs)
    click.echo(f"wrote {docs / 'EVALUATION.md'} and {docs / 'evaluation.json'}")


def _unpacked_bbc() -> Path:
    """The BBC archive unpacked once into the cache (the shared copy is read-only)."""
    import tarfile

    from rag.manifest import default_index_dir
    from rag.report import BBC_ARCHIVE

    target = default_index_dir(BBC_ARCHIVE).parent / "corpora" / "bbc-news"
    if not (target / "bbc").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(BBC_ARCHIVE) as archive:
            archive.extractall(target, filter="data")
    return target / "bbc"


def _register() -> None:
    from rag.cli_reliability import reliability_command
    from rag.cli_train import reproduce_reader_command, train_reader_command

    main.add_command(train_reader_command)
    main.add_command(reproduce_reader_command)
    main.add_command(reliability_command)


_register()
