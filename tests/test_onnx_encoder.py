"""The int8 ONNX MiniLM encoder, the encoder factory and the encoder benchmark."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embeddings.encoder import SentenceTransformerEncoder
from embeddings.factory import ENCODERS, make_encoder
from embeddings.model_files import MAX_SEQ_TOKENS, ModelError, model_dir
from embeddings.onnx_encoder import (
    OnnxEncoder,
    OnnxFp32Encoder,
    length_sorted_batches,
    mean_pool,
    onnx_model_file,
    verified_file,
)
from rag.bench_encoder import bench_encoder, encoder_quality, flop_per_token, max_drop_points
from tests.conftest import SEEDS, FakeEncoder

# Lowest cosine to the torch vectors measured on 300 BBC passages (0.9989) and the 96 seed
# questions (0.9993), with a margin for other text; dynamic int8 activations would give ~0.94.
MIN_COSINE, MIN_MEAN_COSINE = 0.995, 0.999


def test_make_encoder_knows_the_names_and_refuses_others() -> None:
    assert ENCODERS == ("onnx", "torch", "onnx-int8")
    assert type(make_encoder("onnx")) is OnnxFp32Encoder
    assert isinstance(make_encoder("torch"), SentenceTransformerEncoder)
    assert type(make_encoder("onnx-int8")) is OnnxEncoder
    # the same float32 weights on two runtimes share an index; int8 weights never mix with them
    assert make_encoder("onnx").model_id == make_encoder("torch").model_id
    assert make_encoder("torch").model_id != make_encoder("onnx-int8").model_id
    with pytest.raises(
        ValueError, match=r"encoder must be one of \('onnx', 'torch', 'onnx-int8'\), got 'fp32'"
    ):
        make_encoder("fp32")


def test_bad_settings_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        OnnxEncoder(batch_size=0)
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        OnnxEncoder(threads=0)
    assert OnnxEncoder().encode([]).shape == (0, 384)  # nothing to do: no model is loaded


def test_tampered_onnx_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copy(onnx_model_file(), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="refusing to use tampered or unknown weights"):
        OnnxEncoder(model_file=copy).encode(["a question"])
    with pytest.raises(ModelError, match="ONNX model not found"):
        OnnxEncoder(model_file=tmp_path / "missing.onnx").encode(["a question"])


def test_a_changed_tokenizer_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "tokenizer.json"
    copy.write_bytes((model_dir() / "tokenizer.json").read_bytes().replace(b'"[UNK]"', b'"[UNKNOWN]"', 1))
    with pytest.raises(ModelError, match="tokenizer .* refusing to use tampered"):
        OnnxEncoder(tokenizer_file=copy).encode(["a question"])


class _Ids:
    def __init__(self, n: int) -> None:
        self.ids = list(range(1, n + 1))


def test_batches_are_length_sorted_and_padded_only_to_their_own_longest() -> None:
    lengths = [3, 10, 2, 9, 4]
    batches = length_sorted_batches([_Ids(n) for n in lengths], batch_size=2)  # type: ignore[arg-type]
    assert [b.rows for b in batches] == [(1, 3), (4, 0), (2,)]
    assert [b.input_ids.shape for b in batches] == [(2, 10), (2, 4), (1, 2)]
    second = batches[1]
    assert second.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert second.input_ids[1].tolist() == [1, 2, 3, 0]  # [PAD] is id 0
    assert sum(b.tokens for b in batches) == sum(lengths)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        length_sorted_batches([], 0)


def test_mean_pool_averages_real_tokens_only() -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    pooled = mean_pool(hidden, np.array([[1, 1, 0]]))
    assert np.allclose(pooled, [[2.0, 3.0]])
    assert np.allclose(mean_pool(hidden, np.array([[0, 0, 0]])), 0.0)  # no tokens: zeros, not NaN


def test_flop_count_is_the_documented_23_mflop_per_token() -> None:
    assert 22e6 < flop_per_token(160) < 24e6
    assert flop_per_token(256) > flop_per_token(16)


class _SlowFake(FakeEncoder):
    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        time.sleep(self.delay_s)
        return super().encode(texts)


def test_bench_encoder_times_both_on_the_same_texts_and_reports_the_ratio() -> None:
    fast, slow = _SlowFake(0.0), _SlowFake(0.02)
    texts = [f"passage number {i} about tea prices" for i in range(12)]
    questions = [f"question {i}?" for i in range(6)]
    result = bench_encoder(texts, questions, encoders={"torch": fast, "onnx-int8": slow}, rounds=3, warmup=2)
    assert fast.texts_encoded == slow.texts_encoded  # same texts, same questions
    assert result["passages"] == 12 and result["questions_timed"] == 4
    assert result["encoders"] == ["torch", "onnx-int8"]
    assert result["onnx_int8_over_torch"] < 1.0  # the slow one is "onnx-int8" here
    assert result["onnx-int8"]["query_p50_ms"] >= 20.0 > result["torch"]["query_p50_ms"]
    assert result["query_p50_torch_over_onnx_int8"] < 1.0
    assert result["cosine"]["onnx-int8"]["min"] == pytest.approx(1.0)  # the same function: identical vectors
    ceiling = result["fp32_ceiling_tokens_per_s"]
    assert result["torch"]["fraction_of_fp32_ceiling"] == pytest.approx(
        result["torch"]["tokens_per_s"] / ceiling, abs=1e-3
    )
    with pytest.raises(ValueError, match="need more than 3 questions"):
        bench_encoder(texts, questions[:3], encoders={"torch": fast, "onnx-int8": slow})
    with pytest.raises(ValueError, match="at least one passage"):
        bench_encoder([], questions, encoders={"torch": fast, "onnx-int8": slow})
    with pytest.raises(ValueError, match="with 'torch' first"):
        bench_encoder(texts, questions, encoders={"onnx-int8": slow, "torch": fast})


def test_encoder_quality_scores_each_encoder_on_the_fixed_set(tmp_path: Path) -> None:
    made: list[str] = []

    def make(name: str) -> FakeEncoder:
        made.append(name)
        return FakeEncoder()

    quality = encoder_quality(("a", "b"), seeds=SEEDS, squad_sample=0, index_root=tmp_path, make=make)
    assert made == ["a", "b"] and "squad" not in quality
    seed = quality["seed"]
    assert seed["answerable"] == 79 and set(seed["a"]) == {"dense", "hybrid"}
    assert seed["a"] == seed["b"] and quality["max_drop_points"] == 0.0
    assert (tmp_path / "a").is_dir() and (tmp_path / "b").is_dir()  # one index per encoder


def test_max_drop_points_is_the_worst_fall_from_the_first_encoder() -> None:
    row = {"hit@1": 0.8, "hit@3": 0.9, "mrr": 0.85}
    quality = {
        "seed": {"torch": {"dense": row, "hybrid": row},
                 "onnx": {"dense": {**row, "hit@3": 0.875}, "hybrid": {**row, "hit@1": 0.85}}},
    }  # fmt: skip
    assert max_drop_points(quality, ["torch", "onnx"]) == 2.5


@pytest.fixture(scope="module")
def onnx_encoder() -> OnnxEncoder:
    encoder = OnnxEncoder()
    encoder.load()
    return encoder


def _seed_passages() -> list[str]:
    text = next(SEEDS.glob("*.txt")).read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 40]
    return paragraphs[:24]


@pytest.mark.slow
def test_onnx_vectors_are_unit_384_d_and_rank_by_meaning(onnx_encoder: OnnxEncoder) -> None:
    vectors = onnx_encoder.encode(
        ["Who leads the jihadists?", "The group is led by a preacher.", "Tea prices rose."]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


@pytest.mark.slow
def test_onnx_tokens_are_those_sentence_transformers_feeds_its_model(
    onnx_encoder: OnnxEncoder, real_encoder: SentenceTransformerEncoder
) -> None:
    texts = ["  Who is  Jibril al-Mouhajer?\n", "word " * 400, *_seed_passages()[:4]]
    features = real_encoder.model.tokenize(texts)
    ids, mask = features["input_ids"].numpy(), features["attention_mask"].numpy()
    ours = onnx_encoder.tokenize(texts)
    assert [e.ids for e in ours] == [row[m == 1].tolist() for row, m in zip(ids, mask, strict=True)]
    assert len(ours[1].ids) == MAX_SEQ_TOKENS  # truncated at 256, not at the file's 128


@pytest.mark.slow
def test_onnx_agrees_with_torch_on_real_text(
    onnx_encoder: OnnxEncoder, real_encoder: SentenceTransformerEncoder
) -> None:
    from rag.evaluation import load_questions

    questions = [q.question for q in load_questions(SEEDS / "questions.jsonl").questions][:40]
    texts = _seed_passages() + questions
    cosine = np.sum(onnx_encoder.encode(texts) * real_encoder.encode(texts), axis=1)
    assert cosine.min() > MIN_COSINE and cosine.mean() > MIN_MEAN_COSINE


@pytest.mark.slow
def test_a_text_gets_the_same_vector_alone_or_padded_in_a_batch(onnx_encoder: OnnxEncoder) -> None:
    texts = _seed_passages()[:6] + ["Short one.", "Another, slightly longer, question here?"]
    together = onnx_encoder.encode(texts)
    alone = np.stack([onnx_encoder.encode([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)  # padding and sorting change nothing, order kept


@pytest.mark.slow
def test_one_session_serves_many_threads(onnx_encoder: OnnxEncoder) -> None:
    texts = _seed_passages()[:8]
    expected = [onnx_encoder.encode(texts[i:] + texts[:i]) for i in range(4)]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                results[i] = onnx_encoder.encode(texts[i:] + texts[:i])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i in range(4):
        assert np.allclose(results[i], expected[i], atol=1e-5)


@pytest.mark.slow
def test_a_new_encoder_loads_and_hashes_once_shared_files(tmp_path: Path) -> None:
    verified_file.cache_clear()
    first, second = OnnxEncoder(), OnnxEncoder()
    first.load()
    second.load()
    assert verified_file.cache_info().hits >= 2  # the 23 MB hash is not recomputed per encoder


@pytest.mark.slow
def test_bench_encoder_on_the_real_encoders(
    onnx_encoder: OnnxEncoder, real_encoder: SentenceTransformerEncoder
) -> None:
    passages = _seed_passages()[:8]
    result = bench_encoder(
        passages, ["Who?", "What?", "When did it happen?", "Where?", "Why?"],
        encoders={"torch": real_encoder, "onnx-int8": onnx_encoder}, rounds=2, warmup=2,
    )  # fmt: skip
    assert result["onnx_int8_over_torch"] > 0 and result["onnx-int8"]["tokens_per_s"] > 0
    assert result["cosine"]["onnx-int8"]["min"] > MIN_COSINE
    assert result["torch"]["model_id"] != result["onnx-int8"]["model_id"]
