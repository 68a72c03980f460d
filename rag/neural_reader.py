"""Trained extractive reader: a MiniLM span head fine-tuned on SQuAD (see rag.training).

    >>> reader = NeuralReader(Path("~/.cache/rag-news-qa/reader-run1/model").expanduser())
    >>> answers = reader.read("Who won the chess final?", hits)  # best first; [] for no hits

A folder with `model.onnx` runs on ONNX Runtime (the shipped reader: faster on CPU, no torch at
query time); a training run's folder (safetensors only) runs on torch. Both give the same logits
to the same decoding. When the folder records sha256 hashes (`weights.json`, written by
rag.model_card.ship_reader), every recorded file is checked before use and a mismatch is refused.

Score of an answer: the softmax probability of its span among every candidate span of every
window of every hit, plus one "no answer" option (the smallest [CLS] start + end logit of the
windows). Spans that normalize to the same text pool their probability, so scores lie in [0, 1],
sum to at most 1 per question, and are comparable across passages and questions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer import Answer, Citation
from rag.brackets import balance
from rag.chunking import Passage, split_sentences
from rag.errors import RagError
from rag.reader import normalize_answer
from rag.retrieval import Hit

log = logging.getLogger(__name__)

MAX_QUESTION_TOKENS = 64
DEFAULT_MAX_LENGTH = 384
DEFAULT_STRIDE = 128
TOP_K = 20  # span candidates kept per window; the rest carry negligible probability
PACKAGED_MODEL = Path(__file__).parent / "models" / "reader"  # shipped weights (see its MODEL_CARD.md)
ONNX_FILE = "model.onnx"
TORCH_FILE = "model.safetensors"
MANIFEST_FILE = "weights.json"  # {"format", "weights", "sha256": {file name: hex digest}}
BACKENDS = ("auto", "onnx", "torch")


class ReaderModelError(RagError):
    """A span model folder that is missing, incomplete, or whose files do not match their recorded hash."""


def packaged_model() -> Path | None:
    """The span model that ships inside the package, or None in a checkout without it."""
    return PACKAGED_MODEL if (PACKAGED_MODEL / "config.json").is_file() else None


@dataclass(frozen=True)
class Window:
    """One tokenized (question, context) window; `offsets[i]` is None outside the context."""

    sample: int
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int] | None]


def clip_question(tokenizer: Any, question: str, max_tokens: int = MAX_QUESTION_TOKENS) -> str:
    """The question cut to `max_tokens` word pieces, so a context window always fits beside it."""
    question = question.strip()
    pieces = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return question if len(pieces) <= max_tokens else question[: pieces[max_tokens - 1][1]]


def encode_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    max_length: int,
    stride: int,
    chunk: int = 512,
) -> Iterator[Window]:
    """Windows of up to `max_length` tokens over each context, overlapping by `stride` tokens."""
    for first in range(0, len(questions), chunk):
        qs = [clip_question(tokenizer, q) for q in questions[first : first + chunk]]
        enc = tokenizer(
            qs,
            list(contexts[first : first + chunk]),
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
            seq = enc.sequence_ids(i)
            offsets = [
                (int(o[0]), int(o[1])) if s == 1 else None
                for o, s in zip(enc["offset_mapping"][i], seq, strict=True)
            ]
            types = enc["token_type_ids"][i] if "token_type_ids" in enc else [int(s == 1) for s in seq]
            yield Window(first + int(sample), list(enc["input_ids"][i]), list(types), offsets)


def pad_arrays(
    rows: Sequence[Sequence[int]], types: Sequence[Sequence[int]], pad_id: int
) -> dict[str, np.ndarray]:
    """int64 arrays for a batch, padded to its longest row (not to max_length: most rows are short)."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    tt = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, (r, t) in enumerate(zip(rows, types, strict=True)):
        ids[i, : len(r)] = r
        tt[i, : len(t)] = t
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": mask}


def pad_batch(rows: Sequence[Sequence[int]], types: Sequence[Sequence[int]], pad_id: int) -> dict[str, Any]:
    """`pad_arrays` as torch tensors (training and the torch backend)."""
    import torch

    return {k: torch.from_numpy(v) for k, v in pad_arrays(rows, types, pad_id).items()}


def best_spans(
    start: np.ndarray, end: np.ndarray, context: np.ndarray, max_tokens: int, k: int = TOP_K
) -> list[tuple[int, int, float]]:
    """Top `k` (start, end, start+end logit) with start <= end < start + max_tokens, in context."""
    scores = start[:, None] + end[None, :]
    n = len(start)
    i, j = np.ogrid[:n, :n]
    valid = (j >= i) & (j - i < max_tokens) & context[:, None] & context[None, :]
    scores = np.where(valid, scores, -np.inf)
    flat = np.argsort(scores, axis=None)[::-1][:k]
    return [(int(f // n), int(f % n), float(scores.flat[f])) for f in flat if np.isfinite(scores.flat[f])]


@dataclass
class _Candidate:
    passage: Passage
    title: str
    start: int  # in the passage text
    end: int
    logit: float
    prob: float = 0.0


class OnnxSpanModel:
    """Start/end logits from one ONNX Runtime session (whose `run` is thread-safe)."""

    backend = "onnx"

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(["start_logits", "end_logits"], {k: batch[k] for k in self.inputs})
        return np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)


class TorchSpanModel:
    """Start/end logits from the transformers model (a training run's safetensors)."""

    backend = "torch"

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        device = next(self.model.parameters()).device
        with torch.inference_mode():
            out = self.model(**{k: torch.from_numpy(v).to(device) for k, v in batch.items()})
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()


class NeuralReader:
    """Reader backed by a fine-tuned span model; loaded on first use, safe to share across threads.

    `backend`: "onnx" (model.onnx), "torch" (safetensors) or "auto" (onnx when the folder has it).
    `device` applies to torch; ONNX Runtime runs on the CPU with `threads` intra-op threads.
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        max_answer_tokens: int = 30,
        batch_windows: int = 16,
        max_answers: int = 10,
        max_length: int | None = None,
        stride: int | None = None,
        device: str | None = None,
        backend: str = "auto",
        threads: int | None = None,
    ) -> None:
        if max_answer_tokens < 1:
            raise ValueError(f"max_answer_tokens must be >= 1, got {max_answer_tokens}")
        if batch_windows < 1:
            raise ValueError(f"batch_windows must be >= 1, got {batch_windows}")
        if max_answers < 1:
            raise ValueError(f"max_answers must be >= 1, got {max_answers}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.model_dir = Path(model_dir)
        self.max_answer_tokens = max_answer_tokens
        self.batch_windows = batch_windows
        self.max_answers = max_answers
        self.backend = backend
        self._max_length = max_length
        self._stride = stride
        self._device = device
        self._threads = threads
        self._model: OnnxSpanModel | TorchSpanModel | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._model is not None:
            return
        if not (self.model_dir / "config.json").is_file():
            raise ReaderModelError(f"no trained reader model in '{self.model_dir}' (config.json missing)")
        backend = self.backend
        if backend == "auto":
            backend = "onnx" if (self.model_dir / ONNX_FILE).is_file() else "torch"
        weights = self.model_dir / (ONNX_FILE if backend == "onnx" else TORCH_FILE)
        if not weights.is_file():
            raise ReaderModelError(f"no {backend} weights in '{self.model_dir}' ({weights.name} missing)")
        from embeddings.model_files import sha256_file
        from rag.model_card import check_sha256, verify_reader_files

        hashes = verify_reader_files(self.model_dir, skip=weights.name)
        if hashes is None:
            log.warning(
                "span model '%s' records no sha256 (%s): loading it unverified", weights, MANIFEST_FILE
            )
        meta_file = self.model_dir / "training.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        args = meta.get("arguments", {})
        self.max_length = self._max_length or int(args.get("max_length", DEFAULT_MAX_LENGTH))
        self.stride = self._stride or int(args.get("stride", DEFAULT_STRIDE))
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        if backend == "onnx":
            from rag.onnx_export import open_session

            data = weights.read_bytes()  # hashed and loaded from the same bytes: nothing swaps in between
            if hashes is not None:
                check_sha256(weights, hashlib.sha256(data).hexdigest(), hashes)
            self._model = OnnxSpanModel(open_session(data, self._threads))
        else:
            if hashes is not None:
                check_sha256(weights, sha256_file(weights), hashes)
            self._model = TorchSpanModel(_torch_model(self.model_dir, self._device))
        log.info("span model '%s' on %s%s", weights, backend, " (sha256 verified)" if hashes else "")

    def read(self, question: str, hits: Sequence[Hit]) -> list[Answer]:
        """Scored answers, best first, distinct texts; [] for a blank question or no hits."""
        if not question.strip() or not hits:
            return []
        unique: dict[tuple[str, int, int], Hit] = {}
        for hit in hits:
            p = hit.passage
            if p.text.strip():
                unique.setdefault((p.doc_id, p.start, p.end), hit)
        chosen = list(unique.values())
        if not chosen:
            return []
        with self._lock:
            self._load()
            windows = list(
                encode_windows(
                    self._tokenizer,
                    [question] * len(chosen),
                    [h.passage.text for h in chosen],
                    max_length=self.max_length,
                    stride=self.stride,
                )
            )
            starts, ends = self._logits(windows)
        candidates, null = self._candidates(chosen, windows, starts, ends)
        return self._answers(question.strip(), candidates, null)

    def _logits(self, windows: list[Window]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        assert self._model is not None  # _load ran
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        pad_id = self._tokenizer.pad_token_id or 0
        for first in range(0, len(windows), self.batch_windows):
            part = windows[first : first + self.batch_windows]
            s, e = self._model(
                pad_arrays([w.input_ids for w in part], [w.token_type_ids for w in part], pad_id)
            )
            for row, w in enumerate(part):
                starts.append(s[row, : len(w.input_ids)])
                ends.append(e[row, : len(w.input_ids)])
        return starts, ends

    def _candidates(
        self, hits: list[Hit], windows: list[Window], starts: list[np.ndarray], ends: list[np.ndarray]
    ) -> tuple[list[_Candidate], float]:
        """Best spans of every window, one per passage span (overlapping windows agree on it)."""
        best: dict[tuple[int, int, int], _Candidate] = {}
        null = np.inf
        for w, s, e in zip(windows, starts, ends, strict=True):
            null = min(null, float(s[0] + e[0]))
            hit = hits[w.sample]
            context = np.array([o is not None for o in w.offsets])
            for i, j, logit in best_spans(s, e, context, self.max_answer_tokens):
                oi, oj = w.offsets[i], w.offsets[j]
                assert oi is not None and oj is not None  # best_spans keeps context tokens only
                cs, ce = _strip(hit.passage.text, oi[0], oj[1])
                if cs >= ce:
                    continue
                key = (w.sample, cs, ce)
                if key not in best or best[key].logit < logit:
                    best[key] = _Candidate(hit.passage, hit.title, cs, ce, logit)
        # Widened after the choice above, so that a fragment ("Baghdad") stays a span of its own
        # there and its probability is added to the whole word's answer ("Baghdadi") by _answers;
        # likewise a span cut inside an aside ("American Sign Language (ASL") adds to the answer
        # without it.
        for c in best.values():
            c.start, c.end = balance(c.passage.text, *_whole_words(c.passage.text, c.start, c.end))
        return list(best.values()), null

    def _answers(self, question: str, candidates: list[_Candidate], null: float) -> list[Answer]:
        if not candidates:
            return []
        logits = np.array([c.logit for c in candidates] + [null])
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        groups: dict[str, list[_Candidate]] = {}
        for c, p in zip(candidates, probs[:-1], strict=True):
            c.prob = float(p)
            key = normalize_answer(c.passage.text[c.start : c.end])
            if key:
                groups.setdefault(key, []).append(c)
        ranked = sorted(
            ((max(g, key=lambda c: c.prob), sum(c.prob for c in g)) for g in groups.values()),
            key=lambda pair: -pair[1],
        )
        return [_answer(question, c, score) for c, score in ranked[: self.max_answers]]


def _torch_model(model_dir: Path, device: str | None) -> Any:
    import torch
    from transformers import AutoModelForQuestionAnswering

    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32)
    return model.to(chosen).eval()


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole words: a span that starts or ends inside a word ("Baghdad",
    the word pieces of "Baghdadi" less "##i") or a number ("500" of "1,500") is the whole word's
    answer, never a fragment. Scripts written without spaces (Chinese, Japanese, Thai) are left
    as they are: there a "word" would be the whole clause."""
    if start >= end:
        return start, end
    while start > 0 and _inside_word(text, start):
        start -= 1
    while end < len(text) and _inside_word(text, end):
        end += 1
    return start, end


def _inside_word(text: str, i: int) -> bool:
    """True when the boundary before text[i] lies inside a word or a number ("1,500", "3.5")."""
    before, after = text[i - 1], text[i]
    if _word_char(before) and _word_char(after):
        return True
    digit_before = before.isdigit() or (before in ".," and i >= 2 and text[i - 2].isdigit())
    digit_after = after.isdigit() or (after in ".," and i + 1 < len(text) and text[i + 1].isdigit())
    return digit_before and digit_after and (before.isdigit() or after.isdigit())


def _word_char(c: str) -> bool:
    """A letter, digit or combining mark of a script that writes spaces between words."""
    if not (c.isalnum() or unicodedata.category(c).startswith("M")):
        return False
    return not any(low <= ord(c) <= high for low, high in _UNSPACED_SCRIPTS)


# Thai, Lao, Khmer, Japanese kana, CJK ideographs, Hangul syllables: no spaces between words.
_UNSPACED_SCRIPTS = ((0x0E00, 0x0EFF), (0x1780, 0x17FF), (0x3040, 0x30FF), (0x3400, 0x9FFF),
                     (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0x20000, 0x2FFFF))  # fmt: skip


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """Passage offsets of the sentence(s) holding [start, end); the span itself if none does."""
    spans = split_sentences(text)
    first = next((s for s, e in spans if s <= start < e), start)
    last = next((e for s, e in spans if s < end <= e), end)
    return min(first, start), max(last, end)


def _answer(question: str, c: _Candidate, score: float) -> Answer:
    p = c.passage
    ss, se = _sentence(p.text, c.start, c.end)
    start, end = p.start + c.start, p.start + c.end
    return Answer(
        question=question,
        text=p.text[c.start : c.end],
        score=round(min(max(score, 0.0), 1.0), 4),
        doc_id=p.doc_id,
        start=start,
        end=end,
        sentence=p.text[ss:se],
        sentence_start=p.start + ss,
        sentence_end=p.start + se,
        citations=(
            Citation(
                doc_id=p.doc_id,
                title=c.title,
                passage_start=p.start,
                passage_end=p.end,
                passage_text=p.text,
                answer_start=start,
                answer_end=end,
            ),
        ),
    )
