"""rag reproduce-reader: re-run every recorded stage, chained, and compare with the recorded reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.errors import RagError
from rag.reproduce import format_result, reproduce, stage_plan
from rag.training import train_reader
from tests.test_training import DEV, SMALL, TRAIN, needs_data

TINY = {k: v for k, v in SMALL.items() if k != "log_every"}


def _stage(seed: int, **arguments: Any) -> dict[str, Any]:
    return {"arguments": {"max_examples": 100, "seed": seed, "lr": 3e-5, "init_from": "rag/models/reader",
                          "max_minutes": 60, "train_path": "elsewhere.json", **arguments},
            "dev_examples": 2000, "dev_f1": 0.7}  # fmt: skip


def test_each_stage_starts_from_the_previous_stage_of_this_run(tmp_path: Path) -> None:
    plan = stage_plan([_stage(0), _stage(1, negatives=0.2), _stage(2, cut_negatives=0.5)], tmp_path)
    assert [run.number for run in plan] == [1, 2, 3]
    assert plan[0].init_from is None  # the packaged MiniLM, as the first stage was
    assert plan[1].init_from == tmp_path / "stage1" / "model"
    assert plan[2].init_from == tmp_path / "stage2" / "model"
    assert plan[2].out_dir == tmp_path / "stage3"
    # the recorded paths and time budget are the original run's, not this one's
    # a setting the record lacks came later: the stage ran with its old default
    assert plan[1].arguments == {"max_examples": 100, "seed": 1, "lr": 3e-5, "negatives": 0.2,
                                 "cut_negatives": 0.0, "epochs": 1, "exclude": [], "swap_negatives": 0.0,
                                 "swap_rule": 1}  # fmt: skip
    assert plan[2].arguments["cut_negatives"] == 0.5
    assert stage_plan([_stage(0, epochs=2)], tmp_path)[0].arguments["epochs"] == 2
    assert stage_plan([_stage(0, swap_rule=2)], tmp_path)[0].arguments["swap_rule"] == 2


def test_a_chain_can_start_at_a_later_stage_from_the_reader_before_it(tmp_path: Path) -> None:
    stages = [_stage(0), _stage(1), _stage(2)]
    plan = stage_plan(stages, tmp_path, first=2, init_from=Path("stage1-reader"))
    assert [run.number for run in plan] == [2, 3]
    assert plan[0].init_from == Path("stage1-reader") and plan[0].out_dir == tmp_path / "stage2"
    assert plan[1].init_from == tmp_path / "stage2" / "model"
    with pytest.raises(RagError, match="needs the reader the stage before made"):
        stage_plan(stages, tmp_path, first=2)
    with pytest.raises(RagError, match="only such a chain takes one"):
        stage_plan(stages, tmp_path, init_from=Path("x"))
    with pytest.raises(RagError, match="records stages 1 to 3; there is no stage 4"):
        stage_plan(stages, tmp_path, first=4, init_from=Path("x"))


def test_missing_or_incomplete_stage_records_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="no stages.json"):
        stage_plan(None, tmp_path)
    with pytest.raises(RagError, match="stage 2 .* records no arguments"):
        stage_plan([_stage(0), {"steps": 3}], tmp_path)
    with pytest.raises(RagError, match=r"stage 1 .* lacks \['seed'\]"):
        stage_plan([{"arguments": {"max_examples": 5, "lr": 1e-5}}], tmp_path)


def test_no_time_left_trains_nothing_and_says_how_to_go_on(tmp_path: Path) -> None:
    plan = stage_plan([_stage(0), _stage(1)], tmp_path)
    result = reproduce(plan, TRAIN, DEV, max_minutes=0)
    assert not result["finished"] and result["within_tolerance"] is None
    assert [row["state"] for row in result["stages"]] == ["not started", "not started"]
    assert not (tmp_path / "stage1").exists()
    assert "run the same command again to resume" in format_result(result)


@pytest.mark.slow
@needs_data
def test_a_two_stage_chain_is_made_again_bit_for_bit(tmp_path: Path) -> None:
    first = train_reader(TRAIN, DEV, tmp_path / "a1", max_steps=2, seed=5, **TINY)  # type: ignore[arg-type]
    second = train_reader(TRAIN, DEV, tmp_path / "a2", max_steps=2, seed=6, negatives=0.5,  # type: ignore[arg-type]
                          init_from=tmp_path / "a1" / "model", **TINY)  # fmt: skip
    plan = stage_plan([first, second], tmp_path / "chain")
    said: list[str] = []
    result = reproduce(plan, TRAIN, DEV, say=said.append)
    assert result["finished"] and result["within_tolerance"] is True and result["difference"] == 0.0
    assert [row["state"] for row in result["stages"]] == ["trained", "trained"]
    assert said == [f"stage {n} of 2: training into '{tmp_path / 'chain' / f'stage{n}'}'" for n in (1, 2)]
    for n in (1, 2):
        made = (tmp_path / "chain" / f"stage{n}" / "model" / "model.safetensors").read_bytes()
        assert made == (tmp_path / f"a{n}" / "model" / "model.safetensors").read_bytes()
    assert "+0.00 points against the recorded one, within 1 point" in format_result(result)

    again = reproduce(plan, TRAIN, DEV)  # finished stages are not trained again
    assert [row["state"] for row in again["stages"]] == ["done before", "done before"]

    # a folder holding a stage made with other arguments is refused, not silently compared
    reseeded = {**second, "arguments": {**second["arguments"], "seed": 9}}
    other = stage_plan([first, reseeded], tmp_path / "chain")
    with pytest.raises(RagError, match=r"stage2' holds a stage trained with other \['seed'\]"):
        reproduce(other, TRAIN, DEV)


@pytest.mark.slow
@needs_data
def test_the_cli_exits_1_when_the_last_stage_is_more_than_a_point_away(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rag.cli import main

    record = train_reader(TRAIN, DEV, tmp_path / "run", max_steps=2, seed=5, **TINY)  # type: ignore[arg-type]
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / "stages.json").write_text(json.dumps([record]))
    args = ["reproduce-reader", "--out", str(tmp_path / "chain"), "--reader", str(reader),
            "--train", str(TRAIN), "--dev", str(DEV)]  # fmt: skip
    same = CliRunner().invoke(main, args)
    assert same.exit_code == 0, same.output
    assert "within 1 point" in same.stdout and "done before" not in same.stdout

    (reader / "stages.json").write_text(json.dumps([{**record, "dev_f1": record["dev_f1"] + 0.05}]))
    off = CliRunner().invoke(main, args)
    assert off.exit_code == 1 and "-5.00 points against the recorded one, NOT within 1 point" in off.stdout
    assert "done before" in off.stdout  # compared again without training again

    # one stage checked on its own, from the reader the stage before made
    later = train_reader(TRAIN, DEV, tmp_path / "run2", max_steps=2, seed=6,  # type: ignore[arg-type]
                         init_from=tmp_path / "run" / "model", **TINY)  # fmt: skip
    (reader / "stages.json").write_text(json.dumps([record, later]))
    alone = CliRunner().invoke(main, [*args[:2], str(tmp_path / "alone"), *args[3:], "--from-stage", "2",
                                      "--init-from", str(tmp_path / "run" / "model")])  # fmt: skip
    assert alone.exit_code == 0, alone.output
    assert not (tmp_path / "alone" / "stage1").exists() and "within 1 point" in alone.stdout
    assert f"stage 2 of 2: training into '{tmp_path / 'alone' / 'stage2'}'" in alone.stderr
    made = (tmp_path / "alone" / "stage2" / "model" / "model.safetensors").read_bytes()
    assert made == (tmp_path / "run2" / "model" / "model.safetensors").read_bytes()

    empty = tmp_path / "empty"
    empty.mkdir()
    missing = CliRunner().invoke(main, [*args[:3], "--reader", str(empty)])
    assert missing.exit_code == 2 and "no stages.json" in missing.output
