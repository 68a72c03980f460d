"""The Streamlit app through streamlit.testing.v1.AppTest (no browser; tests/test_browser.py has one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

PAYLOAD = (
    "Harbour <script>alert('x')</script> news\n\n"
    'The harbour master <img src=x onerror="alert(1)"> Ingrid Solberg reopened the port of Tromso '
    "on Monday after the storm.\n"
)


def _app(monkeypatch: pytest.MonkeyPatch, qa, corpus: Path) -> AppTest:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAG_CORPUS", str(corpus))
    monkeypatch.setattr("rag.QAPipeline.from_corpus", classmethod(lambda cls, corpus, **kw: qa))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    return at.run()


@pytest.fixture
def app(seed_qa, monkeypatch: pytest.MonkeyPatch) -> AppTest:  # type: ignore[no-untyped-def]
    return _app(monkeypatch, seed_qa, ROOT / "seeds")


def _rendered(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)


@pytest.mark.slow
def test_the_app_answers_with_the_span_and_its_citation(app: AppTest) -> None:
    from rag.pipeline import READERS, PipelineSettings

    assert not app.exception
    reader = app.selectbox(key="reader")
    assert reader.value == PipelineSettings().reader and list(reader.options) == list(READERS)
    app.chat_input[0].set_value("Who is Jibril al-Mouhajer?").run()
    assert not app.exception
    rendered = _rendered(app)
    assert "<strong>Oumar Diaby" in rendered and "son" in rendered
    assert "<mark>Oumar Diaby" in rendered  # highlighted in the sentence and the passage
    assert "characters" in rendered and "confidence" in rendered
    assert any(e.label.startswith("Read the article") for e in app.expander)


@pytest.mark.slow
def test_a_follow_up_is_rewritten_shown_and_answered(app: AppTest) -> None:
    app.chat_input[0].set_value("Who leads the French jihadists?").run()
    app.chat_input[0].set_value("When was he arrested by HTS?").run()
    assert not app.exception
    captions = [c.value for c in app.caption]
    assert any("Interpreted as: When was Oumar Diaby arrested by HTS?" in c for c in captions), captions
    assert "<strong>August 2020</strong>" in _rendered(app)
    # The first answer survives the second turn, with its highlights.
    assert sum("<strong>" in m.value for m in app.markdown) == 2
    # The user can edit the interpretation: the edited question is asked as typed.
    app.text_input(key="edit-text-3").set_value("How old is Jibril al-Mouhajer?")
    app.button(key="edit-ask-3").click().run()  # the form's "Ask this instead"
    assert not app.exception
    users = [m for m in app.chat_message if m.name == "user"]
    assert len(users) == 3


@pytest.mark.slow
def test_bad_and_unanswerable_questions(app: AppTest) -> None:
    app.chat_input[0].set_value("   ???  ").run()
    assert not app.exception and "no words" in app.warning[0].value
    app.chat_input[0].set_value("How much did the camp cost to build?").run()
    assert not app.exception
    assert "The articles don't say." in _rendered(app)
    # Candidates below the threshold are shown as spans to check, not as answers.
    assert "Unconfirmed, below the threshold" in _rendered(app)
    assert "Other candidates" not in _rendered(app)
    assert "no words" in app.warning[0].value  # the earlier warning is still in the history


@pytest.mark.slow
def test_the_evaluation_tab_runs_the_fixed_set(app: AppTest) -> None:
    assert [t.label for t in app.tabs] == ["Chat", "Evaluation"]
    app.button(key="run-eval").click().run()
    assert not app.exception
    labels = [m.label for m in app.metric]
    assert "F1" in labels and "Hit@3" in labels
    assert "F1 95% confidence interval" in app.caption[0].value
    assert len(app.dataframe) == 1 and len(app.dataframe[0].value) >= 90


@pytest.mark.slow
def test_an_article_with_html_payloads_renders_as_text(
    real_encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from rag.pipeline import QAPipeline

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "payload.txt").write_text(PAYLOAD)
    qa = QAPipeline.from_corpus(corpus, index_dir=tmp_path / "index", encoder=real_encoder)
    at = _app(monkeypatch, qa, corpus)
    at.chat_input[0].set_value("Who reopened the port of Tromso?").run()
    assert not at.exception
    rendered = _rendered(at)
    assert "Ingrid Solberg" in rendered
    assert "<script>" not in rendered and "<img" not in rendered
    assert "&lt;script&gt;" in rendered and "&lt;img src=x onerror=" in rendered
