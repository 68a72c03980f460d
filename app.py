"""Streamlit chat over a folder of news articles (thin: all logic lives in `rag`).

Run with `make app`, or `RAG_CORPUS=path/to/articles streamlit run app.py`.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import streamlit as st

from rag import QAPipeline, RagError
from rag.answer import NOT_FOUND_MESSAGE, answer_json

CORPUS = Path(os.environ.get("RAG_CORPUS", "seeds"))


@st.cache_resource(show_spinner="Loading the model and the index...")
def load_pipeline(corpus: str) -> QAPipeline:
    """One pipeline per corpus, shared by every browser session."""
    return QAPipeline.from_corpus(corpus)


def highlighted(text: str, start: int | None, end: int | None) -> str:
    """`text` escaped for HTML, with [start:end) wrapped in <mark> (offsets, not string search)."""
    if start is None or end is None:
        return html.escape(text)
    return (
        html.escape(text[:start])
        + "<mark>"
        + html.escape(text[start:end])
        + "</mark>"
        + html.escape(text[end:])
    )


def show_answer(data: dict[str, Any]) -> None:
    if data["answer"] is None:
        st.markdown(f"**{NOT_FOUND_MESSAGE}** Closest passages:")
    else:
        st.markdown(f"**{html.escape(data['answer'])}**", unsafe_allow_html=True)
        st.caption(f"confidence {data['score']:.0%}")
    for citation in data["citations"]:
        start, end = citation["answer_start"], citation["answer_end"]
        if start is not None and end is not None:
            start, end = start - citation["passage_start"], end - citation["passage_start"]
        st.markdown(
            f"<small>{html.escape(citation['title'])} · {html.escape(citation['doc_id'])} · "
            f"characters {citation['passage_start']}-{citation['passage_end']}</small><br>"
            + highlighted(citation["passage_text"], start, end).replace("\n", "<br>"),
            unsafe_allow_html=True,
        )


st.set_page_config(page_title="News QA", page_icon="📰")
st.title("Ask the articles")
try:
    qa = load_pipeline(str(CORPUS))
except RagError as exc:
    st.error(f"Cannot load the corpus '{CORPUS}': {exc}")
    st.stop()

articles, passages = qa.index.store.count()
st.caption(f"Corpus: {CORPUS} ({articles} articles, {passages} passages)")

history = st.session_state.setdefault("history", [])
for turn in history:
    with st.chat_message(turn["role"]):
        if turn["role"] == "user":
            st.text(turn["content"])
        else:
            show_answer(turn["answer"])

if question := st.chat_input("Ask a question about the articles"):
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        try:
            answer = answer_json(qa.ask(question))
        except RagError as exc:
            st.warning(str(exc))
        else:
            show_answer(answer)
            history.append({"role": "user", "content": question})
            history.append({"role": "assistant", "answer": answer})
