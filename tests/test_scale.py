from __future__ import annotations

import random
import re
from pathlib import Path

import faiss
import numpy as np
import pytest

from embeddings.encoder import normalize_rows
from embeddings.index import IndexSpec, VectorIndex, _split_lists, choose_spec, fit_to_size, list_centroids
from embeddings.tokens import default_counter
from rag.bench_scale import bench_scale, format_scale_table, recall_at_k, write_scale_plot
from rag.chunking import Chunker
from rag.indexing import sync_index
from rag.manifest import default_index_dir, read_manifest
from rag.pipeline import PipelineSettings
from rag.scale_corpus import (
    CopyPlan,
    ScaleBase,
    ScaleQueries,
    bbc_base,
    rewrite_cosines,
    rewrite_text,
    synthetic_vectors,
)
from rag.store import PassageStore
from tests.conftest import FakeEncoder

WORDS = (
    "bank market shares profit election minister vote party film award actor music match team goal "
    "coach phone software games network growth economy oil prices court police report"
).split()


def _vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return normalize_rows(np.random.default_rng(seed).normal(size=(n, dim)))


def _clustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Vectors around 40 centres, like copies of passages: a fair test of IVF."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    return normalize_rows(centres[rng.integers(40, size=n)] + 0.3 * rng.normal(size=(n, dim)))


@pytest.fixture
def base(fake_encoder) -> ScaleBase:
    rng = random.Random(0)
    doc_ids, titles, texts = [], [], []
    for article in range(12):
        for passage in range(1 + article % 3):
            doc_ids.append(f"topic/{article:03d}.txt")
            titles.append(f"{rng.choice(WORDS).title()} story {article}")
            words = [rng.choice(WORDS) for _ in range(30)] + [str(rng.randrange(1000, 3000))]
            texts.append(f"Passage {passage}: " + " ".join(words) + ".")
    return ScaleBase.from_passages(doc_ids, titles, texts, fake_encoder.encode(texts))


def test_recall_at_k_counts_shared_ids_per_query() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert recall_at_k(exact.copy(), exact) == 1.0
    assert recall_at_k(np.array([[4, 3, 9, 9], [8, 7, 6, 5]]), exact) == pytest.approx((0.5 + 1.0) / 2)
    assert recall_at_k(np.array([[1, -1, -1, -1], [-1, -1, -1, -1]]), exact) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="one shape"):
        recall_at_k(exact[:, :2], exact)


def test_choose_spec_is_exact_up_to_the_limit_then_ivf_sized_by_sqrt_n() -> None:
    assert choose_spec(0) == IndexSpec() and choose_spec(10_000, flat_limit=10_000).kind == "flat"
    spec = choose_spec(1_000_000, flat_limit=10_000)
    assert spec.kind == "ivf" and spec.nlist == 4000 and 1 <= spec.nprobe <= spec.nlist
    assert spec.factory == "IVF4000_HNSW32,SQfp16"
    small = choose_spec(2_000, flat_limit=500)  # nlist capped so k-means has 39 points per list
    assert small.kind == "ivf" and small.nlist == 2_000 // 39
    with pytest.raises(ValueError, match="got -1"):
        choose_spec(-1)
    with pytest.raises(ValueError, match="nprobe must be between 1 and nlist=8, got 9"):
        IndexSpec("ivf", 8, 9)
    with pytest.raises(ValueError, match="'hnsw'"):
        IndexSpec("hnsw")


def test_ivf_index_finds_what_exact_search_finds() -> None:
    vectors = _clustered(3000)
    ids = np.arange(10, 3010)
    ivf = VectorIndex.build(ids, vectors, IndexSpec("ivf", 32, 8))
    flat = VectorIndex.build(ids, vectors)
    queries = _clustered(50, seed=1)
    found = np.array([[i for i, _ in hits] for hits in ivf.search(queries, 10)])
    exact = np.array([[i for i, _ in hits] for hits in flat.search(queries, 10)])
    assert flat.describe()["kind"] == "flat" and ivf.describe()["factory"] == "IVF32_HNSW32,SQfp16"
    assert recall_at_k(found, exact) >= 0.9
    ivf.set_nprobe(1)
    found_1 = np.array([[i for i, _ in hits] for hits in ivf.search(queries, 10)])
    assert recall_at_k(found_1, exact) < recall_at_k(found, exact)  # fewer lists, less recall
    assert ivf.similarity(vectors[5], 15) == pytest.approx(1.0, abs=0.02)
    assert ivf.similarity(vectors[5], 16) == pytest.approx(float(vectors[5] @ vectors[6]), abs=0.02)


def test_ivf_add_remove_save_load(tmp_path: Path) -> None:
    vectors = _clustered(2000)
    index = VectorIndex.build(np.arange(2000), vectors, IndexSpec("ivf", 16, 16, "SQ8"))
    assert index.remove(np.array([3, 4, 5])) == 3
    index.add(np.array([5000]), _vectors(1, seed=9))
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert len(loaded) == 1998
    assert loaded.describe() == {
        "kind": "ivf", "factory": "IVF16_HNSW32,SQ8", "exact": False, "dim": 16, "vectors": 1998,
        "nlist": 16, "nprobe": 16, "codec": "SQ8",
    }
    hits = loaded.search(vectors[[3, 7]], k=1)
    assert hits[0][0][0] != 3 and hits[1][0][0] == 7
    assert loaded.search(_vectors(1, seed=9), k=1)[0][0][0] == 5000
    with pytest.raises(RuntimeError):
        loaded.similarity(vectors[3], 3)  # removed ids are gone from the id map too
    ids, decoded = loaded.export()
    assert set(ids.tolist()) == set(range(2000)) - {3, 4, 5} | {5000}
    assert np.abs(decoded[ids == 7][0] - vectors[7]).max() < 0.02
    assert not list(tmp_path.glob(".*tmp*"))


def test_ivf_needs_enough_training_vectors() -> None:
    with pytest.raises(ValueError, match=r"IVF64_HNSW32,SQfp16 needs at least 2496 .* got 1000"):
        VectorIndex.build(np.arange(1000), _vectors(1000), IndexSpec("ivf", 64, 8))
    with pytest.raises(ValueError, match="exact"):
        VectorIndex(16).set_nprobe(4)


def test_two_level_centroids_cover_the_data_with_exactly_nlist_lists() -> None:
    vectors = _clustered(4000)
    centroids = list_centroids(vectors, 100)
    assert centroids.shape == (100, 16)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-4)  # spherical: IP == L2 order
    nearest = (vectors @ centroids.T).max(axis=1)
    assert np.median(nearest) > 0.9  # every point has a close list
    assert _split_lists(np.array([10, 1, 0, 5]), 12).tolist() == [7, 1, 0, 4]
    assert _split_lists(np.array([3, 3]), 6).tolist() == [3, 3]
    with pytest.raises(ValueError, match="at least nlist=100 training vectors, got 50"):
        list_centroids(vectors[:50], 100)


def test_a_flat_index_written_before_this_change_still_loads(tmp_path: Path) -> None:
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(16))
    old.add_with_ids(_vectors(20), np.arange(100, 120))
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    loaded = VectorIndex.load(tmp_path / "old.faiss")
    assert loaded.describe()["factory"] == "IDMap2,Flat" and len(loaded) == 20
    assert loaded.search(_vectors(20)[[4]], 1)[0][0][0] == 104


def test_fit_to_size_switches_kind_when_the_corpus_crosses_the_limit() -> None:
    vectors = _clustered(2000)
    small = VectorIndex.build(np.arange(400), vectors[:400])
    assert fit_to_size(small, flat_limit=1000) is small
    small.add(np.arange(400, 2000), vectors[400:])
    grown = fit_to_size(small, flat_limit=1000)
    assert grown.describe()["kind"] == "ivf" and len(grown) == 2000
    assert grown.search(vectors[[1234]], 1)[0][0][0] == 1234
    assert fit_to_size(grown, flat_limit=1500) is grown  # between half the limit and the limit: stays
    grown.remove(np.arange(300, 2000))
    shrunk = fit_to_size(grown, flat_limit=1000)
    assert shrunk.describe()["kind"] == "flat" and len(shrunk) == 300
    assert shrunk.search(vectors[[7]], 1)[0][0][0] == 7


def test_rewrite_text_is_light_seeded_and_changes_numbers() -> None:
    text = " ".join("w" + chr(97 + i // 26) + chr(97 + i % 26) for i in range(200)) + " in 2004 and 1999"
    one = rewrite_text(text, random.Random(1))
    assert one == rewrite_text(text, random.Random(1)) and one != text
    kept = set(one.split()) & set(text.split())
    assert 0.85 * 204 < len(kept) < 204
    changed = [rewrite_text("Sales rose 12345678 in 2004", random.Random(s)) for s in range(20)]
    assert any("12345678" not in c for c in changed) and all(re.search(r"\d{8}", c) for c in changed)
    assert rewrite_text("Word", random.Random(0)) == "Word" and rewrite_text("", random.Random(0)) == ""


def test_copies_are_as_near_their_source_as_the_target_cosines() -> None:
    vectors = _vectors(300, dim=384)
    base = ScaleBase.from_passages([f"d{i // 3}" for i in range(300)], ["t"] * 300, ["x"] * 300, vectors)
    plan = CopyPlan.make(base, 3000)
    assert plan.copy[:300].tolist() == [0] * 300 and plan.copy.max() == 9
    out = np.zeros((3000, 384), dtype=np.float32)
    synthetic_vectors(base, plan, np.array([0.9, 0.95]), out)
    assert np.array_equal(out[:300], base.vectors)  # copy 0 is the real data
    cos = np.einsum("ij,ij->i", out[300:], base.vectors[plan.source[300:]])
    assert 0.9 - 0.02 < cos.mean() < 0.95 + 0.02 and cos.min() > 0.85
    nested = np.zeros((1000, 384), dtype=np.float32)
    synthetic_vectors(base, CopyPlan.make(base, 1000), np.array([0.9, 0.95]), nested)
    assert np.array_equal(nested, out[:1000])  # the first n are the same for every size


def test_bench_scale_rows_switch_kind_and_the_store_holds_every_passage(
    tmp_path: Path, base: ScaleBase, fake_encoder
) -> None:
    questions = [f"What about the {w} and the {v}?" for w, v in zip(WORDS, reversed(WORDS), strict=True)]
    queries = ScaleQueries(questions, fake_encoder.encode(questions))
    cosines = rewrite_cosines(base, fake_encoder, sample=10)
    assert 0.5 < float(np.median(cosines)) < 1.0
    rows = bench_scale((500, 2500), queries=queries, base=base, copy_cosines=cosines,
                       work_dir=tmp_path, flat_limit=1000)
    keys = {"passages", "index", "build_s", "p50_ms", "p95_ms", "recall_at_10", "memory_mb", "store_mb",
            "bm25_p50_ms", "flat_p50_ms"}
    assert all(keys <= row.keys() for row in rows)
    flat, ivf = rows
    assert flat["index"] == "IDMap2,Flat" and flat["recall_at_10"] == 1.0
    assert ivf["index"].startswith("IVF64_HNSW32,SQfp16,nprobe=") and 0.5 <= ivf["recall_at_10"] <= 1.0
    assert [p["nprobe"] for p in ivf["nprobe_sweep"]] == [1, 2, 4, 8, 16, 32, 64]
    assert ivf["nprobe_sweep"][-1]["recall_at_10"] >= 0.98  # all lists: only the fp16 codes differ
    assert all(r["p50_ms"] > 0 and r["memory_mb"] > 0 and r["store_mb"] > 0 for r in rows)
    store = PassageStore.open(tmp_path / "store-2500.sqlite")
    try:
        articles, passages = store.count()
        assert passages == 2500 and articles > 2500 // len(base.texts)
        for pid in (1, 777, 2500):
            passage, _title = store.passages([pid])[pid]
            article = store.article(passage.doc_id)
            assert article is not None and article.text[passage.start : passage.end] == passage.text
        assert store.keyword_search(WORDS[0], 5)
    finally:
        store.close()
    assert "| 2,500 | IVF64_HNSW32,SQfp16" in format_scale_table(rows)
    write_scale_plot(rows, tmp_path / "scale.svg")
    assert (tmp_path / "scale.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="got \\[0\\]"):
        bench_scale((0,), queries=queries, base=base, copy_cosines=cosines)


class OtherEncoder(FakeEncoder):
    model_id = "another-encoder"


def test_the_base_is_the_product_index_and_another_encoder_never_rebuilds_it(
    seed_corpus: Path, fake_encoder
) -> None:
    product_index = default_index_dir(seed_corpus)
    settings = PipelineSettings()
    chunker = Chunker(default_counter(), settings.chunk_size, settings.chunk_overlap)
    sync_index(seed_corpus, product_index, encoder=fake_encoder, chunker=chunker)
    before = read_manifest(product_index)
    beside = product_index.parent / "scale" / f"base-{product_index.name}"
    base = bbc_base(fake_encoder, seed_corpus)
    assert len(base.texts) == len(base.vectors) == before["counts"]["passages"] >= 2
    assert not beside.exists()  # the product's own index was used
    other = bbc_base(OtherEncoder(), seed_corpus)
    assert read_manifest(product_index) == before  # untouched: the other encoder's index is beside it
    assert (beside / "manifest.json").is_file() and other.texts == base.texts
