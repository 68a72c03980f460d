"""Answer spans that open or close a bracket or a quotation they do not also close or open.

A span model's start and end are two independent guesses, so a span can begin inside an aside
("WHO), a UN agency") or stop inside one ("American Sign Language (ASL"). Such an answer reads as
broken and holds words that are not the answer. `balance` narrows it to whole text:

- a bracket the span closes without opening ends an aside begun before it: the span starts after
  it ("a UN agency"); one that the span opens without closing begins an aside that the span does not
  finish: the span stops before it ("American Sign Language"). Where that would leave no word,
  the bracket alone is left out ("(ASL" becomes "ASL").
- quotation marks hold speech, often the answer itself, so only an unmatched one at the span's
  edge is left out ("“2,000" becomes "2,000"); one inside stays. A straight quote (") does not
  say whether it opens or closes: only an odd one out at the span's edge is left out.

    >>> text = "the World Health Organization (WHO), a UN agency based in Geneva"
    >>> start = text.index("WHO)")
    >>> text[slice(*balance(text, start, text.index(" based")))]
    'a UN agency'

Offsets only ever narrow, so the answer stays a verbatim span of its passage; a span that
would narrow to nothing is returned as it was.
"""

from __future__ import annotations

_BRACKETS = {")": "(", "]": "[", "}": "{"}
_QUOTES = {"”": "“", "»": "«"}
_OPENERS = frozenset(_BRACKETS.values()) | frozenset(_QUOTES.values())
_CLOSERS = {**_BRACKETS, **_QUOTES}
_EDGE = " \t\n,;:"  # left at an edge that a cut exposes


def balance(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) narrowed until every bracket in it is matched (see the module docstring)."""
    s, e = start, end
    while s < e:
        closers, openers = _unmatched(text, s, e)
        brackets = [i for i in closers if text[i] in _BRACKETS]
        opened = [i for i in openers if text[i] not in _QUOTES.values()]
        edge = [i for i in (*closers, *openers) if i in (s, e - 1)]
        if brackets:  # start after the aside's end, unless no word follows it: then stop before it
            after = any(c.isalnum() for c in text[brackets[-1] + 1 : e])
            s, e = (brackets[-1] + 1, e) if after else (s, brackets[-1])
        elif opened:  # stop before the aside's start, unless no word precedes it: then start after it
            before = any(c.isalnum() for c in text[s : opened[0]])
            s, e = (s, opened[0]) if before else (opened[0] + 1, e)
        elif edge:
            s, e = (s + 1, e) if edge[0] == s else (s, e - 1)
        elif text.count('"', s, e) % 2 and '"' in (text[s], text[e - 1]):
            s, e = (s + 1, e) if text[s] == '"' else (s, e - 1)
        else:
            break
        while s < e and text[s] in _EDGE:
            s += 1
        while e > s and text[e - 1] in _EDGE:
            e -= 1
    return (s, e) if s < e else (start, end)


def _unmatched(text: str, start: int, end: int) -> tuple[list[int], list[int]]:
    """Where text[start:end] closes what it did not open, and opens what it does not close."""
    closers: list[int] = []
    stack: list[int] = []
    for i in range(start, end):
        c = text[i]
        if c in _OPENERS:
            stack.append(i)
        elif c in _CLOSERS:
            if stack and text[stack[-1]] == _CLOSERS[c]:
                stack.pop()
            else:
                closers.append(i)
    return closers, stack
