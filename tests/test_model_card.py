"""Shipping the span reader: one call gives a checked ONNX folder with hashes, card and size limit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.chunking import Passage
from rag.model_card import (
    CARD,
    MAX_PACKAGE_BYTES,
    STAGES_FILE,
    choose_precision,
    ship_reader,
    stage_history,
    verify_reader_files,
    write_manifest,
)
from rag.neural_reader import MANIFEST_FILE, ONNX_FILE, NeuralReader, ReaderModelError, packaged_model
from rag.retrieval import Hit

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "datasets" / "squad-v1.1-dev" / "dev-v1.1.json.zip"
REFUSED = "refusing to use tampered or unknown weights"


def _flip_byte(path: Path, at: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[min(at, len(data) - 1)] ^= 0x01
    path.write_bytes(bytes(data))


def _record(folder: Path) -> dict[str, object]:
    folder.mkdir(exist_ok=True)
    (folder / ONNX_FILE).write_bytes(bytes(range(256)) * 40)
    (folder / "tokenizer.json").write_text('{"model": "fake"}')
    (folder / CARD).write_text("# card, not hashed\n")
    return write_manifest(folder, "onnx-fp32")


def test_manifest_records_every_loaded_file_but_the_card(tmp_path: Path) -> None:
    manifest = _record(tmp_path)
    assert manifest["format"] == "onnx-fp32" and manifest["weights"] == ONNX_FILE
    assert set(manifest["sha256"]) == {ONNX_FILE, "tokenizer.json"}  # type: ignore[arg-type]
    assert json.loads((tmp_path / MANIFEST_FILE).read_text()) == manifest
    assert verify_reader_files(tmp_path) == manifest["sha256"]
    (tmp_path / CARD).write_text("edited card")  # documentation only
    verify_reader_files(tmp_path)


def test_a_flipped_byte_is_refused_naming_the_file(tmp_path: Path) -> None:
    _record(tmp_path)
    _flip_byte(tmp_path / "tokenizer.json", at=3)
    with pytest.raises(ReaderModelError, match=REFUSED) as err:
        verify_reader_files(tmp_path)
    assert "tokenizer.json" in str(err.value)


def test_a_missing_recorded_file_or_a_broken_record_is_refused(tmp_path: Path) -> None:
    _record(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(ReaderModelError, match="tokenizer.json' recorded in weights.json is missing"):
        verify_reader_files(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ReaderModelError, match="unreadable hash record"):
        verify_reader_files(tmp_path)


def test_a_folder_without_a_record_is_unverified_not_refused(tmp_path: Path) -> None:
    (tmp_path / ONNX_FILE).write_bytes(b"x")
    assert verify_reader_files(tmp_path) is None


def test_int8_ships_only_when_it_loses_under_one_f1_point() -> None:
    assert choose_precision({"f1": 0.700}, {"f1": 0.6901}) == "int8"
    assert choose_precision({"f1": 0.700}, {"f1": 0.690}) == "fp32"
    assert choose_precision({"f1": 0.700}, {"f1": 0.720}) == "int8"


def test_ship_reader_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        ship_reader(tmp_path, tmp_path / "out", commands=[], precision="bf16")
    with pytest.raises(ReaderModelError, match="is not a trained reader run"):
        ship_reader(tmp_path, tmp_path / "out", commands=[], precision="fp32")


# The shipped reader ------------------------------------------------------------------------


@pytest.fixture
def shipped() -> Path:
    folder = packaged_model()
    if folder is None:
        pytest.skip("no shipped reader in rag/models/reader")
    return folder


def test_the_shipped_reader_matches_its_record_and_fits(shipped: Path) -> None:
    hashes = verify_reader_files(shipped)
    manifest = json.loads((shipped / MANIFEST_FILE).read_text())
    assert hashes is not None and manifest["weights"] == ONNX_FILE and ONNX_FILE in hashes
    stored = {"onnx-fp32": "ONNX fp32", "onnx-int8": "ONNX int8",
              "onnx-fp16": "ONNX, weights stored in float16 and computed in float32"}  # fmt: skip
    assert manifest["format"] in stored
    assert sum(p.stat().st_size for p in shipped.iterdir() if p.is_file()) < MAX_PACKAGE_BYTES
    card = (shipped / CARD).read_text()
    assert hashes[ONNX_FILE] in card and f"`{ONNX_FILE}` ({stored[manifest['format']]}" in card


def test_tampered_shipped_weights_are_refused(shipped: Path, tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(shipped, copy)
    _flip_byte(copy / ONNX_FILE, at=(copy / ONNX_FILE).stat().st_size // 2)
    reader = NeuralReader(copy)
    hit = Hit(Passage("a.txt", 0, 20, "Alice won the final."), "a", 1.0, 1)
    with pytest.raises(ReaderModelError, match=REFUSED) as err:
        reader.read("Who won?", [hit])
    assert str(copy / ONNX_FILE) in str(err.value)
    with pytest.raises(ReaderModelError, match=REFUSED):  # refused again, never cached as loaded
        reader.read("Who won?", [hit])


def test_the_shipped_reader_without_its_record_is_refused(
    shipped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.model_card.recorded_hashes", lambda folder: None)
    with pytest.raises(ReaderModelError, match=f"has no {MANIFEST_FILE}; {REFUSED}"):
        verify_reader_files(shipped)


# Shipping a run end to end, with a tiny model (seconds, not the shipped 45 MB one) -----------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training run's folder: a 2-layer, 32-wide BERT span model with the reader's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from rag.neural_reader import PACKAGED_MODEL

    tokenizer_dir = PACKAGED_MODEL if (PACKAGED_MODEL / "tokenizer.json").is_file() else None
    if tokenizer_dir is None:
        pytest.skip("no reader tokenizer to build the tiny model with")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )  # fmt: skip
    run = tmp_path_factory.mktemp("run") / "model"
    BertForQuestionAnswering(config).eval().save_pretrained(run)
    tokenizer.save_pretrained(run)
    record = json.loads((PACKAGED_MODEL / "training.json").read_text())
    record["arguments"].update(max_length=128, stride=32, init_from=None)  # one stage, from scratch
    (run / "training.json").write_text(json.dumps(record))
    return run


@pytest.mark.slow
def test_ship_reader_gives_a_checked_onnx_folder_that_answers(tiny_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "models" / "reader"
    target.mkdir(parents=True)
    (target / "stale.bin").write_text("from the previous model")
    ship_reader(
        tiny_run, target, commands=["rag train-reader --out runs/tiny"], precision="fp32", dev_questions=0
    )
    names = {p.name for p in target.iterdir()}
    assert {ONNX_FILE, MANIFEST_FILE, CARD, "config.json", "training.json", "tokenizer.json"} <= names
    assert "model.safetensors" not in names and "stale.bin" not in names
    assert not list(tmp_path.joinpath("models").glob(".reader-*"))  # no temporary folder left
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    assert manifest["format"] == "onnx-fp32" and manifest["export_max_abs_diff"] < 1e-4
    card = (target / CARD).read_text()
    assert manifest["sha256"][ONNX_FILE] in card and "ONNX fp32" in card and "Not evaluated" in card
    assert "rag train-reader --out runs/tiny" in card
    assert "rag reproduce-reader --out runs/chain" in card  # every recorded stage in one command
    stages = json.loads((target / STAGES_FILE).read_text())
    assert stages == [json.loads((tiny_run / "training.json").read_text())]
    assert STAGES_FILE in manifest["sha256"]  # hashed like every file the reader ships
    reader = NeuralReader(target)
    text = "Alice won the chess final in Leeds on Sunday."
    answers = reader.read(
        "Who won the chess final?", [Hit(Passage("a.txt", 0, len(text), text), "a", 1.0, 1)]
    )
    assert reader._model is not None and reader._model.backend == "onnx"
    assert answers and all(text[a.start : a.end] == a.text for a in answers)


@pytest.mark.slow
def test_ship_reader_auto_measures_int8_against_fp32(tiny_run: Path, tmp_path: Path) -> None:
    if not DEV.is_file():
        pytest.skip("SQuAD dev set not found in ../shared/datasets")
    target = tmp_path / "reader"
    ship_reader(
        tiny_run, target, commands=["rag train-reader"], precision="auto", dev_path=DEV, dev_questions=6
    )
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    card = (target / CARD).read_text()
    assert "a fixed sample of 6 questions (seed 0)" in card
    other = "fp32" if manifest["format"] == "onnx-int8" else "int8"
    assert f"the same weights, ONNX {other} (not shipped" in card
    verify_reader_files(target)
    kept = tmp_path / "kept"  # keep_trainable: fp32 whatever the rule chose, the reason on the card
    ship_reader(tiny_run, kept, commands=["rag train-reader"], precision="auto", dev_path=DEV,
                dev_questions=6, keep_trainable=True)  # fmt: skip
    kept_card = (kept / CARD).read_text()
    assert json.loads((kept / MANIFEST_FILE).read_text())["format"] == "onnx-fp32"
    assert "ONNX int8 (not shipped: " in kept_card
    assert ("but fp32 was kept: a further training stage" in kept_card) == (manifest["format"] == "onnx-int8")


@pytest.mark.slow
def test_ship_reader_fp16_halves_the_file_keeps_it_trainable_and_says_what_it_costs(
    tiny_run: Path, tmp_path: Path
) -> None:
    if not DEV.is_file():  # (tests/test_onnx_import.py turns the shipped fp16 reader back into torch)
        pytest.skip("SQuAD dev set not found in ../shared/datasets")
    fp32, fp16 = tmp_path / "fp32", tmp_path / "fp16"
    ship_reader(tiny_run, fp32, commands=["rag train-reader"], precision="fp32", dev_questions=0)
    ship_reader(
        tiny_run, fp16, commands=["rag train-reader"], precision="fp16", dev_path=DEV, dev_questions=6
    )
    assert json.loads((fp16 / MANIFEST_FILE).read_text())["format"] == "onnx-fp16"
    # the tiny model's word embeddings are most of it: they are stored in float16
    assert (fp16 / ONNX_FILE).stat().st_size < 0.6 * (fp32 / ONNX_FILE).stat().st_size
    card = (fp16 / CARD).read_text()
    assert "weights stored in float16 and computed in float32" in card
    assert "the same weights, ONNX fp32 (not shipped: storing them in float16 changes F1 by " in card
    assert "ONNX int8 (not shipped: " in card and "but fp16 storage was chosen" in card
    verify_reader_files(fp16)
    text = "Alice won the chess final in Leeds on Sunday."
    hits = [Hit(Passage("a.txt", 0, len(text), text), "a", 1.0, 1)]
    full, half = (NeuralReader(f).read("Who won the chess final?", hits) for f in (fp32, fp16))
    assert [a.text for a in half][:3] == [a.text for a in full][:3]


@pytest.mark.slow
def test_an_export_that_disagrees_with_torch_is_not_written(tiny_run: Path, tmp_path: Path) -> None:
    from rag.onnx_export import export_onnx

    out = tmp_path / ONNX_FILE
    with pytest.raises(ReaderModelError, match="disagrees with torch: max \\|logit difference\\|"):
        export_onnx(tiny_run, out, tolerance=-1.0)  # no export can pass: the failure path
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_int8_quantizes_the_encoder_but_not_the_span_head(tiny_run: Path, tmp_path: Path) -> None:
    import onnx

    from rag.onnx_export import export_onnx, quantize_onnx

    fp32 = export_onnx(tiny_run, tmp_path / "fp32.onnx").path
    graph = onnx.load(str(quantize_onnx(fp32, tmp_path / "int8.onnx"))).graph
    ops = {n.name: n.op_type for n in graph.node}
    assert ops["/qa_outputs/MatMul"] == "MatMul"
    assert sum(op == "MatMulInteger" for op in ops.values()) == 2 * 6  # 2 layers x (q, k, v, out, in, out)


def _stage(folder: Path, seed: int, init_from: Path | None, seconds: float | None = 60.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "arguments": {"seed": seed, "init_from": str(init_from) if init_from else None, "negatives": 0.2,
                      "lr": 3e-5, "max_length": 384, "stride": 128},
        "questions": 10, "windows": 12, "steps": 3, "planned_steps": 3, "loss_first": 2.0, "loss_last": 1.0,
        "seconds": seconds,
    }  # fmt: skip
    (folder / "training.json").write_text(json.dumps(record))
    return folder


def test_stage_history_follows_runs_and_a_shipped_readers_stages(tmp_path: Path) -> None:
    first = _stage(tmp_path / "s1", 0, None)
    second = _stage(tmp_path / "s2", 1, first)
    assert [s["arguments"]["seed"] for s in stage_history(second)] == [0, 1]
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / STAGES_FILE).write_text(json.dumps(stage_history(second)))
    shutil.rmtree(first)  # the runs' folders are gone; the shipped record carries the chain
    shutil.rmtree(second)
    third = _stage(tmp_path / "s3", 2, shipped)
    assert [s["arguments"]["seed"] for s in stage_history(third)] == [0, 1, 2]


def test_stage_history_refuses_a_chain_whose_start_is_gone(tmp_path: Path) -> None:
    run = _stage(tmp_path / "run", 1, tmp_path / "gone")
    with pytest.raises(ReaderModelError, match="stage records"):
        stage_history(run)


def test_the_card_says_which_stages_had_no_recorded_time(tmp_path: Path) -> None:
    from rag.model_card import render_card

    _record(tmp_path)
    stages = [json.loads(_stage(tmp_path / n, i, None, s).joinpath("training.json").read_text())
              for i, (n, s) in enumerate([("a", 7200.0), ("b", None)])]  # fmt: skip
    card = render_card(["rag train-reader"], None, {}, stages, tmp_path)
    assert "6 optimizer steps in 2 stage(s), 2.0 CPU hours on 2 cores for the 1 stage(s) whose time" in card
    assert "2.0 CPU hours on 2 cores |" in render_card(["rag train-reader"], None, {}, stages[:1], tmp_path)


def test_the_card_says_a_stage_drew_only_unseen_questions(tmp_path: Path) -> None:
    from rag.model_card import render_card

    _record(tmp_path)
    first = json.loads(_stage(tmp_path / "a", 0, None).joinpath("training.json").read_text())
    later = {**first, "arguments": {**first["arguments"], "seed": 1, "exclude": [[0, 10]]},
             "excluded_questions": 10, "pool_questions": 33187}  # fmt: skip
    card = render_card(["rag train-reader"], None, {}, [first, later], tmp_path)
    rows = [line for line in card.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert rows[0].startswith("| 1 | 10 | 12 ") and rows[1].startswith("| 2 | 10 of 33,187 unseen | 12 ")


def test_the_card_gives_each_stages_share_of_every_kind_of_negative(tmp_path: Path) -> None:
    from rag.model_card import render_card

    _record(tmp_path)
    first = json.loads(_stage(tmp_path / "a", 0, None).joinpath("training.json").read_text())
    later = {**first, "arguments": {**first["arguments"], "negatives": 0.2, "cut_negatives": 0.5,
                                    "swap_negatives": 0.3}}  # fmt: skip
    latest = {**later, "arguments": {**later["arguments"], "swap_negatives": 0.4, "swap_rule": 2}}
    card = render_card(["rag train-reader"], None, {}, [first, later, latest], tmp_path)
    assert "| negatives (other / cut / swap) |" in card
    rows = [line for line in card.splitlines() if line.startswith(("| 1 |", "| 2 |", "| 3 |"))]
    # A record made before swap rule 2 existed ran rule 1.
    assert "| 0.2 / 0.0 / 0.0 |" in rows[0] and "| 0.2 / 0.5 / 0.3 (rule 1) |" in rows[1]
    assert "| 0.2 / 0.5 / 0.4 (rule 2) |" in rows[2]
