"""The shipped ONNX reader back to torch: the same logits, and a further training stage starts from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.neural_reader import ReaderModelError, packaged_model
from rag.onnx_import import WEIGHTS, onnx_state_dict, torch_folder_from_onnx
from rag.training import train_reader
from tests.test_training import DEV, SMALL, TRAIN, needs_data

SHIPPED = packaged_model()
needs_reader = pytest.mark.skipif(SHIPPED is None, reason="no packaged reader")


@needs_reader
@pytest.mark.slow
def test_every_torch_weight_is_recovered_and_the_logits_agree(tmp_path: Path) -> None:
    assert SHIPPED is not None
    state = onnx_state_dict(SHIPPED / "model.onnx")
    assert state["qa_outputs.weight"].shape == (2, 384)  # a transposed MatMul constant, named by its bias
    assert state["bert.encoder.layer.5.output.dense.weight"].shape == (384, 1536)
    out = torch_folder_from_onnx(SHIPPED, tmp_path / "init")  # checks the logits, or raises
    assert (
        (out / WEIGHTS).is_file() and (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    )
    assert not any(p.name.startswith(".init.tmp") for p in tmp_path.iterdir())

    from safetensors.numpy import load_file

    saved = load_file(str(out / WEIGHTS))
    assert np.array_equal(
        saved["qa_outputs.weight"], state["qa_outputs.weight"]
    )  # exact values, not refitted


def test_a_folder_without_an_onnx_reader_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReaderModelError, match="no model.onnx"):
        torch_folder_from_onnx(tmp_path, tmp_path / "out")


@needs_reader
@needs_data
@pytest.mark.slow
def test_training_goes_on_from_the_shipped_reader(tmp_path: Path) -> None:
    assert SHIPPED is not None
    options = {**SMALL, "lr": 1e-5}  # a further stage: gentle steps
    record = train_reader(TRAIN, DEV, tmp_path, max_steps=2, init_from=SHIPPED, **options)  # type: ignore[arg-type]
    assert (tmp_path / "init" / WEIGHTS).is_file() and record["steps"] == 2
    # a reader that has learned SQuAD starts far better than the untrained span head (F1 ~0.05)
    assert record["dev_f1"] > 0.4
