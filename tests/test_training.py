"""train_reader: labels land on the answer, batches are planned reproducibly, training learns and resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.squad import SquadQuestion, cut_answer
from rag.training import (
    TrainWindow,
    batch_plan,
    draw,
    drawn_ids,
    paragraphs_by_doc,
    train_reader,
    training_windows,
)

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
TRAIN = DATASETS / "squad-v1.1-train" / "train-v1.1.rebuilt.json.gz"
DEV = DATASETS / "squad-v1.1-dev" / "dev-v1.1.json.zip"
needs_data = pytest.mark.skipif(not (TRAIN.is_file() and DEV.is_file()), reason="SQuAD datasets absent")
SMALL = {"max_examples": 64, "batch_size": 8, "max_length": 192, "stride": 64, "eval_examples": 16,
         "lr": 3e-4, "checkpoint_every": 3, "log_every": 2}  # fmt: skip


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from embeddings.model_files import verified_model_dir

    return AutoTokenizer.from_pretrained(verified_model_dir())


def test_batch_plan_covers_every_window_once_and_is_seeded() -> None:
    lengths = [(i * 37) % 200 + 10 for i in range(1000)]
    plan = batch_plan(lengths, 16, seed=3, epoch=0)
    assert sorted(i for batch in plan for i in batch) == list(range(1000))
    assert plan == batch_plan(lengths, 16, seed=3, epoch=0)
    assert plan != batch_plan(lengths, 16, seed=3, epoch=1)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plan) / len(plan)
    assert spread < 20  # similar lengths share a batch, so padding stays small


def test_labels_point_at_the_answer_or_cls() -> None:
    tok = _tokenizer()
    context = "Filler sentence number one. " * 60 + "The bridge opened in 1932 to traffic."
    q = SquadQuestion("q1", "When did the bridge open?", ("1932",), "d", 0, context, (context.index("1932"),))
    windows, skipped = training_windows(tok, [q], max_length=128, stride=32)
    assert skipped == 0 and len(windows) > 1
    labelled = [w for w in windows if w.start]
    assert labelled and all(w.start == 0 and w.end == 0 for w in windows if w not in labelled)
    for w in labelled:
        assert tok.decode(w.input_ids[w.start : w.end + 1]).strip() == "1932"


def test_negatives_pair_a_question_with_another_paragraph_of_its_article() -> None:
    tok = _tokenizer()
    mine, other, leaky = "The bridge opened in 1932.", "The museum has a red roof.", "It opened in 1932 too."
    q = SquadQuestion("q1", "When did the bridge open?", ("1932",), "d", 0, mine, (mine.index("1932"),))
    paragraphs = paragraphs_by_doc([q]) | {"d": [mine, other, leaky]}
    windows, _ = training_windows(tok, [q] * 20, 128, 32, negatives=1.0, paragraphs=paragraphs, seed=1)
    negatives = [w for w in windows if w.start == 0]
    assert 0 < len(negatives) < 20 and len(windows) == 20 + len(negatives)  # leaky ones dropped
    texts = {tok.decode(w.input_ids) for w in negatives}
    assert texts and all("red roof" in t for t in texts)  # never the paragraph that holds "1932"
    none, _ = training_windows(tok, [q] * 20, 128, 32, negatives=0.0, paragraphs=paragraphs)
    assert len(none) == 20 and all(w.start for w in none)


def test_answer_text_not_in_paragraph_is_skipped() -> None:
    q = SquadQuestion("q1", "Who?", ("Nobody",), "d", 0, "Somebody was here.", (0,))
    windows, skipped = training_windows(_tokenizer(), [q], max_length=128, stride=32)
    assert windows == [] and skipped == 1


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        train_reader(TRAIN, DEV, tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="stride must leave room"):
        train_reader(TRAIN, DEV, tmp_path, max_length=128, stride=100)
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        train_reader(TRAIN, DEV, tmp_path, epochs=0)
    with pytest.raises(ValueError, match="swap_negatives must be between 0 and 1, got 1.5"):
        train_reader(TRAIN, DEV, tmp_path, swap_negatives=1.5)
    with pytest.raises(ValueError, match=r"swap_rule must be one of \(1, 2\), got 3"):
        train_reader(TRAIN, DEV, tmp_path, swap_rule=3)


def _first_windows(n: int) -> list[TrainWindow]:
    """Windows of the first `n` training questions of the seed-0 shuffle (what training sees)."""
    import random

    from rag.squad import load_squad

    questions = list(load_squad(TRAIN).questions)
    random.Random(0).shuffle(questions)
    return training_windows(_tokenizer(), questions[:n], 192, 64)[0]


def _fixed_batch_loss(model_dir: Path | None, windows: list[TrainWindow]) -> float:
    """Loss on a fixed batch; the fresh head of the base model is seeded like training's."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    from embeddings.model_files import verified_model_dir
    from rag.neural_reader import pad_batch

    torch.manual_seed(0)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir or verified_model_dir()).eval()
    batch = pad_batch([w.input_ids for w in windows], [w.token_type_ids for w in windows], 0)
    with torch.inference_mode():
        out = model(**batch, start_positions=torch.tensor([w.start for w in windows]),
                    end_positions=torch.tensor([w.end for w in windows]))  # fmt: skip
    return float(out.loss)


@pytest.mark.slow
@needs_data
def test_training_learns_and_resumes(tmp_path: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = train_reader(TRAIN, DEV, tmp_path, max_steps=4, **SMALL)  # type: ignore[arg-type]
        state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
        assert first["steps"] == 4 and state["step"] == 4 and first["resumed_from_step"] == 0
        second = train_reader(TRAIN, DEV, tmp_path, max_steps=8, **SMALL)  # type: ignore[arg-type]
        windows = _first_windows(8)
        before, after = _fixed_batch_loss(None, windows), _fixed_batch_loss(tmp_path / "model", windows)
    finally:
        torch.set_num_threads(threads)
    assert second["resumed_from_step"] == 4 and second["steps"] == 8 and second["finished"]
    assert after < before - 0.3, (before, after)
    record = json.loads((tmp_path / "model" / "training.json").read_text())
    assert record["steps"] == 8 and record["arguments"]["max_examples"] == 64
    assert 0.0 <= record["dev_exact_match"] <= 1.0 and 0.0 <= record["dev_f1"] <= 1.0
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert (tmp_path / "model" / "tokenizer.json").is_file()
    with pytest.raises(ValueError, match="other arguments"):
        train_reader(TRAIN, DEV, tmp_path, max_steps=8, **{**SMALL, "lr": 1e-5})  # type: ignore[arg-type]


@pytest.mark.slow
@needs_data
def test_the_cli_smoke_run_trains_and_reports(tmp_path: Path) -> None:
    """What CI runs of `rag train-reader`: a few steps, a model folder, the record on stdout."""
    from click.testing import CliRunner

    from rag.cli import main

    args = ["train-reader", "--out", str(tmp_path), "--train", str(TRAIN), "--dev", str(DEV),
            "--max-examples", "32", "--max-steps", "3", "--batch-size", "4", "--max-length", "192",
            "--stride", "64", "--eval-examples", "8", "--exclude", "0:32", "--exclude", "1:32@1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["steps"] == 3 and record["finished"] and record["dev_examples"] == 8
    # seed 0's first 32 questions are exactly what this run would have drawn without --exclude;
    # 1:32@1 drew its 32 from what 0:32 left, so the two samples are disjoint
    assert record["arguments"]["exclude"] == [[0, 32], [1, 32, 1]] and record["excluded_questions"] == 64
    assert record["questions"] == 32
    assert (tmp_path / "model" / "model.safetensors").is_file()
    bad = CliRunner().invoke(main, ["train-reader", "--out", str(tmp_path / "x"), "--train", "nope.json"])
    assert bad.exit_code == 2 and "SQuAD file not found" in bad.output
    bad = CliRunner().invoke(main, [*args[:3], "--exclude", "25000"])
    assert bad.exit_code == 2 and "'25000' is not SEED:N" in bad.output
    bad = CliRunner().invoke(main, [*args[:3], "--exclude", "0:32@"])
    assert bad.exit_code == 2 and "'0:32@' is not SEED:N or SEED:N@K" in bad.output
    bad = CliRunner().invoke(main, [*args[:3], "--exclude", "0:32", "--exclude", "1:32@2"])
    assert bad.exit_code == 2 and "'1:32@2': K counts the --exclude values before it (0 to 1)" in bad.output


class _Clock:
    """time.monotonic for a run that stops on its time budget at a known step: 1 s per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


@pytest.mark.slow
@needs_data
def test_a_run_stopped_on_time_and_resumed_gives_the_weights_of_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction rests on this: the documented commands stop on --max-minutes and are run again
    until finished; the weights must be those of one uninterrupted run with the same seed."""
    import time

    import torch
    from safetensors.torch import load_file

    import rag.training

    args = {**SMALL, "eval_examples": 0}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        monkeypatch.setattr(rag.training, "time", _Clock())
        stopped = train_reader(TRAIN, DEV, tmp_path / "stopped", max_minutes=4 / 60, **args)  # type: ignore[arg-type]
        monkeypatch.setattr(rag.training, "time", time)
        resumed = train_reader(TRAIN, DEV, tmp_path / "stopped", **args)  # type: ignore[arg-type]
        straight = train_reader(TRAIN, DEV, tmp_path / "straight", **args)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)
    assert stopped["stopped"] == "time" and 0 < stopped["steps"] < straight["steps"]
    assert resumed["finished"] and resumed["resumed_from_step"] == stopped["steps"]
    assert resumed["steps"] == straight["steps"] and straight["resumed_from_step"] == 0
    a = load_file(str(tmp_path / "stopped" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run's weights differ"


@pytest.mark.slow
@needs_data
def test_epochs_make_that_many_passes_and_a_resume_keeps_them(tmp_path: Path) -> None:
    args = {**SMALL, "max_examples": 16, "eval_examples": 0}
    record = train_reader(TRAIN, DEV, tmp_path, epochs=2, **args)  # type: ignore[arg-type]
    per_epoch = -(-record["windows"] // SMALL["batch_size"])
    assert record["planned_steps"] == record["steps"] == 2 * per_epoch and record["epoch"] == 2
    assert record["arguments"]["epochs"] == 2
    with pytest.raises(ValueError, match="other arguments {'epochs': \\(2, 3\\)}"):
        train_reader(TRAIN, DEV, tmp_path, epochs=3, **args)  # type: ignore[arg-type]


def test_cut_negatives_keep_the_paragraph_without_the_answer_sentence() -> None:
    tok = _tokenizer()
    para = "The bridge spans the river. It opened in 1932 to traffic. Its towers are painted red."
    q = SquadQuestion("q1", "When did the bridge open?", ("1932",), "d", 0, para, (para.index("1932"),))
    windows, _ = training_windows(tok, [q] * 10, 128, 32, cut_negatives=1.0, seed=3)
    negatives = [w for w in windows if w.start == 0]
    assert len(windows) == 20 and len(negatives) == 10
    for w in negatives:
        text = tok.decode(w.input_ids)
        assert "1932" not in text and "spans the river" in text and "painted red" in text
    assert cut_answer(para, para.index("1932"), para.index("1932") + 4) == (
        "The bridge spans the river. Its towers are painted red."
    )
    lone = "It opened in 1932."
    assert cut_answer(lone, lone.index("1932"), lone.index("1932") + 4) is None  # nothing left: no example
    echo = "It opened in 1932. The year 1932 was busy."  # the answer is still there: not a negative
    q2 = SquadQuestion("q2", "When did it open?", ("1932",), "d", 0, echo, (echo.index("1932"),))
    only, _ = training_windows(tok, [q2] * 5, 128, 32, cut_negatives=1.0)
    assert all(w.start for w in only)


def test_exclude_replays_the_samples_earlier_runs_drew() -> None:
    import random

    questions = [SquadQuestion(f"q{i}", "?", ("a",), "d", i, "a", (0,)) for i in range(100)]
    order = list(questions)
    random.Random(3).shuffle(order)
    assert drawn_ids(questions, [(3, 30)]) == {q.id for q in order[:30]}
    assert len(drawn_ids(questions, [(3, 30), (4, 30)])) > 30  # the union of both samples
    assert drawn_ids(questions, [(3, None)]) == {q.id for q in questions}
    assert drawn_ids(questions, []) == set()


def test_exclude_replays_a_chain_of_stages_each_on_what_the_ones_before_left() -> None:
    questions = [SquadQuestion(f"q{i}", "?", ("a",), "d", i, "a", (0,)) for i in range(100)]
    first = drawn_ids(questions, [(3, 30), (4, 30)])
    left = [q for q in questions if q.id not in first]
    third = {q.id for q in draw(left, 5, 20)}  # what a run given --exclude 3:30 --exclude 4:30 drew
    chain = drawn_ids(questions, [(3, 30), (4, 30), (5, 20, 2)])
    assert chain == first | third and len(chain) == len(first) + 20
    # a stage after it leaves all of them out, and draws from the rest
    fourth = drawn_ids(questions, [(3, 30), (4, 30), (5, 20, 2), (6, 10, 3)])
    assert len(fourth) == len(chain) + 10
    # JSON records give lists; an "after" may only name samples listed before it
    assert drawn_ids(questions, [[3, 30], [4, 30], [5, 20, 2]]) == chain
    with pytest.raises(ValueError, match=r"sample 2 \(4:30@2\) may only follow the 1 before it, not 2"):
        drawn_ids(questions, [(3, 30), (4, 30, 2)])
    with pytest.raises(ValueError, match="an exclude sample is"):
        drawn_ids(questions, [(3,)])
