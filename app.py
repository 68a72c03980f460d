"""Streamlit chat over a folder of news articles (thin: all logic lives in `rag`).

Run with `make app`, or `RAG_CORPUS=path/to/articles streamlit run app.py`.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import streamlit as st

from rag import QAPipeline, RagError

CORPUS = Path(os.environ.get("RAG_CORPUS", "seeds"))
TOP_K = 5


@st.cache_resource(show_spinner="Loading the model and the index...")
def load_pipeline(corpus: str) -> QAPipeline:
    """One pipeline per corpus, shared by every browser session."""
    return QAPipeline.from_corpus(corpus)


def show_hits(hits: list[dict]) -> None:  # type: ignore[type-arg]
    for hit in hits:
        st.markdown(
            f"**{hit['rank']}. {html.escape(hit['title'])}** "
            f"<small>({html.escape(hit['doc_id'])}, characters {hit['start']}-{hit['end']}, "
            f"score {hit['score']:.2f})</small>",
            unsafe_allow_html=True,
        )
        st.text(hit["text"])


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
            show_hits(turn["hits"])

if question := st.chat_input("Ask a question about the articles"):
    history.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        try:
            hits = [
                {
                    "rank": h.rank,
                    "score": h.score,
                    "title": h.title,
                    "doc_id": h.passage.doc_id,
                    "start": h.passage.start,
                    "end": h.passage.end,
                    "text": h.passage.text,
                }
                for h in qa.retrieve(question, k=TOP_K)
            ]
        except RagError as exc:
            st.warning(str(exc))
            history.pop()
        else:
            show_hits(hits)
            history.append({"role": "assistant", "hits": hits})
