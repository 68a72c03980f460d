from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


@pytest.fixture
def app(seed_qa, monkeypatch: pytest.MonkeyPatch) -> AppTest:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAG_INDEX_HOME", str(seed_qa.index.index_dir.parent))
    monkeypatch.setattr("rag.QAPipeline.from_corpus", classmethod(lambda cls, corpus, **kw: seed_qa))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    return at.run()


@pytest.mark.slow
def test_the_app_answers_with_the_span_and_its_citation(app: AppTest) -> None:
    assert not app.exception
    app.chat_input[0].set_value("Who is Jibril al-Mouhajer?").run()
    assert not app.exception
    rendered = " ".join(m.value for m in app.markdown)
    assert "Oumar Diaby" in rendered and "son" in rendered
    assert "<mark>Oumar Diaby" in rendered


@pytest.mark.slow
def test_bad_and_unanswerable_questions(app: AppTest) -> None:
    app.chat_input[0].set_value("   ???  ").run()
    assert not app.exception and "no words" in app.warning[0].value
    app.chat_input[0].set_value("What is the name of the Harim resident's dog?").run()
    assert not app.exception
