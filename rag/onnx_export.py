"""The span reader on ONNX Runtime: export a trained folder, check it against torch, quantize it.

    >>> export_onnx(Path("runs/reader/model"), Path("out/model.onnx"))  # fp32, checked, or raises
    >>> quantize_onnx(Path("out/model.onnx"), Path("out/model.int8.onnx"))
    >>> session = open_session(Path("out/model.onnx"))

Why: ONNX Runtime runs the same float32 graph faster than torch eager on a CPU (fused attention,
GELU and layer norm kernels) and needs no torch at query time. The export is traced
(`dynamo=False`) with dynamic batch and sequence axes; it is only written once its logits match
torch's on real tokenized text, one window at a time and padded together.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.neural_reader import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_STRIDE,
    ReaderModelError,
    Window,
    encode_windows,
    pad_arrays,
)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # the model's positional order
OUTPUTS = ("start_logits", "end_logits")
OPSET = 17
TOLERANCE = 1e-4  # max |logit difference| allowed between torch and the fp32 export (seen: ~1e-5)
MAX_THREADS = 4

_FLOOD = (
    "The Environment Agency issued a flood warning on Tuesday for the River Severn. Officials said "
    "the water could rise by two metres near Shrewsbury. Tomas Keller, a local farmer, moved 300 "
    "sheep to higher ground. He said his family had farmed the valley since 1920. "
)
# Real question/passage pairs (short, long, several windows) for checking an export.
CHECK_SAMPLES: tuple[tuple[str, str], ...] = (
    ("How many sheep did Tomas Keller move?", _FLOOD),
    ("Who issued the flood warning?", "Weather. " + _FLOOD),
    (
        "Which company reported record profits?",
        "Shares in Vodafone rose 4% after the mobile phone group reported record half-year profits "
        "of £4.8bn, helped by strong growth in Germany and Italy. Analysts had expected £4.5bn.",
    ),
    (
        "Where did the council open rest centres?",
        _FLOOD + "The council opened three rest centres in town halls. " * 45,
    ),
)


@dataclass(frozen=True)
class ExportCheck:
    """The written ONNX file and how far its logits were from torch's on the check windows."""

    path: Path
    max_abs_diff: float
    windows: int


def reader_threads() -> int:
    """Intra-op threads: the CPUs this process may use, at most MAX_THREADS.

    One query is a small batch (a few windows): beyond a few threads, synchronization costs more
    than the split work saves, and the CPUs are shared with the embedder and other requests.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_THREADS))


def open_session(model: Path | bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for a span model (its path or bytes); `run` is thread-safe."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ReaderModelError("the ONNX span model needs onnxruntime: pip install onnxruntime") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or reader_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: its optimizer's notes are not the user's business
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def export_onnx(
    model_dir: Path,
    out_path: Path,
    *,
    samples: Sequence[tuple[str, str]] = CHECK_SAMPLES,
    tolerance: float = TOLERANCE,
) -> ExportCheck:
    """Export the trained reader in `model_dir` to `out_path` (fp32), checked against torch.

    Raises ReaderModelError (and writes nothing) when any logit differs by more than `tolerance`.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model_dir, out_path = Path(model_dir), Path(out_path)
    if not (model_dir / "config.json").is_file():
        raise ReaderModelError(f"no trained reader model in '{model_dir}' (config.json missing)")
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    windows = check_windows(tokenizer, model_dir, samples)
    pad_id = tokenizer.pad_token_id or 0
    example = pad_arrays([w.input_ids for w in windows[:2]], [w.token_type_ids for w in windows[:2]], pad_id)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS + OUTPUTS}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer flags shape checks it freezes; compare_logits below is what shows they hold
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
            torch.onnx.export(
                model,
                tuple(torch.from_numpy(example[name]) for name in INPUTS),
                str(tmp),
                input_names=list(INPUTS),
                output_names=list(OUTPUTS),
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        diff = compare_logits(open_session(tmp), model, windows, pad_id)
        if not diff <= tolerance:
            raise ReaderModelError(
                f"the ONNX export of '{model_dir}' disagrees with torch: max |logit difference| "
                f"{diff:.2e} > {tolerance:.0e}; nothing written"
            )
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportCheck(out_path, diff, len(windows))


def check_windows(tokenizer: Any, model_dir: Path, samples: Sequence[tuple[str, str]]) -> list[Window]:
    """The samples as the reader tokenizes them (the run's max_length and stride)."""
    if not samples:
        raise ValueError("samples must hold at least one (question, passage) pair, got none")
    meta_file = model_dir / "training.json"
    args = json.loads(meta_file.read_text()).get("arguments", {}) if meta_file.is_file() else {}
    return list(
        encode_windows(
            tokenizer,
            [q for q, _ in samples],
            [p for _, p in samples],
            max_length=int(args.get("max_length", DEFAULT_MAX_LENGTH)),
            stride=int(args.get("stride", DEFAULT_STRIDE)),
        )
    )


def compare_logits(session: Any, model: Any, windows: Sequence[Window], pad_id: int) -> float:
    """Max |start/end logit difference| between the session and the torch model on real tokens.

    Each window alone and all of them padded into one batch, so both dynamic axes are exercised.
    """
    import torch

    batches = [[w] for w in windows] + [list(windows)]
    worst = 0.0
    for part in batches:
        batch = pad_arrays([w.input_ids for w in part], [w.token_type_ids for w in part], pad_id)
        names = [i.name for i in session.get_inputs()]
        got = session.run(list(OUTPUTS), {k: batch[k] for k in names})
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
        real = batch["attention_mask"].astype(bool)
        for mine, theirs in zip(got, (out.start_logits, out.end_logits), strict=True):
            worst = max(worst, float(np.abs(np.asarray(mine) - theirs.float().numpy())[real].max()))
    return worst


def quantize_onnx(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantization of an fp32 export's encoder matrix products (weights per channel).

    Only the encoder's MatMuls are quantized: they are where int8 saves time. The word embeddings
    (a Gather: int8 would only save space) and the 2-output span head (tiny, and it sets the
    logits directly) stay float32. Quantizing moves the logits: ship it only when the SQuAD
    evaluation shows it loses under 1 F1 point (rag.model_card.ship_reader decides).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    graph = onnx.load(str(src)).graph
    narrow = {i.name for i in graph.initializer if len(i.dims) == 2 and i.dims[1] <= len(OUTPUTS)}
    heads = [n.name for n in graph.node if n.op_type == "MatMul" and narrow & set(n.input)]
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        quantize_dynamic(
            src, tmp, weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul"], nodes_to_exclude=heads,
        )  # fmt: skip
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


HALF_SUFFIX = "__fp16"  # a weight stored in float16 is named so; a Cast node gives back its fp32 name
HALF_MIN_ELEMENTS = 1024  # smaller tensors (biases, layer norms) stay float32: they cost nothing


def halve_onnx(src: Path, dst: Path) -> Path:
    """`src` with its large float32 weights stored in float16, computed in float32.

    Each such weight becomes a float16 initializer and a Cast back to float32 under its old name,
    so the graph is unchanged and valid; ONNX Runtime folds the casts when it loads the file, so
    it runs as fast as the fp32 file. Half the bytes; the logits move by the weights' rounding
    (about 1e-3 relative): the caller measures what that costs before shipping it.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    src, dst = Path(src), Path(dst)
    model = onnx.load(str(src))
    graph = model.graph
    kept, casts = [], []
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and int(np.prod(tensor.dims)) >= HALF_MIN_ELEMENTS:
            half = numpy_helper.to_array(tensor).astype(np.float16)
            kept.append(numpy_helper.from_array(half, tensor.name + HALF_SUFFIX))
            casts.append(helper.make_node("Cast", [tensor.name + HALF_SUFFIX], [tensor.name],
                                          to=TensorProto.FLOAT, name=tensor.name + "/upcast"))  # fmt: skip
        else:
            kept.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
