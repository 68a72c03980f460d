from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rag.render import article_html, confidence, escape, highlighted

PAYLOAD = 'Intro <script>alert(1)</script> and <img src=x onerror="alert(2)"> end'


def test_article_text_is_escaped_and_only_our_tags_remain() -> None:
    out = article_html(PAYLOAD, (0, len(PAYLOAD)), (6, 14))
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in out
    assert out.count("<mark>") == 1 and "<mark>&lt;script&gt;</mark>" in out


def test_highlight_uses_offsets_not_the_first_occurrence() -> None:
    text = "Paris won. Later, Paris lost."
    second = text.index("Paris", 5)
    out = highlighted(text, second, second + 5)
    assert out == "Paris won. Later, <mark>Paris</mark> lost."


def test_nested_spans_close_inner_first() -> None:
    out = article_html("abcdef", (0, 6), (2, 6))
    assert out.endswith("<mark>cdef</mark></span>")
    out = article_html("abcdef", (0, 6), (0, 6))
    assert out.startswith('<span style="') and out.endswith("<mark>abcdef</mark></span>")


def test_no_offsets_no_mark_and_newlines_become_breaks() -> None:
    assert highlighted("a\nb", None, None) == "a<br>b"
    assert escape("<b>") == "&lt;b&gt;"


@given(st.text(max_size=60), st.integers(0, 70), st.integers(0, 70))
def test_marked_text_round_trips_to_the_input(text: str, a: int, b: int) -> None:
    import html

    start, end = min(a, b), max(a, b)
    out = highlighted(text, start, end).replace("<mark>", "").replace("</mark>", "")
    assert html.unescape(out.replace("<br>", "\n")) == text


def test_confidence_words() -> None:
    assert confidence(0.1, 0.3) == "not confident enough to answer"
    assert confidence(0.95, 0.3) == "high confidence"
    assert confidence(0.5, 0.3) == "medium confidence"
    assert confidence(0.31, 0.3).startswith("low confidence")
