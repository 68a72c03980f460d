from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.bench_peers import bench_peers, format_peers, questions_under, score_run, subset_corpus
from rag.evaluation import Question, load_questions
from tests.conftest import ROOT, SEEDS
from tests.test_no_network import offline_env

KEYS = ("build_s", "p50_ms", "p95_ms", "hit_at_3", "hit_at_5", "passages", "version", "setup")


def _q(qid: str, answers: tuple[str, ...], doc_id: str | None = None) -> Question:
    return Question(qid, f"question {qid}?", answers, doc_id)


def test_hit_at_k_is_the_rank_of_the_first_passage_holding_a_gold_answer() -> None:
    questions = [
        _q("a", ("Oumar Diaby",)),  # found at rank 3, through an apostrophe
        _q("b", ("Petrov",)),  # "Petrova" is another name: never a hit
        _q("c", ()),  # unanswerable: left out of hit@k
        _q("d", ("45,000",)),  # rank 1, punctuation normalized
    ]
    retrieved = [
        ["The camp is quiet.", "Nobody spoke.", "Oumar Diaby's son told AFP.", "x", "y"],
        ["Anna Petrova won.", "Petrova again."],
        ["Anything at all."],
        ["Up to 45 000 people marched.", "45,000 people."],
    ]
    row = score_run(questions, retrieved, [10.0, 20.0, 30.0, 40.0], k=5)
    assert row["answerable"] == 3 and row["questions"] == 4
    assert row["hit_at_1"] == pytest.approx(1 / 3, abs=1e-4)
    assert row["hit_at_3"] == pytest.approx(2 / 3, abs=1e-4)
    assert row["hit_at_5"] == pytest.approx(2 / 3, abs=1e-4)
    assert "hit_at_10" not in row  # five passages cannot say anything about rank 10
    assert row["mrr"] == pytest.approx((1 / 3 + 0 + 1) / 3, abs=1e-4)
    assert row["p50_ms"] == 25.0


def test_score_run_needs_one_result_per_question() -> None:
    with pytest.raises(ValueError, match="2 questions, 1 results"):
        score_run([_q("a", ("x",)), _q("b", ("y",))], [["x"]], [1.0], k=5)


def test_k_below_five_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="k must be >= 5.*got 3"):
        bench_peers(tmp_path, [_q("a", ("x",))], k=3)


def test_missing_peers_are_skipped_and_ours_is_still_measured(
    seed_corpus: Path, fake_encoder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("haystack", "haystack_integrations", "txtai"):
        monkeypatch.setitem(sys.modules, module, None)  # `import txtai` now raises ImportError
    questions = load_questions(SEEDS / "questions.jsonl").questions[:8]
    result = bench_peers(seed_corpus, questions, encoder=fake_encoder)  # type: ignore[arg-type]
    assert set(result) == {"ours", "haystack", "txtai"}
    for peer in ("haystack", "txtai"):
        assert set(result[peer]) == {"skipped"}
        assert "not installed" in result[peer]["skipped"] and "[bench]" in result[peer]["skipped"]
    ours = result["ours"]
    assert ours["passages"] > 0 and ours["questions"] == 8 and ours["build_s"] > 0
    assert 0.0 <= ours["hit_at_1"] <= ours["hit_at_3"] <= ours["hit_at_5"] <= 1.0
    assert "QAPipeline.retrieve" in ours["setup"]
    table = format_peers(result)
    assert "| ours | " in table and "- txtai: skipped: txtai not installed" in table


def test_subset_keeps_the_articles_asked_about_and_drops_questions_left_out(tmp_path: Path) -> None:
    corpus = tmp_path / "bbc"
    for folder in ("business", "sport"):
        (corpus / folder).mkdir(parents=True)
        for i in range(4):
            (corpus / folder / f"{i:03d}.txt").write_text(f"Title {folder} {i}\n\nBody text {i}.\n")
    questions = [_q("a", ("x",), "sport/002.txt"), _q("b", ("y",), "business/001.txt"), _q("c", ("z",))]
    dest, kept = subset_corpus(corpus, questions, 5, tmp_path / "subset")
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.txt"))
    assert len(files) == 5 and {"sport/002.txt", "business/001.txt"} <= set(files)
    assert [q.id for q in kept] == ["a", "b", "c"]  # a question without doc_id stays
    again, _ = subset_corpus(corpus, questions, 5, tmp_path / "again")
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*.txt")) == files  # seeded
    _, fewer = subset_corpus(corpus, questions, 1, tmp_path / "one")
    assert len([q for q in fewer if q.doc_id]) == 1
    with pytest.raises(ValueError, match="limit_articles must be >= 1, got 0"):
        subset_corpus(corpus, questions, 0, tmp_path / "none")


def test_questions_under_a_sub_folder_are_rebased_to_it(tmp_path: Path) -> None:
    root = tmp_path / "bbc"
    (root / "business").mkdir(parents=True)
    (root / "business" / "001.txt").write_text("x")
    questions = [_q("a", ("x",), "business/001.txt"), _q("b", ("y",), "sport/001.txt"), _q("c", ("z",))]
    kept = questions_under(questions, root, root / "business")
    assert [(q.id, q.doc_id) for q in kept] == [("a", "001.txt")]


@pytest.mark.slow
def test_all_three_index_the_same_passages_offline(tmp_path: Path) -> None:
    """The real run, end to end (our MiniLM, Haystack, txtai) with outbound sockets blocked."""
    lines = (SEEDS / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    netlog, out = tmp_path / "net.log", tmp_path / "peers.json"
    env = offline_env(netlog) | {"HOME": str(tmp_path), "RAG_INDEX_HOME": str(tmp_path / "index-home")}
    args = ["--corpus", str(SEEDS), "--questions", str(questions), "--questions-root", str(SEEDS),
            "--json", str(out)]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "rag.bench_peers", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert not netlog.exists(), netlog.read_text()[:3000]
    peers = json.loads(out.read_text())["peers"]
    assert list(peers) == ["ours", "haystack", "haystack_bm25", "txtai", "txtai_hybrid"]
    for name, row in peers.items():
        assert set(KEYS) <= set(row), name
        assert row["passages"] == peers["ours"]["passages"] > 0, name
        assert row["questions"] == 10 and row["p50_ms"] > 0, name
        assert 0.0 <= row["hit_at_1"] <= row["hit_at_3"] <= row["hit_at_5"] <= 1.0, name
        if name != "ours":
            assert row["vs_ours"]["p50"] == pytest.approx(row["p50_ms"] / peers["ours"]["p50_ms"], abs=0.01)
    assert "IDMap,Flat (exact)" in peers["txtai"]["setup"]
    assert "InMemoryEmbeddingRetriever" in peers["haystack"]["setup"]
    assert "| txtai_hybrid |" in run.stdout
