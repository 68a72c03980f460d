"""The defaults in code are the ones the last `rag report` measured and recommended (docs/evaluation.json)."""

from __future__ import annotations

import json

from rag.neural_reader import packaged_model
from rag.pipeline import CALIBRATED_THRESHOLDS, PipelineSettings
from tests.conftest import ROOT

REPORT = json.loads((ROOT / "docs" / "evaluation.json").read_text(encoding="utf-8"))


def test_each_reader_threshold_is_the_one_calibrated_by_the_report() -> None:
    readers = REPORT["readers"]["readers"]
    expected = {"heuristic", "neural", "hybrid"} if packaged_model() else {"heuristic"}
    assert set(readers) == expected
    for name, row in readers.items():
        assert round(CALIBRATED_THRESHOLDS[name], 3) == round(row["threshold"], 3), name


def test_the_default_reader_and_keyword_weight_are_the_recommended_ones() -> None:
    settings = PipelineSettings()
    assert settings.reader == REPORT["recommended"]["reader"] == REPORT["readers"]["best"]
    assert settings.keyword_weight == REPORT["recommended"]["keyword_weight"]
    assert REPORT["settings"]["reader"] == settings.reader  # the report measured the defaults in use
