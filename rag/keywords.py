"""Turn a free-text question into an FTS5 keyword query (stopwords out, every term quoted)."""

from __future__ import annotations

import re

# Function words and question words that carry no topic; kept short on purpose so that
# numbers, names and content words always reach the keyword index.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom whose why will with would you your yours yourself
    yourselves tell say said says according""".split()
)

_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(question: str) -> list[str]:
    """Distinct lowercase content words of `question`, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(question.lower()):
        word = word.strip("_")
        if word and word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def fts_query(question: str) -> str | None:
    """An FTS5 MATCH expression OR-ing the quoted terms; None when nothing is left to match."""
    terms = query_terms(question)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
