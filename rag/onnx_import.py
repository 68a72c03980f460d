"""A shipped ONNX span reader back to a torch folder, so training can go on from it.

Why: the shipped reader (rag/models/reader) is the only trained state that outlives a machine;
its torch checkpoint lives in a cache. Turning model.onnx back into model.safetensors lets
`rag train-reader --init-from rag/models/reader` start a further stage from exactly the weights
that were evaluated and shipped.

How: the fp32 export keeps every tensor's values (an fp16-stored one keeps them rounded: each is
read back through its Cast to float32). Biases, layer norms and embeddings keep their
torch names; each Linear weight became an anonymous MatMul constant, transposed. The Add that
takes that MatMul's output carries the Linear's named bias, which names the weight. The folder is
written only when torch, loading it, gives the ONNX file's logits on real text.

    >>> torch_folder_from_onnx(Path("rag/models/reader"), Path("runs/stage2/init"))
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from rag.neural_reader import ONNX_FILE, ReaderModelError
from rag.onnx_export import CHECK_SAMPLES, HALF_SUFFIX, TOLERANCE, check_windows, compare_logits, open_session

WEIGHTS = "model.safetensors"
COPIED = ("config.json", "tokenizer.json", "tokenizer_config.json", "training.json")


def onnx_state_dict(onnx_file: Path) -> dict[str, np.ndarray]:
    """The torch state dict held in an fp32 export: named tensors as they are, MatMul constants
    transposed back and named after the bias their Add consumes."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ReaderModelError("reading an ONNX reader needs the onnx package: pip install onnx") from exc

    graph = onnx.load(str(onnx_file)).graph
    tensors = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # weights stored in float16 (rag.onnx_export.halve_onnx): their fp32 names
        if node.op_type == "Cast" and node.input[0].endswith(HALF_SUFFIX) and node.input[0] in tensors:
            tensors[node.output[0]] = tensors.pop(node.input[0]).astype(np.float32)
    state = {name: array for name, array in tensors.items() if not name.startswith("onnx::")}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in tensors or node.input[1] in state:
            continue
        biases = [
            name
            for add in consumers.get(node.output[0], [])
            if add.op_type == "Add"
            for name in add.input
            if name.endswith(".bias") and name in state
        ]
        if len(biases) != 1:
            raise ReaderModelError(
                f"cannot tell which layer MatMul '{node.name}' belongs to in '{onnx_file}'"
            )
        state[biases[0].removesuffix(".bias") + ".weight"] = tensors[node.input[1]].T.copy()
    return state


def torch_folder_from_onnx(shipped: Path, out: Path, tolerance: float = TOLERANCE) -> Path:
    """Write `out` (config, tokenizer, model.safetensors) from the reader folder `shipped`.

    Raises ReaderModelError, writing nothing, when a torch weight has no source in the file or
    the rebuilt model's logits differ from the ONNX file's by more than `tolerance`.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

    shipped, out = Path(shipped), Path(out)
    if not (shipped / ONNX_FILE).is_file():
        raise ReaderModelError(f"no {ONNX_FILE} in '{shipped}'")
    state = onnx_state_dict(shipped / ONNX_FILE)
    model = AutoModelForQuestionAnswering.from_config(AutoConfig.from_pretrained(shipped)).eval()
    wanted = set(model.state_dict())
    missing = sorted(wanted - set(state) - {k for k in wanted if k.endswith("position_ids")})
    if missing:
        raise ReaderModelError(f"'{shipped / ONNX_FILE}' lacks torch weights {missing[:4]}")
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items() if k in wanted}, strict=False)
    tokenizer = AutoTokenizer.from_pretrained(shipped)
    diff = compare_logits(
        open_session(shipped / ONNX_FILE),
        model,
        check_windows(tokenizer, shipped, CHECK_SAMPLES),
        tokenizer.pad_token_id or 0,
    )
    if not diff <= tolerance:
        raise ReaderModelError(
            f"torch rebuilt from '{shipped}' disagrees with it: {diff:.2e} > {tolerance:.0e}"
        )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in COPIED:
            if (shipped / name).is_file():
                shutil.copyfile(shipped / name, tmp / name)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
