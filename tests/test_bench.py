from __future__ import annotations

import json
from pathlib import Path

from rag.bench import write_benchmarks

INDEX = {"corpus": "bbc/business", "articles": 503, "passages": 1465, "pipeline_s": 100.0,
         "raw_encode_s": 99.0, "pipeline_passages_per_s": 14.65, "raw_encode_passages_per_s": 14.8,
         "ratio": 0.99}  # fmt: skip


def _query(total: float) -> dict[str, object]:
    stage = {"p50_ms": total / 2, "p95_ms": total}
    return {"corpus": "seeds", "questions": 91, "warmup": 5, "retrieve": stage, "read": stage,
            "total": {"p50_ms": total, "p95_ms": total * 1.5}}  # fmt: skip


def test_benchmarks_are_written_per_reader_from_the_measurements(tmp_path: Path) -> None:
    write_benchmarks(INDEX, {"heuristic": _query(70.0), "hybrid": _query(180.0)}, tmp_path)
    saved = json.loads((tmp_path / "benchmarks.json").read_text())
    assert set(saved["query"]) == {"heuristic", "hybrid"} and saved["index"]["ratio"] == 0.99
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| heuristic | 35.0 ms | 35.0 ms | 70.0 ms | 105.0 ms |" in markdown
    assert "| hybrid |" in markdown and "**0.990**" in markdown
