"""NeuralReader: offsets, sentences and citations agree with the article; scores are calibrated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.chunking import Passage
from rag.neural_reader import NeuralReader, ReaderModelError, _whole_words, best_spans, pad_arrays
from rag.retrieval import Hit

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
TRAIN = DATASETS / "squad-v1.1-train" / "train-v1.1.rebuilt.json.gz"
DEV = DATASETS / "squad-v1.1-dev" / "dev-v1.1.json.zip"

ARTICLE = (
    "Flood warning for the Severn\n\n"
    "The Environment Agency issued a flood warning on Tuesday for the River Severn. "
    "Officials said the water could rise by two metres near Shrewsbury.\n\n"
    "Oumar Diaby, a local farmer, moved 300 sheep to higher ground. He said his family had "
    "farmed the valley since 1920. " + "The council opened three rest centres in town halls. " * 40
)


def _hits(article: str) -> list[Hit]:
    """Passages by paragraph, the last one long enough to need several windows."""
    hits, start = [], 0
    for rank, para in enumerate(article.split("\n\n"), 1):
        start = article.index(para, start)
        hits.append(Hit(Passage("severn.txt", start, start + len(para), para), "Severn", 1.0 / rank, rank))
        start += len(para)
    return hits


def test_best_spans_respects_order_length_and_context() -> None:
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=40), rng.normal(size=40)
    context = np.array([i >= 10 for i in range(40)])
    spans = best_spans(start, end, context, max_tokens=5, k=50)
    assert spans and len(spans) <= 50
    assert all(10 <= i <= j < i + 5 for i, j, _ in spans)
    scores = [s for _, _, s in spans]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("span", "whole"),
    [
        ("mar Diaby", "Oumar Diaby"),  # the word piece "##mar" of "Oumar" started the span
        ("Olivier Christ", "Olivier Christen"),
        ("AF", "AFP"),
        ("Oumar Diaby", "Oumar Diaby"),
        ("Mouhajer", "Mouhajer"),  # after a hyphen: already a word of its own
        ("Diaby", "Diaby"),  # before "’s"
        ("500", "1,500"),  # a number cut at its thousands comma
        ("5 percent", "3.5 percent"),
        ("2016", "2016"),
        ("近平", "近平"),  # no spaces between words: left as it is, not widened to the clause
    ],
)
def test_whole_words_widens_a_span_cut_inside_a_word(span: str, whole: str) -> None:
    text = "AFP: Oumar Diaby’s son al-Mouhajer met Olivier Christen; 1,500 came, 3.5 percent in 2016 习近平在"
    start = text.index(span)
    got = _whole_words(text, start, start + len(span))
    assert text[slice(*got)] == whole


def test_constructor_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_answer_tokens must be >= 1, got 0"):
        NeuralReader(tmp_path, max_answer_tokens=0)
    with pytest.raises(ValueError, match="batch_windows must be >= 1, got 0"):
        NeuralReader(tmp_path, batch_windows=0)
    with pytest.raises(ValueError, match="backend must be one of .*, got 'tf'"):
        NeuralReader(tmp_path, backend="tf")
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        NeuralReader(tmp_path, threads=0)


def test_missing_model_says_where(tmp_path: Path) -> None:
    reader = NeuralReader(tmp_path)
    with pytest.raises(ReaderModelError, match="no trained reader model"):
        reader.read("Who?", _hits(ARTICLE))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ReaderModelError, match="no onnx weights in .*model.onnx missing"):
        NeuralReader(tmp_path, backend="onnx").read("Who?", _hits(ARTICLE))


def test_pad_arrays_pads_to_the_longest_row() -> None:
    batch = pad_arrays([[101, 7, 102], [101, 102]], [[0, 1, 1], [0, 1]], pad_id=0)
    assert batch["input_ids"].tolist() == [[101, 7, 102], [101, 102, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 1, 1], [0, 1, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert all(v.dtype == np.int64 for v in batch.values())


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> NeuralReader:
    if not (TRAIN.is_file() and DEV.is_file()):
        pytest.skip("SQuAD datasets not found in ../shared/datasets")
    import torch

    from rag.training import train_reader

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("reader")
        train_reader(TRAIN, DEV, out, max_examples=16, max_steps=2, batch_size=8, max_length=192,
                     stride=64, eval_examples=0, lr=3e-4)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return NeuralReader(out / "model", max_answer_tokens=10, batch_windows=4)


@pytest.mark.slow
def test_answers_point_into_the_article(reader: NeuralReader) -> None:
    hits = _hits(ARTICLE)
    answers = reader.read("How many sheep did Oumar Diaby move?", hits)
    assert answers
    texts = [a.text for a in answers]
    assert len(set(texts)) == len(texts)
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)
    assert sum(a.score for a in answers) <= 1.0 + 1e-3
    for a in answers:
        assert a.text and ARTICLE[a.start : a.end] == a.text
        assert _whole_words(ARTICLE, a.start, a.end) == (a.start, a.end)  # never part of a word
        assert 0.0 <= a.score <= 1.0
        assert a.sentence is not None and ARTICLE[a.sentence_start : a.sentence_end] == a.sentence
        assert a.sentence_start <= a.start and a.end <= a.sentence_end  # type: ignore[operator]
        cite = a.citations[0]
        assert ARTICLE[cite.passage_start : cite.passage_end] == cite.passage_text
        assert cite.answer_start == a.start and cite.answer_end == a.end
        assert cite.passage_start <= a.start and a.end <= cite.passage_end  # type: ignore[operator]


@pytest.mark.slow
def test_duplicate_hits_and_empty_cases(reader: NeuralReader) -> None:
    hits = _hits(ARTICLE)
    once = reader.read("Where is the River Severn?", hits[:2])
    twice = reader.read("Where is the River Severn?", hits[:2] + hits[:2])
    assert [(a.text, a.score) for a in once] == [(a.text, a.score) for a in twice]
    assert reader.read("   ", hits) == []
    assert reader.read("Who?", []) == []
    blank = Hit(Passage("x.txt", 0, 3, "   "), "x", 1.0, 1)
    assert reader.read("Who?", [blank]) == []


@pytest.mark.slow
def test_the_pipeline_answers_through_the_neural_reader(reader: NeuralReader, seed_qa) -> None:  # type: ignore[no-untyped-def]
    from rag.pipeline import PipelineSettings, QAPipeline

    settings = PipelineSettings(reader="neural", reader_model=str(reader.model_dir), abstain_threshold=0.0)
    qa = QAPipeline(seed_qa.index, seed_qa.encoder, settings)
    answer = qa.ask("Who is Jibril al-Mouhajer?")
    assert answer.text is not None and answer.doc_id is not None
    article = qa.index.store.article(answer.doc_id)
    assert article is not None and article.text[answer.start : answer.end] == answer.text


@pytest.fixture(scope="module")
def onnx_pair(
    reader: NeuralReader, tmp_path_factory: pytest.TempPathFactory
) -> tuple[NeuralReader, NeuralReader]:
    """The trained run read by torch and by its ONNX export (one folder holding both files)."""
    import shutil

    from rag.onnx_export import export_onnx

    both = tmp_path_factory.mktemp("both") / "model"
    shutil.copytree(reader.model_dir, both)
    check = export_onnx(both, both / "model.onnx")
    assert check.max_abs_diff < 1e-4 and check.windows >= 4
    options = {"max_answer_tokens": 10, "batch_windows": 4}
    return NeuralReader(both, backend="torch", **options), NeuralReader(both, **options)  # type: ignore[arg-type]


@pytest.mark.slow
def test_onnx_reads_like_torch(onnx_pair: tuple[NeuralReader, NeuralReader]) -> None:
    torch_reader, onnx_reader = onnx_pair
    hits = _hits(ARTICLE)
    questions = [
        "How many sheep did Oumar Diaby move?",
        "Who issued a flood warning?",
        "Since when has his family farmed the valley?",
        "Where did the council open rest centres?",  # the long passage: several windows
    ]
    for question in questions:
        want, got = torch_reader.read(question, hits), onnx_reader.read(question, hits)
        assert got and (got[0].text, got[0].start, got[0].end) == (want[0].text, want[0].start, want[0].end)
        by_span = {(a.text, a.start, a.end): a.score for a in want}
        assert {(a.text, a.start, a.end) for a in got} == set(by_span)
        # scores are rounded to 4 places: a 1e-6 logit difference can move one by a last-place unit
        assert all(abs(a.score - by_span[(a.text, a.start, a.end)]) <= 1e-4 + 1e-9 for a in got)
        assert [a.sentence for a in got][:1] == [a.sentence for a in want][:1]
    assert torch_reader._model is not None and torch_reader._model.backend == "torch"
    assert onnx_reader._model is not None and onnx_reader._model.backend == "onnx"


@pytest.mark.slow
def test_an_unrecorded_folder_loads_and_says_so(
    onnx_pair: tuple[NeuralReader, NeuralReader], caplog: pytest.LogCaptureFixture
) -> None:
    fresh = NeuralReader(onnx_pair[1].model_dir)
    with caplog.at_level("WARNING", logger="rag.neural_reader"):
        assert fresh.read("Who issued a flood warning?", _hits(ARTICLE))
    assert "records no sha256" in caplog.text and "loading it unverified" in caplog.text
