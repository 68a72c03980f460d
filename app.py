"""Streamlit chat over a folder of news articles (thin: the logic lives in `rag`).

Run with `make app`, or `RAG_CORPUS=path/to/articles streamlit run app.py`. Every browser
session shares one loaded corpus (models and index); settings and history are per session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from rag import QAPipeline, RagError
from rag.answer import NOT_FOUND_MESSAGE, answer_json
from rag.confidence import LEVEL, f1_interval
from rag.eval_runner import ask_one
from rag.evaluation import is_failure, load_questions, summarize, threshold_sweep
from rag.followup import Turn
from rag.neural_reader import packaged_model
from rag.pipeline import CALIBRATED_THRESHOLDS, READERS
from rag.render import article_html, confidence, escape, highlighted
from rag.service import SharedCorpus
from rag.uploads import MAX_UPLOAD_BYTES, UploadError, save_upload

CORPUS = Path(os.environ.get("RAG_CORPUS", "seeds"))
QUESTIONS = Path(os.environ.get("RAG_QUESTIONS", str(CORPUS / "questions.jsonl")))
HISTORY_TURNS = 3  # previous turns used to resolve a follow-up question


@st.cache_resource(show_spinner="Loading the models and the index...")
def shared_corpus(corpus: str) -> SharedCorpus:
    """One corpus per folder, shared by every browser session (the object is thread-safe)."""
    shared = SharedCorpus(corpus)
    shared.warm()  # so the first answer does not wait for the readers to load
    return shared


def html(markup: str) -> None:
    """Render markup built only by rag.render, which escapes all article and user text."""
    st.markdown(markup, unsafe_allow_html=True)


# ---- sidebar: the corpus and the settings -------------------------------------------------


def corpus_sidebar(shared: SharedCorpus) -> None:
    info = shared.info()
    st.sidebar.header("Corpus")
    age = info.updated_at.strftime("%Y-%m-%d %H:%M UTC") if info.updated_at else "unknown"
    st.sidebar.markdown(
        f"`{escape(str(info.corpus))}`: **{info.articles}** articles, **{info.passages}** passages  \n"
        f"index updated {age}"
    )
    if info.skipped or info.duplicates:
        with st.sidebar.expander(f"{len(info.skipped)} skipped, {info.duplicates} duplicates"):
            for doc_id, reason in info.skipped:
                st.text(f"{doc_id}: {reason}")
    with st.sidebar.form("upload", clear_on_submit=True):
        files = st.file_uploader(
            f"Add articles (.txt, .md, .html; up to {MAX_UPLOAD_BYTES // 2**20} MB each)",
            type=["txt", "md", "html", "htm"],
            accept_multiple_files=True,
        )
        submitted = st.form_submit_button("Add to the index")
    if submitted and files:
        saved = 0
        for upload in files:
            try:
                save_upload(shared.corpus, upload.name, upload.getvalue())
                saved += 1
            except UploadError as exc:
                st.sidebar.error(str(exc))
        if saved:
            reindex(shared, rebuild=False, label=f"Adding {saved} article(s)")
    if st.sidebar.button("Rebuild the index", key="rebuild"):
        reindex(shared, rebuild=True, label="Rebuilding the index")


def reindex(shared: SharedCorpus, *, rebuild: bool, label: str) -> None:
    with st.sidebar.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="reading the articles")

        def on_progress(done: int, total: int) -> None:
            bar.progress(done / max(1, total), text=f"embedding passages: {done}/{total}")

        try:
            report = shared.refresh(rebuild=rebuild, on_progress=on_progress)
        except RagError as exc:
            status.update(label=f"Indexing failed: {exc}", state="error")
            return
        bar.progress(1.0, text="done")
        status.update(
            label=f"Indexed: {len(report.added)} added, {len(report.changed)} changed, "
            f"{len(report.removed)} removed ({report.embedded_passages} passages embedded)",
            state="complete",
        )


def settings_sidebar(qa: QAPipeline) -> QAPipeline:
    """This session's reading settings, applied as a view of the shared pipeline."""
    st.sidebar.header("Settings")
    readers = list(READERS) if packaged_model() or qa.settings.reader_model else ["heuristic"]
    default = readers.index(qa.settings.reader) if qa.settings.reader in readers else 0
    reader = st.sidebar.selectbox("Reader", readers, index=default, key="reader")
    read_k = st.sidebar.slider("Passages to read", 1, 10, qa.settings.read_k, key="read_k")
    calibrated = CALIBRATED_THRESHOLDS[reader]
    threshold = st.sidebar.slider(
        "Abstain below this score",
        0.0,
        1.0,
        calibrated,
        0.001,  # the calibrated thresholds have three decimals; shown as such, like the scores
        format="%.3f",
        key=f"threshold-{reader}",  # each reader starts at its own calibrated threshold
        help="Chosen from the fixed question set (docs/EVALUATION.md); raise it for fewer, surer answers.",
    )
    changes: dict[str, Any] = {"read_k": read_k, "abstain_threshold": threshold, "reader": reader}
    if reader == "neural" and not qa.settings.reader_model:
        changes["reader_model"] = str(packaged_model())
    return qa.with_settings(**changes)


# ---- chat -------------------------------------------------------------------------------


def show_answer(data: dict[str, Any], key: str) -> None:
    """One assistant message from its stored JSON (so it survives later turns unchanged)."""
    if data.get("interpreted_as"):
        st.caption(f"Interpreted as: {data['interpreted_as']}")
        with st.expander("Not what you meant? Edit the question"):
            with st.form(f"edit-{key}"):
                edited = st.text_input("Question", value=data["interpreted_as"], key=f"edit-text-{key}")
                if st.form_submit_button("Ask this instead", key=f"edit-ask-{key}"):
                    st.session_state["queued"] = edited
    threshold = data.get("threshold", 0.0)
    if data["answer"] is None:
        st.markdown(f"**{NOT_FOUND_MESSAGE}** The closest passages:")
    else:
        html(f"<strong>{escape(data['answer'])}</strong>")
        st.caption(f"{confidence(data['score'], threshold)} (score {data['score']:.3f})")
        if data["sentence"] and data["sentence_start"] is not None:
            start = data["answer_start"] - data["sentence_start"]
            end = data["answer_end"] - data["sentence_start"]
            html(f"<blockquote>{highlighted(data['sentence'], start, end)}</blockquote>")
    for n, citation in enumerate(data["citations"], 1):
        show_citation(citation, f"{key}-{n}", n)
    others = [a for a in data["alternatives"] if a["answer"] and a["answer"] != data["answer"]]
    if others:
        listed = "; ".join(f"{escape(a['answer'])} ({a['score']:.3f})" for a in others)
        # Below the threshold they are shown as what they are: spans to check, not answers.
        label = "Other candidates" if data["answer"] else f"Unconfirmed, below the threshold {threshold:.3f}"
        st.caption(f"{label}: {listed}", unsafe_allow_html=True)  # escaped, as html() markup is


def show_citation(citation: dict[str, Any], key: str, n: int) -> None:
    p_start, p_end = citation["passage_start"], citation["passage_end"]
    a_start, a_end = citation["answer_start"], citation["answer_end"]
    found = a_start is not None and a_end is not None
    local = (a_start - p_start, a_end - p_start) if found else (None, None)
    html(
        f"<small>[{n}] <b>{escape(citation['title'])}</b> · {escape(citation['doc_id'])} · "
        f"characters {p_start}–{p_end}</small><br>{highlighted(citation['passage_text'], *local)}"
    )
    with st.expander(f"Read the article [{n}]"):
        show_article(citation, (a_start, a_end))


def show_article(citation: dict[str, Any], answer: tuple[int | None, int | None]) -> None:
    qa = shared_corpus(str(CORPUS)).pipeline
    article = qa.index.store.article(citation["doc_id"])
    p_start, p_end = citation["passage_start"], citation["passage_end"]
    if article is None:
        st.warning(f"'{citation['doc_id']}' is no longer in the index.")
        return
    if article.text[p_start:p_end] != citation["passage_text"]:
        st.warning("The article has changed since this answer; the highlight may not match.")
    meta = [part for part in (article.source, article.author, article.published) if part]
    html(f"<h4>{escape(article.title)}</h4><small>{escape(' · '.join(meta + [article.doc_id]))}</small>")
    html(article_html(article.text, (p_start, p_end), answer))


def history_turns(history: list[dict[str, Any]]) -> list[Turn]:
    turns = [
        Turn(m["answer"]["question"], m["answer"]["answer"], m["answer"]["sentence"])
        for m in history
        if m["role"] == "assistant" and "answer" in m
    ]
    return turns[-HISTORY_TURNS:]


def ask(qa: QAPipeline, question: str, history: list[dict[str, Any]], *, follow_up: bool) -> None:
    """Answer one question, show it, and add both messages to the session history."""
    with st.chat_message("user"):
        st.text(question)
    history.append({"role": "user", "content": question})
    index = len(history)  # this answer's place in the history: its widget keys stay the same later
    with st.chat_message("assistant"):
        try:
            with st.spinner("Reading the articles..."):
                answer = qa.ask(question, history=history_turns(history) if follow_up else ())
        except RagError as exc:
            st.warning(str(exc))
            history.append({"role": "assistant", "error": str(exc)})
            return
        data = answer_json(answer) | {"threshold": qa.settings.threshold}
        show_answer(data, str(index))
        history.append({"role": "assistant", "answer": data})


def chat_tab(qa: QAPipeline) -> None:
    history: list[dict[str, Any]] = st.session_state.setdefault("history", [])
    messages = st.container()  # above the input box, where new messages go too
    with messages:
        for i, message in enumerate(history):
            with st.chat_message(message["role"]):
                if message["role"] == "user":
                    st.text(message["content"])
                elif "error" in message:
                    st.warning(message["error"])
                else:
                    show_answer(message["answer"], str(i))
    queued = st.session_state.pop("queued", None)
    question = st.chat_input("Ask a question about the articles")
    with messages:
        if queued:
            ask(qa, queued, history, follow_up=False)
        elif question:
            ask(qa, question, history, follow_up=True)


# ---- evaluation -------------------------------------------------------------------------


def evaluation_tab(qa: QAPipeline) -> None:
    st.markdown(
        f"The fixed question set `{escape(str(QUESTIONS))}`, asked end to end with this session's "
        "settings. `rag report` writes the full evaluation to docs/EVALUATION.md."
    )
    if st.button("Run the fixed question set", key="run-eval"):
        try:
            load = load_questions(QUESTIONS)
        except RagError as exc:
            st.error(str(exc))
            return
        bar = st.progress(0.0, text="asking")
        records = []
        for i, question in enumerate(load.questions, 1):
            records.append(ask_one(qa, question))
            bar.progress(i / len(load.questions), text=f"asked {i}/{len(load.questions)}")
        bar.empty()
        st.session_state["evaluation"] = {
            "summary": summarize(records),
            "sweep": threshold_sweep(records),
            "threshold": qa.settings.threshold,
            "reader": qa.settings.reader,
            "problems": list(load.problems),
        }
    if result := st.session_state.get("evaluation"):
        show_evaluation(result)


def show_evaluation(result: dict[str, Any]) -> None:
    summary = result["summary"]
    for problem in result["problems"]:
        st.warning(problem)

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    no_answer = summary["no_answer"]
    cols = st.columns(5)
    cols[0].metric("F1", pct(summary["f1"]))
    cols[1].metric("Exact match", pct(summary["exact_match"]))
    cols[2].metric("Hit@3", pct(summary["hit_at"]["3"]))
    cols[3].metric("Abstained when unanswerable", f"{no_answer['correct']}/{no_answer['n']}")
    cols[4].metric("Latency p50", f"{summary['latency_ms']['p50'] or 0:.0f} ms")
    interval = f1_interval(summary["per_question"])
    spread = (
        f"; F1 {LEVEL:.0%} confidence interval {pct(interval[0])} to {pct(interval[1])} "
        "(bootstrap over the answerable questions: where another set of such questions could land)"
        if interval
        else ""
    )
    st.caption(
        f"{summary['n_questions']} questions ({summary['n_answerable']} answerable), "
        f"reader {result['reader']}, threshold {result['threshold']:.3f}{spread}"
    )
    sweep = pd.DataFrame(result["sweep"])
    if not sweep.empty:
        st.subheader("Accuracy against coverage")
        st.caption("Each point is an abstention threshold: answer only when the score is at least it.")
        st.line_chart(sweep, x="coverage", y=["accuracy", "answered_f1"])
    latencies = [r["latency_ms"] for r in summary["per_question"] if r["latency_ms"] is not None]
    if latencies:
        st.subheader("Latency per question")
        counts, edges = np.histogram(latencies, bins=min(20, len(latencies)))
        bins = pd.Index(np.round(edges[:-1]).astype(int), name="milliseconds (bin start)")
        st.bar_chart(pd.DataFrame({"questions": counts}, index=bins))
    st.subheader("Per question, failures first")
    rows = sorted(summary["per_question"], key=lambda r: (not is_failure(r), r["f1"], str(r["id"])))
    table = pd.DataFrame(
        {
            "failed": [is_failure(r) for r in rows],
            "id": [str(r["id"]) for r in rows],
            "question": [r["question"] for r in rows],
            "predicted": [r["prediction"] or "(abstained)" for r in rows],
            "gold": [" | ".join(r["answers"]) or "(unanswerable)" for r in rows],
            "f1": [round(float(r["f1"]), 2) for r in rows],
            "score": [None if r["score"] is None else round(float(r["score"]), 3) for r in rows],
            "rank": [r["rank"] for r in rows],
            "ms": [r["latency_ms"] for r in rows],
        }
    )
    st.dataframe(table, hide_index=True, use_container_width=True)


# ---- page -------------------------------------------------------------------------------

st.set_page_config(page_title="News QA", page_icon="📰", layout="wide")
st.title("Ask the articles")
try:
    shared = shared_corpus(str(CORPUS))
except RagError as exc:
    st.error(f"Cannot load the corpus '{CORPUS}': {exc}")
    st.stop()
corpus_sidebar(shared)
session_qa = settings_sidebar(shared.pipeline)
chat, evaluation = st.tabs(["Chat", "Evaluation"])
with chat:
    chat_tab(session_qa)
with evaluation:
    evaluation_tab(session_qa)
