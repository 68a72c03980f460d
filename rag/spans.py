"""Answer-span candidates inside one parsed sentence, from entities, noun chunks and the parse.

Each candidate carries a type fit (does it look like what the question asks for?) and a
proximity (how close it sits, in the dependency tree, to the question's words in the sentence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.question import QuestionAnalysis, stem

if TYPE_CHECKING:  # spaCy is imported by whoever parses; importing it here costs a second
    from spacy.tokens import Span, Token

# Per question kind: how well each spaCy entity label fits.
_ENT_FIT: dict[str, dict[str, float]] = {
    "person": {"PERSON": 1.0, "ORG": 0.6, "NORP": 0.4},
    "org": {"ORG": 1.0, "PRODUCT": 0.8, "NORP": 0.6, "PERSON": 0.4, "FAC": 0.4, "GPE": 0.3},
    "nationality": {"NORP": 1.0, "GPE": 0.4},
    "date": {"DATE": 1.0, "TIME": 0.9},
    "place": {"GPE": 1.0, "LOC": 1.0, "FAC": 0.9, "ORG": 0.3},
    "number": {"CARDINAL": 1.0, "MONEY": 1.0, "PERCENT": 1.0, "QUANTITY": 1.0, "DATE": 0.2},
    "age": {"CARDINAL": 0.4, "DATE": 0.4},
    "name": {"PERSON": 0.6, "ORG": 0.6, "WORK_OF_ART": 0.7, "EVENT": 0.5, "PRODUCT": 0.5},
    "definition": {"ORG": 0.2, "PERSON": 0.2},
    "manner": {"NORP": 0.2},
}
_PLACE_NOUNS = frozenset(
    "country city region province town village area border camp capital district territory "
    "enclave sector outskirts state island coast north south east west northwest northeast "
    "southwest southeast".split()
)
_ORG_NOUNS = frozenset(
    "group organization organisation agency company newspaper team coalition party army ngo "
    "force forces movement network channel council ministry government court".split()
)
_NUMBER_WORDS = frozenset("dozen dozens hundred hundreds thousand thousands millions scores".split())
NAMING_VERBS = frozenset("call name dub know nickname title style".split())
CUT_WORDS = frozenset("who whom which whose that where when".split())
QUOTE_RE = re.compile(r"[“\"]([^”\"]{2,120})[”\"]")
PAREN_RE = re.compile(r"\(([^()]{2,120})\)")
QUOTES = "\"'“”‘’«»"
TYPED_KINDS = frozenset({"age", "number", "date"})  # kinds whose answer must be of the type


RawSpan = tuple[int, int, float, str]  # start, end, type fit, rule


@dataclass(frozen=True)
class SpanCandidate:
    """Token range [start, end) in the sentence's doc, with its evidence."""

    start: int
    end: int
    type_fit: float  # 0..1
    proximity: float  # 0..1
    rule: str  # "ent", "chunk", "appos", "relcl", "age", "quote", "paren", "reason", ...
    novelty: float = 1.0  # 1 - 0.7 * (share of the span's content words that the question has)


def tree_distance(a: Token, b: Token) -> int:
    """Edges on the dependency path between two tokens of one sentence."""
    if a.i == b.i:
        return 0
    up_a = [a.i] + [t.i for t in a.ancestors]
    up_b = {b.i: 0}
    for k, t in enumerate(b.ancestors, start=1):
        up_b[t.i] = k
    for k, i in enumerate(up_a):
        if i in up_b:
            return k + up_b[i]
    return len(up_a) + len(up_b)


def proximity(span: Span, anchors: Mapping[int, tuple[int, float]]) -> float:
    """0..1: closeness of `span` to the matched question terms (anchors: token -> term, weight)."""
    best: dict[int, tuple[float, float]] = {}
    doc = span.doc
    inside = range(span.start, span.end)
    near = list(span)[:8]
    for i, (term, weight) in anchors.items():
        if i in inside:
            continue
        d_tree = min(tree_distance(t, doc[i]) for t in near)
        gap = min(abs(i - inside.start), abs(i - (inside.stop - 1)))
        d = min(d_tree, 1 + gap / 3)  # a broken parse should not hide an adjacent answer
        p = 1.0 / (1.0 + 0.5 * max(d - 1.0, 0.0))
        if p > best.get(term, (0.0, 0.0))[0]:
            best[term] = (p, weight)
    if not best:
        return 0.25
    total = sum(w for _, w in best.values())
    mean = sum(p * w for p, w in best.values()) / total
    return 0.6 * max(p for p, _ in best.values()) + 0.4 * mean


def trim(sent: Span, start: int, end: int, *, entity: bool) -> tuple[int, int]:
    """Drop edge punctuation, quotes, leading wh-determiners and (for entities) a possessive."""
    doc = sent.doc
    while start < end and (
        doc[start].is_punct or doc[start].is_space or doc[start].lower_ in ("whose", "which")
    ):
        if doc[start].text == "(" and any(doc[k].text == ")" for k in range(start, end)):
            break
        start += 1
    while end > start and (doc[end - 1].is_punct or doc[end - 1].is_space):
        if doc[end - 1].text == ")" and any(doc[k].text == "(" for k in range(start, end)):
            break
        end -= 1
    if entity:
        while end > start and (doc[end - 1].tag_ == "POS" or doc[end - 1].text in QUOTES):
            end -= 1
    # An unbalanced quote means the span crosses a quotation's edge: keep the quoted side.
    opens = [k for k in range(start, end) if doc[k].text in "“«"]
    closes = [k for k in range(start, end) if doc[k].text in "”»"]
    if len(opens) > len(closes) and opens[-1] + 1 < end:
        start = opens[-1] + 1
    elif len(closes) > len(opens) and closes[0] > start:
        end = closes[0]
    return start, end


def noun_phrase(head: Token, exclude: Iterable[int], *, keep_acl: bool = False) -> tuple[int, int]:
    """The contiguous phrase around `head` without clauses, appositions and `exclude`d tokens."""
    drop = set(exclude)
    cut = ("relcl", "appos", "advcl", "cc", "conj") if keep_acl else ("relcl", "appos", "acl")
    for child in head.children:
        if (
            child.dep_ in cut
            or child.dep_ in ("advcl", "cc", "conj")
            or (child.dep_ == "punct" and child.text in ",;:—–(")
        ):
            drop.update(t.i for t in child.subtree)
    if head.ent_iob_ != "O":  # the whole name: "the Syrian Observatory for Human Rights"
        for ent in head.doc.ents:
            inside = ent.start <= head.i < ent.end and len(ent) > 1
            if inside and not ent.text.islower() and not drop & set(range(ent.start, ent.end)):
                return ent.start, ent.end
    start = end = head.i
    left, right = head.left_edge.i, head.right_edge.i
    while start - 1 >= left and start - 1 not in drop:
        start -= 1
    while end + 1 <= right and end + 1 not in drop and head.doc[end + 1].text not in ",;(":
        end += 1
    return start, end + 1


def _ent_fit(kind: str, ent: Span) -> float:
    if kind == "other":
        return 0.5
    fit = _ENT_FIT.get(kind, {}).get(ent.label_, 0.0)
    # A lowercase "name" ("jihadist" as NORP) is usually a tagging slip.
    named = ent.label_ not in ("DATE", "TIME", "CARDINAL", "QUANTITY", "MONEY", "PERCENT")
    return fit * 0.5 if named and ent.text.islower() else fit


def _token_fit(kind: str, tok: Token) -> float:
    """The fit of the phrase headed by `tok`, judged by the name or noun chunk it heads."""
    for chunk in tok.doc[tok.left_edge.i : tok.right_edge.i + 1].noun_chunks:
        if chunk.root.i == tok.i:
            return _chunk_fit(kind, chunk)
    return 0.45 if kind == "other" else 0.0


def _fillers(sent: Span, qa: QuestionAnalysis, anchors: Mapping[int, tuple[int, float]]) -> set[int]:
    """Heads of the argument the question asks for, around the question's own verb.

    "Who controlled X?" -> the subject (through "which" to its antecedent, through "and" to the
    first verb's subject); "Who did X overthrow?" -> the object; "... accused of?" -> the object
    of that preposition.
    """
    doc = sent.doc
    heads: set[int] = set()
    for i in anchors:
        verb = doc[i]
        if verb.pos_ not in ("VERB", "AUX"):
            continue
        if qa.stranded:
            for prep in verb.children:
                if prep.lower_ == qa.stranded and prep.dep_ in ("prep", "agent", "dative"):
                    heads.update(c.i for c in prep.children if c.dep_ in ("pobj", "pcomp"))
        if qa.role == "subject":
            heads.update(_subjects_of(verb))
            for agent in (c for c in verb.children if c.dep_ == "agent"):
                heads.update(c.i for c in agent.children if c.dep_ == "pobj")
        elif qa.role == "object":
            heads.update(c.i for c in verb.children if c.dep_ in ("dobj", "dative", "oprd"))
    return {i for i in heads if i not in anchors and sent.start <= i < sent.end}


def _subjects_of(verb: Token) -> set[int]:
    for _ in range(3):
        subj = [c for c in verb.children if c.dep_ in ("nsubj", "nsubjpass")]
        if subj:
            if subj[0].tag_ in ("WDT", "WP") and verb.dep_ == "relcl":
                return {verb.head.i}  # "HTS, which controlled ..." -> HTS
            return {t.i for t in subj if t.pos_ != "PRON"}
        if verb.dep_ != "conj":
            break
        verb = verb.head  # "was led by X and controlled Y": the subject of "led"
    return set()


def _chunk_fit(kind: str, chunk: Span) -> float:
    head = chunk.root
    if head.pos_ == "PRON" or head.lower_ in CUT_WORDS:
        return 0.0
    if head.ent_type_:  # a chunk around a name fits as that name does
        ents = [e for e in chunk.doc.ents if e.start <= head.i < e.end]
        if ents:
            return 0.95 * _ent_fit(kind, ents[0])
    lemma = head.lemma_.lower()
    proper = head.pos_ == "PROPN"
    return {
        "person": 0.5 if proper else 0.35,
        "place": (0.8 if any(t.pos_ == "PROPN" for t in chunk) else 0.5)
        if lemma in _PLACE_NOUNS
        else 0.4
        if proper
        else 0.0,
        "org": 0.6 if lemma in _ORG_NOUNS else 0.4 if proper else 0.0,
        "definition": 0.3,
        "other": 0.45,
        "name": 0.3 if proper else 0.1,
    }.get(kind, 0.0)


def char_span(sent: Span, start: int, end: int) -> tuple[int, int] | None:
    span = sent.doc.char_span(sent.start_char + start, sent.start_char + end, alignment_mode="expand")
    return (span.start, span.end) if span is not None and len(span) else None


def _age(sent: Span) -> list[tuple[int, int]]:
    """ ", 50," after a name, "aged 50", "50 years old", "50-year-old"."""
    doc = sent.doc
    found = []
    for tok in sent:
        if not tok.text.isdigit() or not 0 < int(tok.text) < 125:
            continue
        prev = doc[tok.i - 1] if tok.i > sent.start else None
        prev2 = doc[tok.i - 2] if tok.i - 1 > sent.start else None
        nxt = doc[tok.i + 1] if tok.i + 1 < sent.end else None
        after = sent.doc[tok.i + 1 : min(tok.i + 4, sent.end)].text.lower()
        apposed = (
            prev is not None
            and prev.text in (",", "(")
            and prev2 is not None
            and prev2.pos_ == "PROPN"
            and (nxt is None or nxt.text in (",", ")", "."))
        )
        if apposed or (prev is not None and prev.lower_ in ("aged", "age")) or "year" in after:
            found.append((tok.i, tok.i + 1))
    return found


def _conjoined(ents: Sequence[Span]) -> list[tuple[int, int, float]]:
    """ "Syria and Iraq": two names of one kind joined by "and" answer together."""
    found = []
    for a, b in zip(ents, ents[1:], strict=False):
        between = a.doc[a.end : b.start]
        if a.label_ == b.label_ and len(between) == 1 and between[0].lower_ in ("and", "or"):
            found.append((a.start, b.end, 1.0))
    return found


def extract_candidates(
    sent: Span,
    qa: QuestionAnalysis,
    anchors: Mapping[int, tuple[int, float]],
    typed: frozenset[int] = frozenset(),
    *,
    extra: Sequence[tuple[int, int, float, str, bool]] = (),
    ready: Sequence[SpanCandidate] = (),
) -> list[SpanCandidate]:
    """Every plausible answer span of `sent` for `qa`.

    `anchors` map the tokens that match a question term to (term index, weight); `typed` are
    the tokens matching the question's type noun ("newspaper" in "Which newspaper ...?").
    """
    kind = qa.kind
    raw: list[tuple[int, int, float, str, bool]] = []  # start, end, fit, rule, entity-like
    ages = _age(sent)
    ents = list(sent.ents)
    merged: set[int] = set()
    for k, ent in enumerate(ents):
        fit = _ent_fit(kind, ent) * (0.9 if k in merged else 1.0)
        if kind != "age" and (ent.start, ent.end) in ages:
            fit = 0.0  # "Petrova, 50," is an age, not a date or a count
        start = ent.start
        while ent.label_ == "PERSON" and start > sent.start and _is_title(sent.doc[start - 1], ent):
            start -= 1  # "General Anna Petrova"
        raw.append((start, ent.end, fit, "ent", True))
        nxt = ents[k + 1] if k + 1 < len(ents) else None
        if nxt and kind == "date" and {ent.label_, nxt.label_} <= {"DATE", "TIME"}:
            if nxt.start - ent.end <= 1:  # "Wednesday" + "afternoon"
                raw.append((ent.start, nxt.end, fit, "ent", True))
                raw[-2] = (*raw[-2][:2], fit * 0.9, *raw[-2][3:])
                merged.add(k + 1)
    if kind in ("place", "person", "org"):
        raw.extend(
            (a, b, _ent_fit(kind, sent.doc[a:b].ents[0]), "conj", True) for a, b, _ in _conjoined(ents)
        )
    for chunk in sent.noun_chunks:
        raw.append((chunk.start, chunk.end, _chunk_fit(kind, chunk), "chunk", False))
    if kind == "age":
        raw.extend((a, b, 1.0, "age", True) for a, b in ages)
    if kind == "number":
        for tok in sent:
            if (tok.lower_ in _NUMBER_WORDS or tok.like_num) and not tok.ent_type_:
                raw.append((tok.i, tok.i + 1, 0.8, "number", True))
    raw.extend(extra)

    fillers = _fillers(sent, qa, anchors)
    for i in fillers:
        if sent.doc[i].pos_ in ("NOUN", "PROPN", "NUM", "VERB"):
            tok = sent.doc[i]
            a, b = (tok.left_edge.i, tok.right_edge.i + 1) if tok.pos_ == "VERB" else noun_phrase(tok, ())
            # "a girl" is who was kidnapped; an age, a count or a date must be one, wherever it stands
            floor = 0.6 if kind in ("person", "other") else 0.0 if kind in TYPED_KINDS else 0.3
            raw.append((a, b, max(_token_fit(kind, tok), floor), "argument", tok.pos_ == "PROPN"))
    out: list[SpanCandidate] = []
    out.extend(ready)
    class_nouns = {"place": _PLACE_NOUNS, "org": _ORG_NOUNS}.get(kind, frozenset())
    links = typed | {t.i for t in sent if t.pos_ == "NOUN" and t.lemma_.lower() in class_nouns}
    focus = [t.i for t in sent if qa.kind == "name" and qa.focus and stem(t.lower_) == qa.focus]
    if qa.kind == "name" and qa.focus and not focus:
        focus = [-1]  # the asked-about noun is not in this sentence: nothing here is its name
    for start, end, fit, rule, entity in raw:
        if fit <= 0.0:
            continue
        a, b = trim(sent, start, end, entity=entity)
        if b <= a:
            continue
        span = sent.doc[a:b]
        if any(0 < tree_distance(span.root, sent.doc[i]) <= 2 for i in links if i not in range(a, b)):
            fit = max(fit, 0.9)  # "the newspaper Le Figaro", "the town of Rochdale"
        if focus:  # "the name of the girl": only a name tied to "girl" will do
            tied = any(
                i >= 0 and tree_distance(span.root, sent.doc[i]) <= 3 for i in focus if i not in range(a, b)
            )
            is_name = tied and span.root.pos_ == "PROPN" and span.root.dep_ != "poss"  # not "X's son"
            fit = max(fit, 0.9) if is_name else fit if tied else fit * 0.2
        near = 1.0 if span.root.i in fillers else proximity(span, anchors)
        out.append(SpanCandidate(a, b, fit, near, rule))
    asked = _question_tokens(sent, anchors)
    return [c for c in (_with_novelty(sent, c, asked, typed) for c in out) if c is not None]


def _is_title(tok: Token, ent: Span) -> bool:
    return tok.dep_ == "compound" and tok.head.i in range(ent.start, ent.end) and tok.is_title


def _question_tokens(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> set[int]:
    """Anchors plus the rest of any name they sit in ("al" of "Ahmad al-Chareh")."""
    tokens = set(anchors)
    for ent in sent.ents:
        # Only when most of the name is asked: "Ana" spelled like "Anna" leaves "Ana Ruiz" new.
        names = [t.i for t in ent if t.text[:1].isupper()]
        asked = [i for i in names if i in anchors and anchors[i][1] >= 1.5]
        if asked and 2 * len(asked) > len(names):
            tokens.update(range(ent.start, ent.end))
    return tokens


def _with_novelty(
    sent: Span, cand: SpanCandidate, asked: set[int], typed: frozenset[int]
) -> SpanCandidate | None:
    """Drop spans made only of the question's words; discount spans that repeat some."""
    content = [t.i for t in sent.doc[cand.start : cand.end] if not (t.is_punct or t.is_space)]
    content = [i for i in content if not sent.doc[i].is_stop] or content
    content = [i for i in content if i not in typed]  # "the Kent region" is no repeat
    if not content:
        return None
    share = sum(1 for i in content if i in asked) / len(content)
    if share >= 1.0:
        return None
    return SpanCandidate(cand.start, cand.end, cand.type_fit, cand.proximity, cand.rule, 1.0 - 0.7 * share)
