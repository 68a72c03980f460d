"""MiniLM on torch, on onnxruntime (float32 export) and as the int8 ONNX file: speed (in one
process, interleaved) and retrieval quality.

How close can an encoder get to the machine? all-MiniLM-L6-v2 has 22.7M parameters, but 11.7M
of them are the token-embedding table, a lookup that costs no arithmetic. Each token goes through
6 layers of 4 x 384x384 attention projections and 2 x 384x1536 feed-forward matrices: 10.6M
weights, each one multiply and one add, so 21.2 MFLOP. Attention adds 4 x 384 x L FLOP per layer
for a sequence of L tokens (scores and the weighted sum), 1.5 MFLOP at this corpus's ~160 tokens
per passage. About 23 MFLOP per token in all (the "2 x 22M parameters" rule of thumb lands on the
same figure, for the wrong reason). Two Zen 3 cores with AVX2 peak at about 190 GFLOP/s in float32
matrix multiply (2 x 3 GHz x 2 FMA units x 8 lanes x 2), so no float32 encoder can pass about
8,000 tokens/s here, and real ones lose some to layer norm, softmax, GELU and memory traffic.

The int8 ONNX file is not exempt: it stores its weights as int8 but its graph turns them back into
float32 before the matrix multiplies (see embeddings/onnx_encoder.py), so the float32 ceiling
applies to it too. Only a graph whose matrix multiplies run on int8 (MatMulInteger) could pass it.

The float32 export of the same weights (embeddings/fp32_export.py, the default "onnx" encoder) runs
the same arithmetic as torch, so any gain is overhead removed: fused kernels and no per-operator
Python dispatch, which is most of the cost of one short question.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.encoder import Encoder
from embeddings.factory import ENCODERS, make_encoder
from embeddings.model_files import MAX_SEQ_TOKENS
from embeddings.tokens import default_counter

LAYERS, HIDDEN, FEED_FORWARD = 6, 384, 1536
MATMUL_WEIGHTS = LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FEED_FORWARD)  # 10,616,832
FLOP_PER_TOKEN = 23e6  # 2 x MATMUL_WEIGHTS + attention at ~160 tokens; see flop_per_token()
PEAK_FP32_FLOPS = 190e9  # two Zen 3 cores, AVX2 FMA, float32 matrix multiply
FP32_CEILING_TOKENS_PER_S = 8_000  # PEAK_FP32_FLOPS / FLOP_PER_TOKEN = 8,260, rounded as the issue states


def flop_per_token(seq_len: int) -> float:
    """Float operations per token of a sequence of `seq_len` tokens: weights plus attention."""
    return 2.0 * MATMUL_WEIGHTS + 4.0 * LAYERS * HIDDEN * seq_len


def token_lengths(texts: Sequence[str]) -> list[int]:
    """Tokens the model sees per text: word pieces + [CLS] and [SEP], cut at 256."""
    return [min(n + 2, MAX_SEQ_TOKENS) for n in default_counter().count(list(texts))]


def bench_encoder(
    texts: list[str],
    questions: list[str],
    *,
    encoders: Mapping[str, Encoder] | None = None,
    rounds: int = 4,
    warmup: int = 3,
) -> dict[str, Any]:
    """Passages/s, tokens/s and single-question latency of each encoder on the same inputs.

    `encoders` (default: every encoder the product offers, each at its own batch size) run in
    this one process, torch first, in alternating rounds (the order flips every round), so a
    neighbour's load on a shared machine slows all alike and the ratios stay fair. CPU seconds
    are reported beside wall seconds for the same reason. Each ratio and cosine is against torch.

    >>> result = bench_encoder(passage_texts, seed_questions)
    >>> result["onnx_over_torch"], result["onnx_int8_over_torch"], result["onnx"]["query_p50_ms"]
    """
    if not texts:
        raise ValueError("bench_encoder needs at least one passage text")
    if len(questions) <= warmup:
        raise ValueError(f"need more than {warmup} questions to time (the first {warmup} warm up)")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    encoders = dict(encoders) if encoders is not None else _default_encoders()
    names = list(encoders)
    if len(names) < 2 or names[0] != "torch":
        raise ValueError(f"bench_encoder compares encoders with 'torch' first, got {names}")
    lengths = token_lengths(texts)
    tokens = sum(lengths)
    for encoder in encoders.values():  # load the model and run it once before any timing
        encoder.encode(texts[: min(len(texts), 4)])

    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in names}
    step = -(-len(texts) // rounds)
    for round_no, first in enumerate(range(0, len(texts), step)):
        part = texts[first : first + step]
        for name in names if round_no % 2 == 0 else names[::-1]:
            started, started_cpu = time.perf_counter(), time.process_time()
            vectors[name].append(encoders[name].encode(part))
            wall[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - started_cpu

    latencies = _question_latencies(encoders, questions, warmup)
    flop = sum(n * flop_per_token(n) for n in lengths)
    result: dict[str, Any] = {
        "encoders": names,
        "passages": len(texts),
        "tokens": tokens,
        "mean_tokens_per_passage": round(tokens / len(texts), 1),
        "rounds": rounds,
        "questions_timed": len(questions) - warmup,
        "flop_per_token": round(flop / tokens),
        "fp32_ceiling_tokens_per_s": FP32_CEILING_TOKENS_PER_S,
        "cosine": {},
    }
    for name in names:
        ms = latencies[name]
        result[name] = {
            "model_id": encoders[name].model_id,
            "batch_size": getattr(encoders[name], "batch_size", None),
            "seconds": round(wall[name], 3),
            "cpu_seconds": round(cpu[name], 3),
            "passages_per_s": round(len(texts) / wall[name], 2),
            "tokens_per_s": round(tokens / wall[name], 1),
            "tokens_per_cpu_s": round(tokens / cpu[name], 1) if cpu[name] > 0 else None,
            "gflop_per_s": round(flop / wall[name] / 1e9, 2),
            "fraction_of_fp32_ceiling": round(tokens / wall[name] / FP32_CEILING_TOKENS_PER_S, 3),
            "query_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "query_p95_ms": round(float(np.percentile(ms, 95)), 2),
        }
    base = np.concatenate(vectors["torch"])
    for other in names[1:]:
        cosine = np.sum(base * np.concatenate(vectors[other]), axis=1)
        result["cosine"][other] = {
            "min": round(float(cosine.min()), 5),
            "mean": round(float(cosine.mean()), 5),
        }
        result[f"{_key(other)}_over_torch"] = round(wall["torch"] / wall[other], 3)
        result[f"query_p50_torch_over_{_key(other)}"] = round(
            result["torch"]["query_p50_ms"] / result[other]["query_p50_ms"], 3
        )
    result["measured_matmul_gflop_per_s"] = round(measure_matmul_gflops(), 1)
    return result


def _default_encoders() -> dict[str, Encoder]:
    """Every encoder the product offers, torch first, each at its own default batch size."""
    return {name: make_encoder(name) for name in ("torch", *(n for n in ENCODERS if n != "torch"))}


def _key(name: str) -> str:
    """A JSON-friendly name ("onnx-int8" -> "onnx_int8"): the ratios are `onnx_over_torch`, ..."""
    return name.replace("-", "_")


def _question_latencies(
    encoders: Mapping[str, Encoder], questions: Sequence[str], warmup: int
) -> dict[str, list[float]]:
    """Milliseconds to encode each question alone (what a query pays), alternating encoders."""
    for question in questions[:warmup]:
        for encoder in encoders.values():
            encoder.encode([question])
    latencies: dict[str, list[float]] = {name: [] for name in encoders}
    for number, question in enumerate(questions[warmup:]):
        order = list(encoders) if number % 2 == 0 else list(encoders)[::-1]
        for name in order:
            started = time.perf_counter()
            encoders[name].encode([question])
            latencies[name].append((time.perf_counter() - started) * 1000)
    return latencies


def measure_matmul_gflops(size: int = 1024, seconds: float = 1.0) -> float:
    """Float32 matrix-multiply GFLOP/s numpy reaches right now: the practical peak, under today's load."""
    rng = np.random.default_rng(0)
    left = rng.standard_normal((size, size), dtype=np.float32)
    right = rng.standard_normal((size, size), dtype=np.float32)
    left @ right
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        left @ right
        done += 1
    return 2.0 * size**3 * done / (time.perf_counter() - started) / 1e9


def encoder_quality(
    names: Sequence[str] = ENCODERS,
    *,
    seeds: Path = Path("seeds"),
    squad_file: Path | None = None,
    squad_sample: int = 1000,
    squad_documents: int | None = None,
    index_root: Path | None = None,
    make: Callable[[str], Encoder] = make_encoder,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Retrieval hit@k and MRR of each encoder on the fixed set and on the report's SQuAD sample.

    Scoring is `rag.tuning.sweep_fusion` (what `rag report` uses) at two settings: dense alone
    (keyword weight 0, where the encoder is all that differs) and the default hybrid fusion.
    Each encoder gets its own index under `index_root` (kept, so a rerun only checks it). The
    SQuAD corpus is built by `rag.eval_runner.squad_corpus` from all articles, or from the first
    `squad_documents` of them to keep a quick check quick.

    Cost: one index build per encoder and corpus; SQuAD dev's 48 articles are ~2,250 passages,
    ~365k tokens, about 3 minutes per encoder on two idle cores.
    """
    from rag.eval_runner import squad_corpus
    from rag.evaluation import load_questions
    from rag.manifest import default_index_dir
    from rag.pipeline import PipelineSettings, QAPipeline
    from rag.report import SQUAD_DEV, SQUAD_SEED
    from rag.squad import SquadSet, load_squad, sample_questions
    from rag.tuning import sweep_fusion

    settings = PipelineSettings(reader="heuristic")  # retrieval only: no reader is loaded
    sets: list[tuple[str, Path, list[Any]]] = [
        ("seed", Path(seeds), list(load_questions(Path(seeds) / "questions.jsonl").questions))
    ]
    squad_path = squad_file or SQUAD_DEV
    result: dict[str, Any] = {"keyword_weight": settings.keyword_weight, "fusion": settings.fusion}
    if squad_sample and squad_path.is_file():
        squad = load_squad(squad_path)
        if squad_documents is not None:
            kept = squad.documents[:squad_documents]
            ids = {d.doc_id for d in kept}
            squad = SquadSet(kept, tuple(q for q in squad.questions if q.doc_id in ids))
        chosen = sample_questions(squad.questions, min(squad_sample, len(squad.questions)), SQUAD_SEED)
        sets.append(("squad", squad_corpus(squad), [q.as_question() for q in chosen]))
        result["squad_documents"] = len(squad.documents)
    for set_name, corpus, questions in sets:
        answerable = sum(1 for q in questions if q.answers)
        table: dict[str, Any] = {"questions": len(questions), "answerable": answerable}
        for name in names:
            encoder = make(name)
            root = index_root or default_index_dir(corpus).parent / "encoder-quality"
            log(f"{set_name}: {name} ...")
            index_dir = root / name / default_index_dir(corpus).name
            qa = QAPipeline.from_corpus(
                corpus, index_dir=index_dir, encoder=encoder, settings=settings, log=log
            )
            try:
                weights = (0.0, settings.keyword_weight)
                rows = sweep_fusion(qa, questions, weights=weights, methods=(settings.fusion,))
                table["passages"] = qa.index.store.count()[1]
            finally:
                qa.close()
            table[name] = {"dense": _rounded(rows[0]), "hybrid": _rounded(rows[1])}
        result[set_name] = table
    result["max_drop_points"] = max_drop_points(result, names)
    return result


def _rounded(row: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in row.items() if k.startswith("hit@") or k == "mrr"}


def max_drop_points(quality: Mapping[str, Any], names: Sequence[str]) -> float:
    """The largest fall in hit@k (in percentage points) from the first encoder to any other,
    over every question set, mode and k: the issue allows at most 1."""
    base, *others = names
    drops = [0.0]
    for set_name in ("seed", "squad"):
        table = quality.get(set_name)
        if not table:
            continue
        for other in others:
            for mode in ("dense", "hybrid"):
                for k, value in table[base][mode].items():
                    if k.startswith("hit@"):
                        drops.append(100.0 * (value - table[other][mode][k]))
    return round(max(drops), 2)
