"""HTML for the chat: article text is untrusted, so everything is escaped before it is marked up.

Highlights are placed by character offsets from the Answer, never by searching for the string
(the same words can occur earlier in the passage).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

PASSAGE_STYLE = "background-color: rgba(255, 229, 100, 0.25); border-radius: 3px"


def escape(text: str) -> str:
    """HTML-escaped text with newlines as <br> (safe inside st.markdown(unsafe_allow_html=True))."""
    return html.escape(text).replace("\n", "<br>")


def highlighted(text: str, start: int | None, end: int | None) -> str:
    """`text` escaped, with text[start:end] wrapped in <mark>; no mark when the offsets are None."""
    return marked(text, [(start, end, "<mark>", "</mark>")] if start is not None and end is not None else [])


def marked(text: str, spans: Sequence[tuple[int | None, int | None, str, str]]) -> str:
    """`text` escaped, each (start, end, open, close) wrapped in its tags.

    Spans must nest or be disjoint (a passage around an answer is fine); offsets outside the
    text are clipped. The tags are trusted constants from this module, never article text.
    """
    events: list[tuple[int, int, int, str]] = []
    for i, (start, end, open_tag, close_tag) in enumerate(spans):
        if start is None or end is None:
            continue
        start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
        if end <= start:
            continue
        # At one offset: closes first (inner before outer), then opens (outer before inner).
        events.append((start, 1, i, open_tag))
        events.append((end, 0, -i, close_tag))
    events.sort(key=lambda e: e[:3])
    out: list[str] = []
    at = 0
    for offset, _, _, tag in events:
        out.append(escape(text[at:offset]))
        out.append(tag)
        at = offset
    out.append(escape(text[at:]))
    return "".join(out)


def confidence(score: float, threshold: float) -> str:
    """A plain-language reading of the reader's score (calibrated on the fixed question set)."""
    if score < threshold:
        return "not confident enough to answer"
    margin = (score - threshold) / max(1e-9, 1.0 - threshold)
    if margin >= 0.5:
        return "high confidence"
    if margin >= 0.2:
        return "medium confidence"
    return "low confidence: check the source"


def article_html(
    text: str,
    passage: tuple[int, int],
    answer: tuple[int | None, int | None] = (None, None),
) -> str:
    """The whole article, the cited passage shaded and the answer span marked."""
    spans = [
        (passage[0], passage[1], f'<span style="{PASSAGE_STYLE}">', "</span>"),
        (answer[0], answer[1], "<mark>", "</mark>"),
    ]
    return marked(text, spans)
