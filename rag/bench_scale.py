"""Scale benchmark: the vector index and the passage store from 10k to 1M passages on this machine.

The corpus is synthetic but anchored in real passages, vectors and questions (the scheme is in
`rag/scale_corpus.py`). Per size it builds the index `choose_spec` picks and the product's SQLite
store (schema, FTS5 and all, batched inserts), then times single queries: FAISS search + fetching
the k passages from the store (`PassageStore.passages`), the product's BM25 (`keyword_search`),
and the exact flat scan; recall@10 is against exact search (`faiss.knn`, the IndexFlatIP kernel).

What each column holds: `build_s` = `index_build_s` (training + adding the vectors) +
`store_build_s` (inserting articles, passages and the FTS5 rows, committed); making the synthetic
texts (`synth_text_s`) and vectors is not counted. `memory_mb` is the saved FAISS index (codes,
ids, lists, centroids), `loaded_rss_mb` what a fresh process gains by loading it, `store_mb` the
SQLite file.

    >>> rows = bench_scale(QUICK_SIZES, log=print)
    >>> write_scale_plot(rows, Path("docs/scale.svg"))
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embeddings.encoder import Encoder
from embeddings.factory import make_encoder
from embeddings.index import FLAT_LIMIT, VectorIndex, choose_spec, training_sample
from rag.pipeline import PipelineSettings
from rag.scale_corpus import (
    STORE_BLOCK,
    CopyPlan,
    ScaleBase,
    ScaleQueries,
    bbc_base,
    build_store,
    default_queries,
    rewrite_cosines,
    synthetic_vectors,
)
from rag.store import PassageStore

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)  # CI: about two minutes
K = 10
BM25_POOL = 50  # the product's candidate pool (Retriever.candidates)
BM25_QUERIES = 100  # BM25 timing sample: FTS5 takes up to ~1 s per question at 1M
FLAT_QUERIES = 40  # exact-scan timing sample: 1M vectors cost ~0.5 s a query
WARMUP = 5
NPROBE_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top-k ids that the approximate top-k also returned."""
    if found.shape != exact.shape or exact.ndim != 2 or not exact.size:
        raise ValueError(f"expected (queries, k) arrays of one shape, got {found.shape} and {exact.shape}")
    shares = [
        len(set(f[f != -1].tolist()) & set(e[e != -1].tolist())) / max(1, int((e != -1).sum()))
        for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(shares))


def bench_scale(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    queries: ScaleQueries | None = None,
    base: ScaleBase | None = None,
    corpus: Path | None = None,
    encoder: Encoder | None = None,
    copy_cosines: np.ndarray | None = None,
    seed: int = 0,
    work_dir: Path | None = None,
    flat_limit: int = FLAT_LIMIT,
    build_threads: int | None = None,
    search_threads: int | None = 1,
    log: Callable[[str], None] = lambda message: None,
) -> list[dict[str, Any]]:
    """One row per size: build time, single-query latency, recall@10 vs exact, memory, store size.

    `base` defaults to the passages of `corpus` (default: the unpacked BBC archive) as the product
    indexes them; `queries` to the real question sets; `copy_cosines` to measured rewrites; all
    encoded by `encoder` (default MiniLM, only where not already cached). FAISS's OpenMP threads are capped at
    `search_threads` while timing single queries (1: on a shared 2-core machine a second thread
    waits for a busy core, 80 ms instead of 1 ms for 10k vectors) and `build_threads` while
    building (None: FAISS's default, all cores). `work_dir` keeps the stores and indexes.
    """
    sizes = sorted(set(sizes))
    if not sizes or sizes[0] < 1:
        raise ValueError(f"sizes must be >= 1 passages, got {list(sizes)}")
    if base is None or queries is None or copy_cosines is None:
        encoder = encoder or make_encoder(PipelineSettings().encoder)
    if base is None:
        base = bbc_base(encoder, corpus)  # type: ignore[arg-type]  # set just above
    if queries is None:
        queries = default_queries(encoder)  # type: ignore[arg-type]
    if copy_cosines is None:
        copy_cosines = rewrite_cosines(base, encoder)  # type: ignore[arg-type]
    log(
        f"base: {len(base.texts)} passages in {len(base.articles)} articles; {len(queries.texts)} "
        f"queries; cosine of real rewrites p10/p50/p90 {_quantiles(copy_cosines)}"
    )
    work = Path(tempfile.mkdtemp(prefix="rag-scale-")) if work_dir is None else work_dir
    work.mkdir(parents=True, exist_ok=True)
    try:
        plan = CopyPlan.make(base, sizes[-1], seed)
        vectors = np.lib.format.open_memmap(
            work / "vectors.npy", mode="w+", dtype=np.float32, shape=(sizes[-1], base.vectors.shape[1])
        )
        started = time.perf_counter()
        synthetic_vectors(base, plan, copy_cosines, vectors, seed)
        log(f"synthesized {sizes[-1]} vectors in {time.perf_counter() - started:.1f}s")
        run = _Run(base, plan, vectors, queries, work, seed, flat_limit, build_threads, search_threads, log)
        rows = []
        for n in sizes:
            rows.append(run.measure(n))
            log(json.dumps({k: v for k, v in rows[-1].items() if k != "nprobe_sweep"}))
        return rows
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class _Run:
    base: ScaleBase
    plan: CopyPlan
    vectors: np.ndarray
    queries: ScaleQueries
    work: Path
    seed: int
    flat_limit: int
    build_threads: int | None
    search_threads: int | None
    log: Callable[[str], None]

    def measure(self, n: int) -> dict[str, Any]:
        vectors, queries = self.vectors[:n], self.queries
        plan = CopyPlan(self.plan.source[:n], self.plan.copy[:n], self.plan.article[:n])
        spec = choose_spec(n, flat_limit=self.flat_limit)
        with _faiss_threads(self.build_threads):
            started = time.perf_counter()
            training = vectors[training_sample(n, spec, self.seed)] if spec.kind == "ivf" else None
            index = VectorIndex.empty(vectors.shape[1], spec, training, seed=self.seed)
            for begin in range(0, n, STORE_BLOCK):
                end = min(begin + STORE_BLOCK, n)
                index.add(np.arange(begin + 1, end + 1), vectors[begin:end])
            index_s = time.perf_counter() - started
            self.log(f"{n}: {spec.factory} built in {index_s:.1f}s")
            exact = faiss.knn(queries.vectors, vectors, min(K, n), metric=faiss.METRIC_INNER_PRODUCT)[1] + 1
        store_path, index_path = self.work / f"store-{n}.sqlite", self.work / f"vectors-{n}.faiss"
        store_path.unlink(missing_ok=True)
        store_s, synth_s = build_store(store_path, self.base, plan, self.seed)
        self.log(f"{n}: store built in {store_s:.1f}s (+{synth_s:.1f}s making the synthetic texts)")
        index.save(index_path)
        store = PassageStore.open(store_path)
        try:
            with _faiss_threads(self.search_threads):
                latency = _time_retrieval(index, store, queries.vectors)
                recall = recall_at_k(_ids(index, queries.vectors), exact)
                sweep = _nprobe_sweep(index, queries.vectors, exact) if spec.kind == "ivf" else []
                flat_ms = _time_flat(vectors, queries.vectors[:FLAT_QUERIES])
            bm25 = _time_bm25(store, queries.texts[:BM25_QUERIES])
        finally:
            store.close()
        head = np.flatnonzero(plan.copy[: min(n, 50_000)] > 0)  # copies' cosine to their sources
        cosines = np.einsum("ij,ij->i", vectors[head], self.base.vectors[plan.source[head]])
        return {
            "passages": n,
            "index": spec.factory + (f",nprobe={spec.nprobe}" if spec.kind == "ivf" else ""),
            "index_params": index.describe(),
            "build_s": round(index_s + store_s, 2),
            "index_build_s": round(index_s, 2),
            "store_build_s": round(store_s, 2),
            "synth_text_s": round(synth_s, 2),
            "p50_ms": latency["p50"],
            "p95_ms": latency["p95"],
            "search_p50_ms": latency["search_p50"],
            "recall_at_10": round(recall, 4),
            "memory_mb": round(index_path.stat().st_size / 2**20, 1),
            "loaded_rss_mb": _loaded_rss_mb(index_path),
            "store_mb": round(store_path.stat().st_size / 2**20, 1),
            "flat_p50_ms": flat_ms,
            "bm25_p50_ms": bm25["p50"],
            "bm25_p95_ms": bm25["p95"],
            "copy_cosine_p10_p50_p90": _quantiles(cosines) if len(cosines) else None,
            "nprobe_sweep": sweep,
        }


@contextmanager
def _faiss_threads(threads: int | None) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _ids(index: VectorIndex, queries: np.ndarray) -> np.ndarray:
    found = np.full((len(queries), K), -1, dtype=np.int64)
    for row, hits in enumerate(index.search(queries, K)):
        found[row, : len(hits)] = [i for i, _ in hits]
    return found[:, : min(K, len(index))]


def _time_retrieval(index: VectorIndex, store: PassageStore, queries: np.ndarray) -> dict[str, float]:
    """Per single query: FAISS search of the top K, then their passages and titles from SQLite."""
    total, search = [], []
    for i, query in enumerate(np.concatenate([queries[:WARMUP], queries])):
        started = time.perf_counter()
        hits = index.search(query[None], K)[0]
        searched = time.perf_counter()
        found = store.passages([pid for pid, _ in hits])
        done = time.perf_counter()
        if len(found) != len(hits):
            raise RuntimeError(f"the store lacks {len(hits) - len(found)} of the passages the index returned")
        if i >= WARMUP:
            total.append(done - started)
            search.append(searched - started)
    return {"p50": _ms(total, 50), "p95": _ms(total, 95), "search_p50": _ms(search, 50)}


def _time_flat(vectors: np.ndarray, queries: np.ndarray) -> float:
    """Exact scan per single query (`faiss.knn` is IndexFlatIP's search kernel, without the copy)."""
    times = []
    for query in queries:
        started = time.perf_counter()
        faiss.knn(query[None], vectors, K, metric=faiss.METRIC_INNER_PRODUCT)
        times.append(time.perf_counter() - started)
    return _ms(times, 50)


def _time_bm25(store: PassageStore, questions: Sequence[str]) -> dict[str, float]:
    times = []
    for question in questions:
        started = time.perf_counter()
        store.keyword_search(question, BM25_POOL)
        times.append(time.perf_counter() - started)
    return {"p50": _ms(times, 50), "p95": _ms(times, 95)}


def _nprobe_sweep(index: VectorIndex, queries: np.ndarray, exact: np.ndarray) -> list[dict[str, float]]:
    """Recall@10 and single-query search p50 for each nprobe, to justify the chosen one."""
    chosen = index.spec.nprobe
    result = []
    for nprobe in [p for p in NPROBE_SWEEP if p <= index.spec.nlist]:
        index.set_nprobe(nprobe)
        times = []
        for query in queries[:50]:
            started = time.perf_counter()
            index.search(query[None], K)
            times.append(time.perf_counter() - started)
        result.append(
            {
                "nprobe": nprobe,
                "recall_at_10": round(recall_at_k(_ids(index, queries), exact), 4),
                "search_p50_ms": _ms(times, 50),
            }
        )
    index.set_nprobe(chosen)
    return result


def _loaded_rss_mb(path: Path) -> float:
    """Resident memory a fresh process gains by loading the saved index (read_index)."""
    code = (
        "import faiss, sys\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "before = rss(); index = faiss.read_index(sys.argv[1]); print((rss() - before) / 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return round(float(out.stdout.strip()), 1)


def _ms(seconds: Sequence[float], q: float) -> float:
    return round(float(np.percentile(seconds, q)) * 1000, 2)


def _quantiles(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.percentile(values, [10, 50, 90])]


def format_scale_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of `bench_scale` rows."""
    lines = [
        "| passages | index | build s (index + store) | p50 ms | p95 ms | recall@10 | index MB | store MB "
        "| flat p50 ms | BM25 p50 ms | BM25 p95 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['passages']:,} | {r['index']} | {r['build_s']:.1f} ({r['index_build_s']:.1f} + "
            f"{r['store_build_s']:.1f}) | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['recall_at_10']:.3f} "
            f"| {r['memory_mb']:.0f} | {r['store_mb']:.0f} | {r['flat_p50_ms']:.1f} | {r['bm25_p50_ms']:.1f} "
            f"| {r['bm25_p95_ms']:.1f} |"
        )
    return "\n".join(lines)


def write_scale_plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Build time, query time and memory against passages (log-log), as SVG or PNG by suffix."""
    if not rows:
        raise ValueError("no rows to plot")
    if path.suffix.lower() not in (".svg", ".png"):
        raise ValueError(f"plot path must end in .svg or .png, got {path.name!r}")
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import pyplot as plt

    n = [r["passages"] for r in rows]
    panels = [
        ("build time (s)", [("index", "index_build_s"), ("store (SQLite + FTS5)", "store_build_s")]),
        (
            "single-query time (ms)",
            [
                ("FAISS + fetch k passages, p50", "p50_ms"),
                ("FAISS + fetch k passages, p95", "p95_ms"),
                ("exact flat scan, p50", "flat_p50_ms"),
                ("BM25 (FTS5), p50", "bm25_p50_ms"),
            ],
        ),
        ("size (MB)", [("index (vectors + lists)", "memory_mb"), ("store on disk", "store_mb")]),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, (title, series) in zip(axes, panels, strict=True):
        for label, key in series:
            ax.plot(n, [max(r[key], 1e-3) for r in rows], marker="o", label=label)
        if title.startswith("single"):
            ax.axhline(20, color="grey", linestyle=":", label="20 ms target")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("passages")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle(" / ".join(f"{r['passages']:,}: {r['index']}" for r in rows), fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The same numbers give the same file: no timestamp, element ids salted by the data's own text.
    with matplotlib.rc_context({"svg.hashsalt": repr(rows)}):
        figure.savefig(path, metadata={"Date": None} if path.suffix.lower() == ".svg" else None)
    plt.close(figure)
