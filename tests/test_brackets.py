from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.brackets import balance

# The spans are answers the shipped span model gave before `balance` (on the fixed set and SQuAD dev).
TEXT = (
    "Rami Abdel Rahman, director of the Syrian Observatory for Human Rights (OSDH), an NGO based in the "
    "United Kingdom. Christen said a “large hundred” Frenchmen of the “1,500 who left” remain. It uses "
    'American Sign Language (ASL) and reaches 104 °F (40 °C). He called it a "dumb name" at the time.'
)


@pytest.mark.parametrize(
    ("span", "balanced"),
    [
        ("OSDH), an NGO", "an NGO"),  # begins inside an aside: starts after it
        ("American Sign Language (ASL", "American Sign Language"),  # stops inside one: stops before it
        ("104 °F (40 °C", "104 °F"),
        ("(ASL", "ASL"),  # the bracket at the edge is left out
        ("ASL)", "ASL"),
        ("“1,500", "1,500"),  # a quotation mark at the edge is left out...
        ("large hundred” Frenchmen of the “1,500", "large hundred” Frenchmen of the “1,500"),  # ...not inside
        ('dumb name"', "dumb name"),  # an odd straight quote at the edge
        ("Syrian Observatory for Human Rights (OSDH)", "Syrian Observatory for Human Rights (OSDH)"),
        ('a "dumb name"', 'a "dumb name"'),
        ("Rami Abdel Rahman", "Rami Abdel Rahman"),
        ("(", "("),  # nothing would be left: kept as it was
    ],
)
def test_balance_narrows_a_span_to_whole_asides(span: str, balanced: str) -> None:
    start = TEXT.index(span)
    assert TEXT[slice(*balance(TEXT, start, start + len(span)))] == balanced


@given(st.text(alphabet='ab ,()[]“”"', max_size=30), st.data())
def test_balance_only_narrows_and_leaves_no_bracket_unmatched(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    s, e = balance(text, start, end)
    assert start <= s <= e <= end
    if not any(c.isalnum() for c in text[s:e]):
        return  # narrowing would leave no word: kept as it was
    stack: list[str] = []
    for c in text[s:e]:
        if c in "([":
            stack.append(c)
        elif c in ")]":
            assert stack and stack.pop() == "(["[")]".index(c)], text[s:e]
    assert not stack, text[s:e]
    assert text[s] != "”" and text[e - 1] != "“", text[s:e]  # a quotation never closes first or opens last
