"""`rag train-reader`: fine-tune the span reader on SQuAD v1.1 train, resumably (rag.training)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import click

from rag.cli_support import F, echo_err, friendly
from rag.errors import RagError
from rag.swaps import LATEST_RULE, SWAP_RULES

SHARED_SQUAD = Path("../shared/datasets")
DEFAULT_TRAIN = SHARED_SQUAD / "squad-v1.1-train" / "train-v1.1.rebuilt.json.gz"
DEFAULT_DEV = SHARED_SQUAD / "squad-v1.1-dev" / "dev-v1.1.json.zip"

train_option = click.option(
    "--train",
    "train_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_TRAIN,
    show_default=True,
    help="SQuAD v1.1 train file (.json, .json.gz or .zip).",
)
dev_option = click.option(
    "--dev",
    "dev_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_DEV,
    show_default=True,
    help="SQuAD v1.1 dev file, for evaluation only (never trained on).",
)


def out_option(what: str) -> Callable[[F], F]:
    return click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
                        help=what)  # fmt: skip


def _sample_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[int, ...]]:
    """Each --exclude SEED:N as (seed, max_examples), SEED:N@K as (seed, max_examples, K)."""
    samples = []
    for position, value in enumerate(values):
        pair, at, after = value.partition("@")
        seed, _, count = pair.partition(":")
        try:
            sample = (int(seed), int(count), *([int(after)] if at else []))
        except ValueError:
            raise click.BadParameter(
                f"'{value}' is not SEED:N or SEED:N@K (integers, e.g. 0:25000 or 5:7000@5)"
            ) from None
        if sample[1] < 1:
            raise click.BadParameter(f"'{value}': N must be >= 1")
        if at and not 0 <= sample[2] <= position:
            raise click.BadParameter(f"'{value}': K counts the --exclude values before it (0 to {position})")
        samples.append(sample)
    return samples


device_option = click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")


@click.command("train-reader")
@out_option("Run folder: checkpoint/ (resumed by the same command) and model/ (the result).")
@train_option
@dev_option
@click.option("--max-examples", type=int, default=None, help="Train on a seeded sample of N questions.")
@click.option("--epochs", type=int, default=1, show_default=True, help="Passes over the training windows.")
@click.option("--max-steps", type=int, default=None, help="Stop after N optimizer steps (smoke tests).")
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after N minutes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--lr", type=float, default=5e-5, show_default=True)
@click.option("--max-length", type=int, default=384, show_default=True, help="Window length in tokens.")
@click.option("--stride", type=int, default=128, show_default=True, help="Window overlap in tokens.")
@click.option(
    "--eval-examples", type=int, default=2000, show_default=True, help="Seeded dev sample; 0: none."
)
@click.option(
    "--checkpoint-every", type=int, default=100, show_default=True, help="Steps between checkpoints."
)
@click.option(
    "--negatives",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of questions also paired with another paragraph as a no-answer example.",
)
@click.option(
    "--cut-negatives",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of questions also paired with their own paragraph less the answer's sentence, "
    "as a no-answer example.",
)
@click.option(
    "--swap-negatives",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of questions also asked with one of their names swapped for another of the article's "
    "(rag.swaps), against their own paragraph, as a no-answer example.",
)
@click.option(
    "--swap-rule",
    type=click.IntRange(min(SWAP_RULES), max(SWAP_RULES)),
    default=LATEST_RULE,
    show_default=True,
    help="How --swap-negatives checks a swap (rag.swaps): 1 by substrings (reader stage 9), "
    "2 by whole words, rejecting replacements that share a word with the name or the paragraph.",
)
@click.option(
    "--init-from",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Start from this trained reader folder instead of the packaged MiniLM.",
)
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    callback=_sample_pairs,
    metavar="SEED:N[@K]",
    help="Leave out the questions a run with --seed SEED --max-examples N drew (repeat per run), "
    "to train a further stage on questions no stage before it saw. SEED:N@K: that run itself "
    "excluded the first K values given here.",
)
@device_option
@friendly
def train_reader_command(
    out_dir: Path,
    train_path: Path,
    dev_path: Path,
    max_examples: int | None,
    epochs: int,
    max_steps: int | None,
    max_minutes: float | None,
    seed: int,
    batch_size: int,
    lr: float,
    max_length: int,
    stride: int,
    eval_examples: int,
    checkpoint_every: int,
    negatives: float,
    cut_negatives: float,
    swap_negatives: float,
    swap_rule: int,
    init_from: Path | None,
    exclude: list[tuple[int, ...]],
    device: str | None,
) -> None:
    """Fine-tune the packaged MiniLM as a SQuAD span reader; run it again to resume.

    The shipped reader (rag/models/reader/MODEL_CARD.md) records the exact command that made it.
    """
    from rag.training import train_reader

    _check_files(train_path, dev_path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        result = train_reader(
            train_path,
            dev_path,
            out_dir,
            max_examples=max_examples,
            epochs=epochs,
            max_steps=max_steps,
            max_minutes=max_minutes,
            seed=seed,
            batch_size=batch_size,
            lr=lr,
            max_length=max_length,
            stride=stride,
            eval_examples=eval_examples,
            checkpoint_every=checkpoint_every,
            negatives=negatives,
            cut_negatives=cut_negatives,
            swap_negatives=swap_negatives,
            swap_rule=swap_rule,
            init_from=init_from,
            exclude=exclude,
            device=device,
        )
    except ValueError as exc:
        raise RagError(str(exc)) from exc
    state = "finished" if result["finished"] else f"stopped ({result['stopped']}); run again to resume"
    echo_err(f"{result['steps']}/{result['planned_steps']} steps, {state}")
    if result["dev_f1"] is not None:
        echo_err(f"dev EM {result['dev_exact_match']:.3f} F1 {result['dev_f1']:.3f} "
                 f"on {result['dev_examples']} questions")  # fmt: skip
    click.echo(json.dumps(result, indent=1))


@click.command("reproduce-reader")
@out_option("Run folder: one stageN/ per training stage (resumed by the same command).")
@click.option(
    "--reader",
    "reader_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The reader whose stages.json to re-run (default: the shipped one).",
)
@train_option
@dev_option
@click.option("--max-minutes", type=float, default=None, help="Stop (checkpointed) after N minutes in all.")
@click.option("--from-stage", "first", type=int, default=1, show_default=True,
              help="Re-run the stages from this one on (checks one stage given the one before).")  # fmt: skip
@click.option(
    "--init-from",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="With --from-stage K > 1: the reader stage K-1 made (a run's model/ or a shipped ONNX reader).",
)
@device_option
@friendly
def reproduce_reader_command(
    out_dir: Path,
    reader_dir: Path | None,
    first: int,
    init_from: Path | None,
    train_path: Path,
    dev_path: Path,
    max_minutes: float | None,
    device: str | None,
) -> None:
    """Re-make a shipped reader: every stage in stages.json, chained, then compare dev F1 with it.

    Exits 1 when the last stage's dev F1 is more than one point from the recorded one. With
    --from-stage K --init-from DIR, only stages K on are re-run, starting from DIR.
    """
    from rag.model_card import recorded_stages
    from rag.neural_reader import PACKAGED_MODEL
    from rag.reproduce import format_result, reproduce, stage_plan

    _check_files(train_path, dev_path)
    folder = reader_dir or PACKAGED_MODEL
    plan = stage_plan(recorded_stages(folder), out_dir, first=first, init_from=init_from)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        result = reproduce(plan, train_path, dev_path, max_minutes=max_minutes, device=device, say=echo_err)
    except ValueError as exc:
        raise RagError(str(exc)) from exc
    click.echo(format_result(result))
    if result["within_tolerance"] is False:
        raise SystemExit(1)


def _check_files(*paths: Path) -> None:
    for path in paths:
        if not path.is_file():
            raise RagError(f"SQuAD file not found: '{path}'")
