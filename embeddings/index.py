"""FAISS inner-product indexes over unit vectors, keyed by integer ids, of a kind chosen by size.

Up to `FLAT_LIMIT` vectors the index is exact (IndexIDMap2 over IndexFlatIP): a query scans every
vector, ~0.45 ms per 1,000 vectors of 384 floats on one busy core here, so 20 ms near 45k. Beyond
it, an inverted-file index ("IVF<nlist>_HNSW32,SQfp16") scans only the `nprobe` lists nearest the
query out of `nlist = 4 sqrt(n)`, stores each vector as 384 float16 codes (0.77 GB at 1M vectors
instead of 1.5 GB) and finds the lists through an HNSW graph over their centroids.

The parameters are measured, by `rag/bench_scale.py`, on a million copies of real BBC passage
vectors queried by 316 real questions: nprobe = 48 gave recall@10 against exact search of 0.972
at 1M (4,000 lists) and 0.971 at 100k (1,265 lists), searching in ~2 ms; 32 gave 0.952 and 0.954,
too near the 0.95 target. 8-bit codes (SQ8, half the memory) level off at recall 0.951 at 1M (nprobe 96
and 128, 0.933 at 48): near-duplicate passages score within their quantization error of each
other, so SQ8 is an option (`IndexSpec(codec="SQ8")`), not the default.

Both kinds add, remove, reconstruct (for `similarity`), save and load through one class; an
index saved before IVF existed loads as flat. `fit_to_size` switches kind as a corpus grows or
shrinks. The index never owns a model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

UNIT_TOLERANCE = 1e-3
FLAT_LIMIT = 40_000  # largest exact index: the flat scan passes 20 ms per query near 45k here
NLIST_PER_SQRT = 4  # nlist = 4 sqrt(n): the usual FAISS balance of centroid scan vs list scan
NPROBE = 48  # lists probed per query: recall@10 vs exact ~0.97 at 100k and 1M (see above)
MIN_TRAIN_PER_LIST = 39  # FAISS's own k-means floor: fewer points per centroid gives poor lists
TRAIN_PER_LIST = 64  # training sample per list; more costs k-means time for no measured recall
KMEANS_ITERATIONS = 12
HNSW_M = 32  # links per centroid in the coarse quantizer's graph
HNSW_EF_ADD = 16  # beam when adding vectors: 2.7x faster than 64, same recall@10 at 100k
HNSW_EF_SEARCH = 64  # beam when finding a query's lists (at least 2 * nprobe)
KINDS = ("flat", "ivf")
_HASHTABLE: int = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]  # missing from faiss's stubs
CODECS = {"SQ8": faiss.ScalarQuantizer.QT_8bit, "SQfp16": faiss.ScalarQuantizer.QT_fp16}


@dataclass(frozen=True)
class IndexSpec:
    """Which FAISS structure to build: exact `flat`, or `ivf` with `nlist` lists, `nprobe` and a codec."""

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 0
    codec: str = "SQfp16"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "ivf":
            if self.nlist < 1:
                raise ValueError(f"nlist must be >= 1, got {self.nlist}")
            if not 1 <= self.nprobe <= self.nlist:
                raise ValueError(f"nprobe must be between 1 and nlist={self.nlist}, got {self.nprobe}")
            if self.codec not in CODECS:
                raise ValueError(f"codec must be one of {tuple(CODECS)}, got {self.codec!r}")

    @property
    def factory(self) -> str:
        """The FAISS index-factory string of this structure (what the manifest states)."""
        return "IDMap2,Flat" if self.kind == "flat" else f"IVF{self.nlist}_HNSW{HNSW_M},{self.codec}"


def choose_spec(n_vectors: int, *, flat_limit: int = FLAT_LIMIT) -> IndexSpec:
    """The index for `n_vectors`: exact up to `flat_limit`, else IVF with 4 sqrt(n) lists, fp16 codes.

    >>> choose_spec(1_000_000)
    IndexSpec(kind='ivf', nlist=4000, nprobe=48, codec='SQfp16')
    """
    if n_vectors < 0:
        raise ValueError(f"n_vectors must be >= 0, got {n_vectors}")
    if flat_limit < 0:
        raise ValueError(f"flat_limit must be >= 0, got {flat_limit}")
    if n_vectors <= flat_limit:
        return IndexSpec()
    nlist = max(1, min(round(NLIST_PER_SQRT * math.sqrt(n_vectors)), n_vectors // MIN_TRAIN_PER_LIST))
    return IndexSpec("ivf", nlist, min(nlist, NPROBE))


class VectorIndex:
    """Cosine search over unit vectors: `add(ids, vectors)`, `search(queries, k) -> [[(id, score)]]`.

    >>> index = VectorIndex(dim=384)                       # exact, grows by `add`
    >>> index.add(np.array([7, 8]), vectors)
    >>> index.search(query_vectors, k=1)
    [[(7, 0.83)]]
    >>> big = VectorIndex.build(ids, many_vectors)         # kind chosen by size (choose_spec)
    >>> big.describe()["factory"]
    'IVF4000_HNSW32,SQfp16'
    """

    def __init__(self, dim: int, faiss_index: faiss.Index | None = None) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self._params: faiss.SearchParametersIVF | None = None
        self._beam: object = None
        self._index = (
            faiss_index if faiss_index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        )
        if self._index.d != dim:
            raise ValueError(f"index dimension {self._index.d} does not match dim {dim}")
        if isinstance(self._index, faiss.IndexIVFScalarQuantizer):
            if self._index.metric_type != faiss.METRIC_INNER_PRODUCT:
                raise ValueError("an IVF index must use inner product (cosine on unit vectors)")
            if self._index.direct_map.type != _HASHTABLE:
                # `similarity` and `remove` need id -> code lookups with arbitrary ids
                self._index.set_direct_map_type(_HASHTABLE)
        elif not isinstance(self._index, faiss.IndexIDMap2):
            raise ValueError(
                f"unsupported FAISS index {type(self._index).__name__}; expected "
                "IndexIDMap2(IndexFlatIP) or IndexIVFScalarQuantizer"
            )
        self._refresh_search_params()

    @classmethod
    def empty(
        cls, dim: int, spec: IndexSpec, training: np.ndarray | None = None, *, seed: int = 0
    ) -> VectorIndex:
        """An index of kind `spec` with no vectors; an IVF one is trained on `training` first.

        `training` should be a sample of the vectors to come: k-means places the lists where
        they are (and SQ8 takes each dimension's range from it).
        """
        if spec.kind == "flat":
            return cls(dim)
        if training is None:
            raise ValueError(f"an {spec.factory} index needs training vectors")
        needed = spec.nlist * MIN_TRAIN_PER_LIST
        if len(training) < needed:
            raise ValueError(
                f"{spec.factory} needs at least {needed} training vectors "
                f"({MIN_TRAIN_PER_LIST} per list), got {len(training)}"
            )
        training = _unit_rows(training, dim)
        # a query's or new vector's lists are found through an HNSW graph of the centroids, not a
        # scan of all of them: about even with the scan at 100k vectors (1,265 lists), ~70 s
        # instead of ~3 min for 1M vectors into 4,000 lists (one busy core; the scan extrapolated)
        quantizer = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        quantizer.add(list_centroids(training, spec.nlist, seed))
        quantizer.hnsw.efSearch = HNSW_EF_ADD
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, spec.nlist, CODECS[spec.codec], faiss.METRIC_INNER_PRODUCT
        )
        index.train(training)  # the codec's ranges only: a quantizer holding nlist centroids is kept
        result = cls(dim, index)
        result.set_nprobe(spec.nprobe)
        return result

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, spec: IndexSpec | None = None, *, seed: int = 0
    ) -> VectorIndex:
        """An index holding `vectors` under `ids`, of kind `spec` (default: chosen by their number)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"expected vectors of shape (n, dim), got {vectors.shape}")
        spec = spec or choose_spec(len(vectors))
        training = None
        if spec.kind == "ivf":
            training = vectors[training_sample(len(vectors), spec, seed)]
        index = cls.empty(vectors.shape[1], spec, training, seed=seed)
        index.add(ids, vectors)
        return index

    @property
    def spec(self) -> IndexSpec:
        if isinstance(self._index, faiss.IndexIVFScalarQuantizer):
            codec = next(name for name, qtype in CODECS.items() if qtype == self._index.sq.qtype)
            return IndexSpec("ivf", int(self._index.nlist), int(self._index.nprobe), codec)
        return IndexSpec()

    def describe(self) -> dict[str, Any]:
        """Kind and parameters, for the manifest and benchmark tables."""
        spec = self.spec
        result: dict[str, Any] = {
            "kind": spec.kind,
            "factory": spec.factory,
            "exact": spec.kind == "flat",
            "dim": self.dim,
            "vectors": len(self),
        }
        if spec.kind == "ivf":
            result.update(nlist=spec.nlist, nprobe=spec.nprobe, codec=spec.codec)
        return result

    def set_nprobe(self, nprobe: int) -> None:
        """Lists scanned per query (IVF only): more is slower and closer to exact search."""
        if not isinstance(self._index, faiss.IndexIVFScalarQuantizer):
            raise ValueError("nprobe applies to an IVF index; this one is exact (flat)")
        if not 1 <= nprobe <= self._index.nlist:
            raise ValueError(f"nprobe must be between 1 and nlist={self._index.nlist}, got {nprobe}")
        self._index.nprobe = nprobe
        self._refresh_search_params()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = self._checked(vectors)
        if len(ids) != len(vectors):
            raise ValueError(f"got {len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        return int(self._index.remove_ids(ids))  # type: ignore[arg-type]  # faiss accepts arrays

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = self._checked(queries)
        if len(self) == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = self._index.search(queries, min(k, len(self)), params=self._params)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def _refresh_search_params(self) -> None:
        """IVF over an HNSW quantizer searches with a beam wide enough for the lists probed (add
        keeps the index's own narrow beam). Built here, not per search, so threads share one."""
        index = self._index
        if not isinstance(index, faiss.IndexIVFScalarQuantizer):
            return
        if not isinstance(faiss.downcast_index(index.quantizer), faiss.IndexHNSWFlat):
            return
        beam = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from the stubs
        beam.efSearch = max(HNSW_EF_SEARCH, 2 * index.nprobe)
        params = faiss.SearchParametersIVF()
        params.nprobe = index.nprobe
        params.quantizer_params = beam
        self._params, self._beam = params, beam  # SWIG does not keep `beam` alive for `params`

    def similarity(self, query: np.ndarray, vector_id: int) -> float:
        """Cosine between one unit query vector and the stored vector `vector_id` (decoded, for IVF)."""
        stored = self._index.reconstruct(int(vector_id))
        return float(np.dot(np.asarray(query, dtype=np.float32), stored))

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored; IVF ones decoded (fp16: within ~1e-3, SQ8: ~1e-2)."""
        index = self._index
        if isinstance(index, faiss.IndexIVFScalarQuantizer):
            lists = index.invlists
            sizes = [lists.list_size(i) if lists is not None else 0 for i in range(index.nlist)]
            ids = np.concatenate(
                [np.zeros(0, dtype=np.int64)]
                + [
                    faiss.rev_swig_ptr(lists.get_ids(i), size).copy()
                    for i, size in enumerate(sizes)
                    if size and lists is not None
                ]
            )
            if not len(ids):
                return ids, np.zeros((0, self.dim), dtype=np.float32)
            return ids, np.asarray(index.reconstruct_batch(ids), dtype=np.float32)
        if not isinstance(index, faiss.IndexIDMap2):
            raise TypeError(f"cannot export a {type(index).__name__}")
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        flat = faiss.downcast_index(index.index)
        return ids, np.asarray(flat.reconstruct_n(0, len(ids)), dtype=np.float32).reshape(len(ids), self.dim)

    def serialized_bytes(self) -> int:
        """Size of the index as written by `save`: the vectors (or their codes), ids and lists."""
        return int(faiss.serialize_index(self._index).nbytes)

    def save(self, path: Path) -> None:
        """Write atomically: a temp file beside `path`, fsync, then rename over it."""
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        faiss.write_index(self._index, str(tmp))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        index = faiss.read_index(str(path))
        return cls(index.d, index)

    def _checked(self, vectors: np.ndarray) -> np.ndarray:
        return _unit_rows(vectors, self.dim)


def _unit_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    if len(norms) and not np.all((np.abs(norms - 1.0) < UNIT_TOLERANCE) | (norms == 0)):
        raise ValueError("vectors must be unit length; normalize them with normalize_rows()")
    return vectors


def training_sample(n_vectors: int, spec: IndexSpec, seed: int = 0) -> np.ndarray:
    """Sorted row numbers of a seeded sample of TRAIN_PER_LIST rows per list (all rows if fewer)."""
    size = min(n_vectors, spec.nlist * TRAIN_PER_LIST)
    rows = np.random.default_rng(seed).choice(n_vectors, size=size, replace=False)
    return np.sort(rows)


def list_centroids(training: np.ndarray, nlist: int, seed: int = 0) -> np.ndarray:
    """`nlist` unit centroids by two-level spherical k-means: sqrt(nlist) coarse clusters, each split.

    One-level k-means costs points x nlist x dim per iteration (minutes for 4,000 lists on 2
    cores); two levels cost points x 2 sqrt(nlist) x dim, with lists as good for search (this is
    FAISS's own recipe for large nlist, `contrib.clustering.two_level_clustering`).
    """
    n, dim = training.shape
    if n < nlist:
        raise ValueError(f"need at least nlist={nlist} training vectors, got {n}")
    coarse = max(1, min(round(math.sqrt(nlist)), nlist))
    if coarse == 1 or coarse == nlist:
        return _kmeans(training, nlist, seed)
    _, assign = faiss.knn(training, _kmeans(training, coarse, seed), 1, metric=faiss.METRIC_INNER_PRODUCT)
    assign = assign[:, 0]
    counts = np.bincount(assign, minlength=coarse)
    shares = _split_lists(counts, nlist)
    parts = [
        _kmeans(training[assign == c], int(k), seed + 1 + c) for c, k in enumerate(shares.tolist()) if k
    ]
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def _split_lists(counts: np.ndarray, nlist: int) -> np.ndarray:
    """Lists per coarse cluster: proportional to its points (largest remainder), at least one per
    non-empty cluster, never more than its points."""
    ideal = counts * nlist / counts.sum()
    shares = np.minimum(np.maximum(np.floor(ideal), counts > 0), counts).astype(np.int64)
    while shares.sum() > nlist:
        shares[int(np.argmin(np.where(shares > 1, ideal - shares, np.inf)))] -= 1
    while shares.sum() < nlist:
        shares[int(np.argmax(np.where(shares < counts, ideal - shares, -np.inf)))] += 1
    return shares


def _kmeans(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    if k >= len(vectors):
        return np.ascontiguousarray(vectors[:k], dtype=np.float32)
    kmeans = faiss.Kmeans(
        vectors.shape[1], k, niter=KMEANS_ITERATIONS, seed=seed, spherical=True,
        max_points_per_centroid=TRAIN_PER_LIST * 4, min_points_per_centroid=1,
    )
    kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return np.asarray(kmeans.centroids, dtype=np.float32)


def fit_to_size(index: VectorIndex, *, flat_limit: int = FLAT_LIMIT, seed: int = 0) -> VectorIndex:
    """`index` itself while its kind suits its size, else the same vectors in a rebuilt index.

    Flat becomes IVF past `flat_limit`; IVF is retrained once the corpus has grown 4x past its
    lists (nlist below half of what `choose_spec` wants) and returns to flat below half the limit,
    so a corpus hovering near the limit does not flip kind on every update. Rebuilding an IVF
    index starts from its decoded 8-bit vectors (cosine error ~1e-3), not the encoder's output.
    """
    n = len(index)
    current, wanted = index.spec, choose_spec(n, flat_limit=flat_limit)
    if current.kind == "flat" and wanted.kind == "flat":
        return index
    if current.kind == "ivf" and n > flat_limit // 2:
        if wanted.kind == "flat" or wanted.nlist <= 2 * current.nlist:
            return index
    ids, vectors = index.export()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1.0, norms)  # decoded codes are only nearly unit
    return VectorIndex.build(ids, vectors, wanted if n > flat_limit // 2 else IndexSpec(), seed=seed)
