"""Re-run every training stage of a shipped reader, in order, and compare the result with it.

    >>> plan = stage_plan(recorded_stages(PACKAGED_MODEL), Path("runs/chain"))
    >>> result = reproduce(plan, TRAIN, DEV, max_minutes=60)  # run again to resume

The shipped reader's `stages.json` holds each stage's `training.json`: its arguments, seed, steps
and dev score. Stage k starts from stage k-1's model in this run (stage 1 from the packaged
MiniLM), so one command re-makes the whole chain; each stage resumes from its checkpoint and a
finished stage is not trained again. Training is seeded and a resumed run is bit-identical, so a
stage given the same start reproduces its model exactly; the check the issue asks for is looser:
the last stage's dev F1 within `F1_TOLERANCE` of the recorded one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.training import ARGUMENT_DEFAULTS, train_reader

F1_TOLERANCE = 0.01  # one F1 point
# Recorded arguments that shape the model; paths and the time budget belong to the run instead.
TRAINING_KEYS = ("max_examples", "max_steps", "seed", "batch_size", "lr", "max_length", "stride",
                 "eval_examples", "checkpoint_every", "negatives", "cut_negatives", "epochs",
                 "exclude", "swap_negatives", "swap_rule")  # fmt: skip


@dataclass(frozen=True)
class StageRun:
    """Stage `number` (1-based): train into `out_dir` with `arguments`, starting from `init_from`."""

    number: int
    out_dir: Path
    arguments: dict[str, Any]
    init_from: Path | None  # None: the packaged MiniLM
    recorded: Mapping[str, Any]  # the stage's training.json as shipped

    @property
    def record_path(self) -> Path:
        return self.out_dir / "model" / "training.json"

    def finished_record(self) -> dict[str, Any] | None:
        """This run's training.json when the stage has finished; else None."""
        if not self.record_path.is_file():
            return None
        record: dict[str, Any] = json.loads(self.record_path.read_text())
        if not record.get("finished"):
            return None
        made_with = record.get("arguments", {})
        expected = {**self.arguments, "init_from": None if self.init_from is None else str(self.init_from)}
        changed = sorted(k for k, v in expected.items() if made_with.get(k, ARGUMENT_DEFAULTS.get(k)) != v)
        if changed:
            raise RagError(f"'{self.out_dir}' holds a stage trained with other {changed}; use a new --out")
        return record


def stage_plan(
    stages: Sequence[Mapping[str, Any]] | None,
    out: Path,
    *,
    first: int = 1,
    init_from: Path | None = None,
) -> list[StageRun]:
    """One StageRun per recorded stage from `first` on, chained: stage k starts from stage k-1's
    model here. `init_from` is where stage `first` starts when it is not the first stage: the
    reader stage `first - 1` made (a run's model folder, or a shipped ONNX reader)."""
    if not stages:
        raise RagError("no training stages recorded: the reader folder has no stages.json")
    if not 1 <= first <= len(stages):
        raise RagError(f"the reader records stages 1 to {len(stages)}; there is no stage {first}")
    if (first > 1) != (init_from is not None):
        raise RagError("a chain that starts after stage 1 needs the reader the stage before made "
                       "(--init-from), and only such a chain takes one")  # fmt: skip
    plan: list[StageRun] = []
    for number, recorded in enumerate(stages, 1):
        if number < first:
            continue
        given = recorded.get("arguments")
        if not isinstance(given, Mapping):
            raise RagError(f"stage {number} of stages.json records no arguments")
        missing = [k for k in ("max_examples", "seed", "lr") if k not in given]
        if missing:
            raise RagError(f"stage {number} of stages.json lacks {missing}")
        # A key the record lacks was added after the stage: the stage ran with its old default.
        arguments = {k: given[k] if k in given else ARGUMENT_DEFAULTS[k] for k in TRAINING_KEYS
                     if k in given or k in ARGUMENT_DEFAULTS}  # fmt: skip
        init = plan[-1].out_dir / "model" if plan else init_from
        plan.append(StageRun(number, out / f"stage{number}", arguments, init, recorded))
    return plan


def reproduce(
    plan: Sequence[StageRun],
    train_path: Path,
    dev_path: Path,
    *,
    max_minutes: float | None = None,
    device: str | None = None,
    say: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Train each stage not yet finished, in order, within `max_minutes` in all.

    Returns {"finished", "stages": [{"stage", "state", "dev_f1", "recorded_dev_f1"}...],
    "difference", "within_tolerance"}; the last two are None until the last stage is done (or when
    either dev F1 is missing).
    """
    began = time.monotonic()
    rows: list[dict[str, Any]] = []
    finished = True
    for run in plan:
        record = run.finished_record()
        state = "done before"
        if record is None:
            left = None if max_minutes is None else max_minutes - (time.monotonic() - began) / 60
            if not finished or (left is not None and left <= 0):  # out of time, now or before
                finished = False
                rows.append(_row(run, None, "not started"))
                continue
            say(f"stage {run.number} of {plan[-1].number}: training into '{run.out_dir}'")
            record = train_reader(train_path, dev_path, run.out_dir, max_minutes=left,
                                  init_from=run.init_from, device=device, **run.arguments)  # fmt: skip
            state = "trained"
            if not record["finished"]:
                finished = False
                rows.append(_row(run, None, f"stopped at step {record['steps']}/{record['planned_steps']}"))
                continue
        rows.append(_row(run, record, state))
    last = rows[-1] if rows else {}
    difference = None
    if finished and last.get("dev_f1") is not None and last.get("recorded_dev_f1") is not None:
        difference = last["dev_f1"] - last["recorded_dev_f1"]
    return {
        "finished": finished,
        "stages": rows,
        "difference": difference,
        "within_tolerance": None if difference is None else abs(difference) <= F1_TOLERANCE,
    }


def _row(run: StageRun, record: Mapping[str, Any] | None, state: str) -> dict[str, Any]:
    # A record here was made with the stage's recorded arguments (finished_record checks a run
    # found on disk), eval_examples and seed included: both dev F1 are on the same sample.
    return {
        "stage": run.number,
        "state": state,
        "out_dir": str(run.out_dir),
        "steps": None if record is None else record["steps"],
        "dev_f1": None if record is None else record.get("dev_f1"),
        "recorded_dev_f1": run.recorded.get("dev_f1"),
    }


def format_result(result: Mapping[str, Any]) -> str:
    """The per-stage table `rag reproduce-reader` prints."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}"

    lines = ["stage  state                 steps  dev F1 (here / recorded)"]
    for row in result["stages"]:
        steps = "" if row["steps"] is None else str(row["steps"])
        lines.append(f"{row['stage']:>5}  {row['state']:<20}  {steps:>5}  "
                     f"{pct(row['dev_f1'])} / {pct(row['recorded_dev_f1'])}")  # fmt: skip
    if not result["finished"]:
        lines.append("not finished: run the same command again to resume")
    elif result["difference"] is None:
        lines.append("finished; no dev F1 to compare (a stage recorded none on the same sample)")
    else:
        verdict = "within" if result["within_tolerance"] else "NOT within"
        lines.append(f"last stage: dev F1 {100 * result['difference']:+.2f} points against the recorded one, "
                     f"{verdict} {100 * F1_TOLERANCE:g} point")  # fmt: skip
    return "\n".join(lines)
