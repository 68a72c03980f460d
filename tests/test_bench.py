from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag.bench_markdown import render, write_benchmarks
from rag.bench_process import run_child
from rag.errors import RagError
from tests.conftest import ROOT


def _index(ratio: float) -> dict[str, Any]:
    return {
        "articles": 50,
        "passages": 150,
        "pipeline_passages_per_s": 14.0 * ratio,
        "raw_encode_passages_per_s": 14.0,
        "ratio": ratio,
        "with_reading": {"pipeline_s": 30.0, "pipeline_passages_per_s": 5.0, "ratio": ratio / 2},
    }


def _stage(total: float) -> dict[str, Any]:
    half = {"p50_ms": total / 2, "p95_ms": total}
    return {
        "questions": 25,
        "retrieve": half,
        "read": half,
        "total": {"p50_ms": total, "p95_ms": total * 1.5},
    }


def _peer(build_s: float, p50: float, hit: float) -> dict[str, Any]:
    return {
        "setup": "setup line",
        "version": "1.0",
        "passages": 150,
        "build_s": build_s,
        "p50_ms": p50,
        "p95_ms": p50 * 2,
        "hit_at_3": hit,
        "hit_at_5": hit,
    }


def _result() -> dict[str, Any]:
    encoder: dict[str, Any] = {
        "encoders": ["torch", "onnx", "onnx-int8"],
        "passages": 150,
        "tokens": 24000,
        "mean_tokens_per_passage": 160.0,
        "flop_per_token": 23_000_000,
        "fp32_ceiling_tokens_per_s": 8000,
        "measured_matmul_gflop_per_s": 150.0,
        "onnx_over_torch": 1.234,
        "query_p50_torch_over_onnx": 2.5,
        "onnx_int8_over_torch": 0.777,
        "query_p50_torch_over_onnx_int8": 2.25,
        "cosine": {"onnx": {"min": 1.0, "mean": 1.0}, "onnx-int8": {"min": 0.9989, "mean": 0.9994}},
    }
    for name, tps, batch in (("torch", 2500.0, 64), ("onnx", 3085.0, 8), ("onnx-int8", 1942.5, 64)):
        encoder[name] = {
            "batch_size": batch,
            "passages_per_s": tps / 160,
            "tokens_per_s": tps,
            "fraction_of_fp32_ceiling": tps / 8000,
            "query_p50_ms": 10.0,
            "query_p95_ms": 12.0,
        }
    ours, haystack, txtai = _peer(40.0, 20.0, 0.95), _peer(36.0, 110.0, 0.94), _peer(35.0, 18.0, 0.94)
    haystack["vs_ours"] = {"build": 0.9, "p50": 5.5}
    txtai["vs_ours"] = {"build": 0.875, "p50": 0.9}
    scale = {
        "passages": 1_000_000,
        "index": "IVF4000_HNSW32,SQfp16,nprobe=48",
        "build_s": 361.0,
        "index_build_s": 101.0,
        "store_build_s": 260.0,
        "p50_ms": 6.5,
        "p95_ms": 14.3,
        "recall_at_10": 0.972,
        "memory_mb": 762.0,
        "store_mb": 3214.0,
        "flat_p50_ms": 151.0,
        "bm25_p50_ms": 973.0,
        "bm25_p95_ms": 2437.0,
        "copy_cosine_p10_p50_p90": [0.948, 0.983, 0.993],
    }
    return {
        "generated_at": "2026-12-01T00:00:00+00:00",
        "machine": "x86_64, 2 CPUs",
        "mode": "full",
        "seconds": 600.0,
        "corpus": {"bbc": "bbc", "used": "all articles"},
        "index": _index(0.97) | {"seeds": _index(0.93)},
        "encoder": encoder,
        "query": {
            "corpus": "seeds",
            "reader": "hybrid",
            "p50_ms": 190.0,
            "p95_ms": 280.0,
            "by_reader": {"hybrid": _stage(190.0), "heuristic": _stage(45.0)},
        },
        "process": {
            "corpus": "bbc",
            "index": {"wall_s": 500.0},
            "index_peak_rss_mb": 900.0,
            "query_peak_rss_mb": 1100.0,
            "cold_start_s": 14.0,
            "cold_start_first_s": 20.0,
        },
        "peers": {"ours": ours, "haystack": haystack, "txtai": txtai},
        "scale": [scale],
    }


def test_a_report_measured_before_reader_data_still_renders() -> None:
    old = _result()
    for index in (old["index"], old["index"]["seeds"]):
        del index["with_reading"]
    markdown = render(old)
    assert "**0.970x**" in markdown and "| BBC | 50 | 150 | 13.6 | 14.0 | 0.970 |\n" in markdown
    assert "with the reader's parses" not in markdown


def test_the_report_shows_the_measured_ratios_and_tables() -> None:
    markdown = render(_result())
    assert "| index build, retrieval index / raw `SentenceTransformer.encode` | **0.970x**" in markdown
    assert "reader's parses and sentence vectors) / raw encode | **0.485x** |" in markdown
    assert "| BBC | 50 | 150 | 13.6 | 14.0 | 0.970 | 5.0 | 0.485 |" in markdown and "| seeds |" in markdown
    assert "| passage encoding throughput, ONNX fp32 (default) / torch | **1.234x**" in markdown
    assert "**0.777x, 2.25x**" in markdown  # int8 ONNX / torch
    assert "| 8 | 19.3 | 3,085 | 38.6% | 10.0 ms | 12.0 ms | 1.00000 / 1.00000 |" in markdown
    assert "| 0.99890 / 0.99940 |" in markdown
    assert "| hybrid | 95.0 ms | 95.0 ms | 190.0 ms | 285.0 ms |" in markdown
    assert (
        "| haystack / ours: build time, query p50 | **0.90x, 5.50x** (hit@5 0.940 vs ours 0.950)" in markdown
    )
    assert "**6.5 ms, 0.972, 762 MB**" in markdown and "1,000,000" in markdown
    assert "**1100 MB**" in markdown and "**14.0 s**" in markdown


def test_benchmarks_are_written_with_the_plot(tmp_path: Path) -> None:
    result = _result()
    write_benchmarks(result, tmp_path)
    assert json.loads((tmp_path / "benchmarks.json").read_text()) == result
    assert (tmp_path / "scale.svg").read_text().lstrip().startswith("<?xml")
    assert "![build time" in (tmp_path / "BENCHMARKS.md").read_text()
    first = (tmp_path / "scale.svg").read_bytes()
    write_benchmarks(result, tmp_path)  # the same numbers redraw the same file: no noise in git
    assert (tmp_path / "scale.svg").read_bytes() == first


def test_rerender_remakes_the_report_from_the_measured_json_only(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rag.cli import main

    (tmp_path / "benchmarks.json").write_text(json.dumps(_result()))
    done = CliRunner().invoke(main, ["bench", "--rerender", "--docs", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "BENCHMARKS.md").read_text() == render(_result())
    empty = tmp_path / "empty"
    empty.mkdir()
    done = CliRunner().invoke(main, ["bench", "--rerender", "--docs", str(empty)])
    assert done.exit_code == 2 and "cannot re-render: no readable" in done.output


def test_refresh_query_measures_only_the_latencies_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from click.testing import CliRunner

    import rag.bench
    import rag.bench_suite
    from rag.cli import main

    measured: list[tuple[str, str]] = []

    def fake_query(corpus: Path, questions: list[str], settings: Any = None) -> dict[str, Any]:
        measured.append((str(corpus), settings.reader if settings else "default"))
        return _stage(120.0 if settings and settings.reader == "hybrid" else 60.0)

    monkeypatch.setattr(rag.bench, "bench_query", fake_query)
    monkeypatch.setattr(rag.bench_suite, "load_span_questions", lambda *a: SimpleNamespace(questions=[]))
    (tmp_path / "benchmarks.json").write_text(json.dumps(_result()))
    bbc = tmp_path / "bbc"
    bbc.mkdir()
    done = CliRunner().invoke(main, ["bench", "--refresh-query", "--docs", str(tmp_path), "--bbc", str(bbc)])
    assert done.exit_code == 0, done.output
    after = json.loads((tmp_path / "benchmarks.json").read_text())
    assert ("seeds", "hybrid") in measured and (str(bbc), "default") in measured
    assert after["query"]["p50_ms"] == 120.0 and after["query"]["bbc"]["total"]["p50_ms"] == 60.0
    assert "measured_at" in after["query"]
    unchanged = {k: v for k, v in _result().items() if k != "query"}
    assert {k: v for k, v in after.items() if k != "query"} == unchanged
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    assert "measured again on" in markdown and "| query p50, hybrid reader on seeds | **120 ms**" in markdown
    # the seed corpus is read warm; the BBC row shows the cold cost next to the same target
    assert "| query p50, default reader on BBC (" in markdown
    assert "new to the process) | **60 ms** | < 250 ms (#5) |" in markdown
    quick = _result() | {"mode": "quick"}
    (tmp_path / "benchmarks.json").write_text(json.dumps(quick))
    done = CliRunner().invoke(main, ["bench", "--refresh-query", "--docs", str(tmp_path), "--bbc", str(bbc)])
    assert done.exit_code == 2 and "updates a full run" in done.output


def test_a_failing_child_is_reported_with_its_error() -> None:
    with pytest.raises(RagError, match="exit code 2"):
        run_child(["ask", "   ", "--corpus", "seeds"])


@pytest.mark.slow
def test_quick_bench_writes_every_part_in_one_run(tmp_path: Path) -> None:
    out, docs = tmp_path / "bench.json", tmp_path / "docs"
    command = [sys.executable, "-m", "rag", "bench", "--quick", "--json", str(out), "--docs", str(docs)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {"pipeline_passages_per_s", "raw_encode_passages_per_s", "ratio"} <= set(result["index"])
    assert result["index"]["ratio"] > 0.5
    assert 0 < result["index"]["with_reading"]["ratio"] < result["index"]["ratio"]  # it does more
    encoder = result["encoder"]
    assert encoder["onnx_over_torch"] > 0 and encoder["onnx_int8_over_torch"] > 0
    assert encoder["cosine"]["onnx"]["min"] > 0.9999 and encoder["cosine"]["onnx-int8"]["min"] > 0.99
    assert {"corpus", "p50_ms", "p95_ms"} <= set(result["query"])
    for system in ("ours", "haystack", "txtai"):
        assert {"build_s", "p50_ms", "hit_at_5"} <= set(result["peers"][system]), system
    assert [row["passages"] for row in result["scale"]] == [10_000, 100_000]
    for row in result["scale"]:
        assert {"passages", "build_s", "p50_ms", "recall_at_10", "memory_mb"} <= set(row)
        assert row["recall_at_10"] >= 0.9
    assert result["process"]["cold_start_s"] > 0 and result["process"]["query_peak_rss_mb"] > 100
    assert (docs / "BENCHMARKS.md").is_file() and (docs / "scale.svg").is_file()


def test_refresh_index_measures_only_the_index_builds_and_processes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from click.testing import CliRunner

    import rag.bench
    import rag.bench_process
    from rag.cli import main

    built: list[str] = []

    def fake_index(corpus: Path) -> dict[str, Any]:
        built.append(Path(corpus).name)
        return _index(1.1 if Path(corpus).name == "bbc" else 1.0)

    question = SimpleNamespace(question="Who won?")
    monkeypatch.setattr(rag.bench, "bench_index", fake_index)
    process = _result()["process"]
    monkeypatch.setattr(rag.bench_process, "bench_processes", lambda corpus, q: {**process, "q": q})
    questions = SimpleNamespace(questions=[question])
    monkeypatch.setattr("rag.bench_suite.load_span_questions", lambda *a: questions)
    (tmp_path / "benchmarks.json").write_text(json.dumps(_result()))
    bbc = tmp_path / "bbc"
    bbc.mkdir()
    done = CliRunner().invoke(main, ["bench", "--refresh-index", "--docs", str(tmp_path), "--bbc", str(bbc)])
    assert done.exit_code == 0, done.output
    after = json.loads((tmp_path / "benchmarks.json").read_text())
    assert built == ["bbc", "seeds"] and after["process"]["q"] == "Who won?"
    assert after["index"]["ratio"] == 1.1 and after["index"]["seeds"]["ratio"] == 1.0
    assert "measured_at" in after["index"] and "measured_at" not in after["query"]
    unchanged = {k: v for k, v in _result().items() if k not in ("index", "process")}
    assert {k: v for k, v in after.items() if k not in ("index", "process")} == unchanged
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    assert "by `rag bench --refresh-index`" in markdown and "**1.100x**" in markdown
