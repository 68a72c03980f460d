"""`rag reliability`: run the bad-input matrix and the reliability harnesses, write docs/RELIABILITY.md."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rag.cli_support import echo_err, friendly
from rag.errors import RagError


@click.command("reliability")
@click.option(
    "--quick",
    is_flag=True,
    help="The reduced run CI makes: 10,000 tiny articles (not 100,000), fewer fuzz inputs and kills.",
)
@click.option(
    "--docs",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("docs"),
    show_default=True,
    help="Where RELIABILITY.md and reliability.json go.",
)
@click.option("--fuzz-examples", type=int, default=None, help="Fuzz inputs [default: 300 quick, 5000 full].")
@click.option("--kills", type=int, default=None, help="SIGKILLs of index runs [default: 6 quick, 60 full].")
@friendly
def reliability_command(quick: bool, docs: Path, fuzz_examples: int | None, kills: int | None) -> None:
    """Run every entry point against every class of bad input, the fuzzer, the crash test and the
    concurrency run; write docs/RELIABILITY.md and docs/reliability.json. Exits with 1 if any fails.

    Run it from the repository root (the app's checks need app.py there). The full run takes a while:
    it indexes 100,000 tiny articles, twice.
    """
    from rag.reliability import FULL_DEFAULTS, QUICK_DEFAULTS, run_reliability, write_reliability

    defaults = QUICK_DEFAULTS if quick else FULL_DEFAULTS
    fuzz_examples = int(defaults["fuzz_examples"]) if fuzz_examples is None else fuzz_examples
    kills = int(defaults["kills"]) if kills is None else kills
    if fuzz_examples < 1:
        raise RagError(f"--fuzz-examples must be >= 1, got {fuzz_examples}")
    if kills < 3:
        raise RagError(f"--kills must be >= 3 (one per crash scenario), got {kills}")
    result = run_reliability(quick, fuzz_examples, kills, log=echo_err)
    write_reliability(result, docs)
    matrix = result["matrix"]
    click.echo(
        f"wrote {docs / 'RELIABILITY.md'} and {docs / 'reliability.json'}: {matrix['failed']} failing cells, "
        f"{matrix['passed']} passing, {matrix['not_applicable']} not applicable"
    )
    if not result["ok"]:
        for problem in result["problems"]:
            echo_err(f"not clean: {problem}")
        sys.exit(1)
