"""Answer-span candidates inside one parsed sentence, from entities, noun chunks and the parse.

Each candidate carries a type fit (does it look like what the question asks for?) and a
proximity (how close it sits, in the dependency tree, to the question's words in the sentence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.question import QuestionAnalysis

if TYPE_CHECKING:  # spaCy is imported by whoever parses; importing it here costs a second
    from spacy.tokens import Span, Token

# Per question kind: how well each spaCy entity label fits.
_ENT_FIT: dict[str, dict[str, float]] = {
    "person": {"PERSON": 1.0, "ORG": 0.6, "NORP": 0.4},
    "org": {"ORG": 1.0, "NORP": 0.6, "PERSON": 0.4, "FAC": 0.4, "GPE": 0.3},
    "nationality": {"NORP": 1.0, "GPE": 0.4},
    "date": {"DATE": 1.0, "TIME": 0.9},
    "place": {"GPE": 1.0, "LOC": 1.0, "FAC": 0.9, "ORG": 0.3},
    "number": {"CARDINAL": 1.0, "MONEY": 1.0, "PERCENT": 1.0, "QUANTITY": 1.0, "DATE": 0.2},
    "age": {"CARDINAL": 0.4, "DATE": 0.4},
    "name": {"PERSON": 0.6, "ORG": 0.6, "WORK_OF_ART": 0.7, "EVENT": 0.5, "PRODUCT": 0.5},
    "definition": {"ORG": 0.2, "PERSON": 0.2},
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
_NAMING_VERBS = frozenset("call name dub know nickname title style".split())
_SPEECH_VERBS = frozenset("say tell add announce indicate state declare report claim explain".split())
_REASON_MARKERS = frozenset("because since as due for of over after".split())
_CUT_WORDS = frozenset("who whom which whose that where when".split())
_QUOTE_RE = re.compile(r"[“\"]([^”\"]{2,120})[”\"]")
_PAREN_RE = re.compile(r"\(([^()]{2,120})\)")
_QUOTES = "\"'“”‘’«»"


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
        while end > start and (doc[end - 1].tag_ == "POS" or doc[end - 1].text in _QUOTES):
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


def _surface_appositions(sent: Span, subject: tuple[int, int]) -> list[tuple[int, int]]:
    """ ", a former criminal turned preacher," right after the subject, cut at clause words."""
    doc = sent.doc
    found: list[tuple[int, int]] = []
    k = subject[1]
    if k < len(doc) and doc[k].tag_ == "POS":
        return found
    if k + 1 < sent.end and doc[k].text == ",":
        end = k + 1
        while end < sent.end and doc[end].text not in ",;:()—–" and end - k <= 14:
            if doc[end].lower_ in _CUT_WORDS or doc[end].text in _QUOTES:
                break
            end += 1
        phrase = doc[k + 1 : end]
        if phrase and any(t.pos_ == "NOUN" for t in phrase) and phrase[0].pos_ in ("DET", "ADJ", "NOUN"):
            found.append((k + 1, end))
    return found


def _subjects(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> list[tuple[int, int]]:
    """Runs of adjacent matched tokens (the definition subject as it appears in the sentence)."""
    runs: list[tuple[int, int]] = []
    for i in sorted(anchors):
        if (
            runs
            and i <= runs[-1][1] + 1
            and all(sent.doc[j].is_punct or j in anchors for j in range(runs[-1][1], i))
        ):
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _definition(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> list[SpanCandidate]:
    doc = sent.doc
    out: list[SpanCandidate] = []
    for s, e in _subjects(sent, anchors):
        # Extend the subject over the whole entity it sits in ("Jibril al-Mouhajer").
        for ent in sent.ents:
            if ent.start <= s < ent.end or ent.start < e <= ent.end:
                s, e = min(s, ent.start), max(e, ent.end)
        inside = set(range(s, e))
        root = doc[s:e].root
        subj_tree = {t.i for t in root.subtree} | inside

        def add(span: tuple[int, int], fit: float, rule: str, inside: set[int] = inside) -> None:
            a, b = trim(sent, span[0], span[1], entity=False)
            if b > a and not inside & set(range(a, b)):
                out.append(SpanCandidate(a, b, fit, 1.0, rule))

        if root.dep_ == "appos" or root.head.dep_ == "appos" and root.dep_ == "compound":
            head = root.head if root.dep_ == "appos" else root.head.head
            add(noun_phrase(head, subj_tree), 0.95, "appos")
            for sib in head.children:
                if sib.dep_ == "appos" and sib.i not in subj_tree:
                    add(noun_phrase(sib, subj_tree), 0.7, "alias")
        for child in root.children:
            if child.dep_ == "appos" and child.i not in inside:
                add(noun_phrase(child, inside, keep_acl=True), 0.95, "appos")
            if child.dep_ == "compound" and child.i not in inside and child.pos_ == "NOUN":
                add((child.left_edge.i, child.i + 1), 0.8, "title")
        # The subject completes a clause on a noun: "a jihadist who calls himself X".
        clause = root.head
        if root.dep_ in ("oprd", "attr", "acomp") and clause.dep_ == "relcl":
            noun = clause.head
            if noun.pos_ in ("NOUN", "PROPN"):
                add(noun_phrase(noun, subj_tree), 0.85, "relcl")
                if noun.dep_ == "appos":
                    add(noun_phrase(noun.head, subj_tree | {noun.i}), 0.95, "relcl-appos")
        # "X is a Y": the attribute of a copula whose subject is X.
        if root.dep_ in ("nsubj", "nsubjpass") and root.head.lemma_ == "be":
            for child in root.head.children:
                if child.dep_ == "attr":
                    add(noun_phrase(child, inside), 0.95, "copula")
        # Modifiers before the name inside its own phrase: "former president Bashar al-Assad".
        left = [t.i for t in root.subtree if t.i < s and t.dep_ in ("compound", "amod")]
        if left and doc[left[-1]].pos_ == "NOUN":
            add((min(left), s), 0.8, "title")
        for span in _surface_appositions(sent, (s, e)):
            add(span, 0.9, "surface-appos")
        if s > sent.start and doc[s - 1].text == "(":
            # "Syrian Observatory for Human Rights (OSDH)": the phrase before the parenthesis.
            before = s - 1
            for ent in sent.ents:
                if ent.end == before:
                    add((ent.start, ent.end), 0.9, "acronym")
    return out


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
    if head.pos_ == "PRON" or head.lower_ in _CUT_WORDS:
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


def _char_span(sent: Span, start: int, end: int) -> tuple[int, int] | None:
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


def _reason(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> list[tuple[int, int, float]]:
    doc = sent.doc
    found = []
    for tok in sent:
        if tok.lower_ == "because":
            clause = tok.head if tok.dep_ == "mark" else tok
            found.append((tok.i, clause.right_edge.i + 1, 1.0))
    for i in anchors:
        verb = doc[i]
        if verb.pos_ not in ("VERB", "AUX"):
            continue
        for child in verb.children:
            marker = child.lower_ in _REASON_MARKERS and child.dep_ in ("prep", "agent")
            purpose = child.dep_ in ("advcl", "xcomp") and any(c.lower_ == "to" for c in child.children)
            if marker or purpose or child.dep_ == "advcl":
                start = child.left_edge.i + (1 if child.lower_ == "of" else 0)
                found.append((start, child.right_edge.i + 1, 0.9 if marker or purpose else 0.6))
    return found


def _named(
    sent: Span, qa: QuestionAnalysis, anchors: Mapping[int, tuple[int, float]]
) -> list[tuple[int, int, float, str]]:
    """Names, aliases, quoted terms and glosses: (start, end, fit, rule)."""
    doc = sent.doc
    found: list[tuple[int, int, float, str]] = []
    wants_meaning = bool(re.search(r"\bmean|\bstand\s+for", qa.question, re.IGNORECASE))
    for tok in sent:
        if tok.lemma_.lower() in _NAMING_VERBS:
            for child in tok.children:
                if child.dep_ in ("oprd", "attr", "xcomp", "appos") and child.pos_ != "PRON":
                    found.append((child.left_edge.i, child.right_edge.i + 1, 1.0, "naming"))
    for m in _QUOTE_RE.finditer(sent.text):
        span = _char_span(sent, m.start(1), m.end(1))
        if span:
            window = range(span[0] - 4, span[0])
            near_naming = any(sent.start <= j and doc[j].lemma_.lower() in _NAMING_VERBS for j in window)
            found.append((*span, 1.0 if near_naming else 0.6, "quote"))
    for m in _PAREN_RE.finditer(sent.text):
        span = _char_span(sent, m.start(1), m.end(1))
        if not span:
            continue
        before = [j for j in range(span[0] - 4, span[0] - 1) if j in anchors]
        if wants_meaning and before:
            found.append((*span, 1.0, "paren"))
        elif any(j in anchors for j in range(*span)):
            # "(OSDH)" asked about: the phrase just before the parenthesis.
            for ent in sent.ents:
                if ent.end in (span[0] - 1, span[0] - 2):
                    found.append((ent.start, ent.end, 1.0 if wants_meaning else 0.7, "acronym"))
        else:
            found.append((*span, 0.5, "paren"))
    return found


def _speech(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> list[tuple[int, int]]:
    doc = sent.doc
    found = []
    for i in anchors:
        if doc[i].lemma_.lower() in _SPEECH_VERBS:
            for child in doc[i].children:
                if child.dep_ == "ccomp":
                    start = child.left_edge.i
                    while start < child.i and doc[start].dep_ == "mark":
                        start += 1
                    found.append((start, child.right_edge.i + 1))
    return found


def extract_candidates(
    sent: Span,
    qa: QuestionAnalysis,
    anchors: Mapping[int, tuple[int, float]],
    typed: frozenset[int] = frozenset(),
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
            fit = 0.0  # "Diaby, 50," is an age, not a date or a count
        start = ent.start
        while ent.label_ == "PERSON" and start > sent.start and _is_title(sent.doc[start - 1], ent):
            start -= 1  # "General Ghassan Bakir"
        raw.append((start, ent.end, fit, "ent", True))
        nxt = ents[k + 1] if k + 1 < len(ents) else None
        if nxt and kind == "date" and {ent.label_, nxt.label_} <= {"DATE", "TIME"}:
            if nxt.start - ent.end <= 1:  # "Wednesday" + "afternoon"
                raw.append((ent.start, nxt.end, fit, "ent", True))
                raw[-2] = (*raw[-2][:2], fit * 0.9, *raw[-2][3:])
                merged.add(k + 1)
    for chunk in sent.noun_chunks:
        raw.append((chunk.start, chunk.end, _chunk_fit(kind, chunk), "chunk", False))
    if kind == "age":
        raw.extend((a, b, 1.0, "age", True) for a, b in ages)
    if kind == "number":
        for tok in sent:
            if (tok.lower_ in _NUMBER_WORDS or tok.like_num) and not tok.ent_type_:
                raw.append((tok.i, tok.i + 1, 0.8, "number", True))
    if kind == "reason":
        raw.extend((a, b, f, "reason", False) for a, b, f in _reason(sent, anchors))
    if kind == "name":
        raw.extend((a, b, f, r, True) for a, b, f, r in _named(sent, qa, anchors))
    if kind == "other" and any(sent.doc[i].lemma_.lower() in _SPEECH_VERBS for i in anchors):
        raw.extend((a, b, 0.9, "speech", False) for a, b in _speech(sent, anchors))

    fillers = _fillers(sent, qa, anchors)
    for i in fillers:
        if sent.doc[i].pos_ in ("NOUN", "PROPN", "NUM", "VERB"):
            tok = sent.doc[i]
            a, b = (tok.left_edge.i, tok.right_edge.i + 1) if tok.pos_ == "VERB" else noun_phrase(tok, ())
            raw.append((a, b, max(_token_fit(kind, tok), 0.3), "argument", tok.pos_ == "PROPN"))
    out: list[SpanCandidate] = []
    if qa.definition:
        out.extend(_definition(sent, anchors))
    class_nouns = {"place": _PLACE_NOUNS, "org": _ORG_NOUNS}.get(kind, frozenset())
    links = typed | {t.i for t in sent if t.pos_ == "NOUN" and t.lemma_.lower() in class_nouns}
    for start, end, fit, rule, entity in raw:
        if fit <= 0.0:
            continue
        a, b = trim(sent, start, end, entity=entity)
        if b <= a:
            continue
        span = sent.doc[a:b]
        if any(0 < tree_distance(span.root, sent.doc[i]) <= 2 for i in links if i not in range(a, b)):
            fit = max(fit, 0.9)  # "the newspaper Le Figaro", "the town of Harim"
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
        if any(i in anchors and anchors[i][1] >= 1.5 for i in range(ent.start, ent.end)):
            tokens.update(range(ent.start, ent.end))
    return tokens


def _with_novelty(
    sent: Span, cand: SpanCandidate, asked: set[int], typed: frozenset[int]
) -> SpanCandidate | None:
    """Drop spans made only of the question's words; discount spans that repeat some."""
    content = [t.i for t in sent.doc[cand.start : cand.end] if not (t.is_punct or t.is_space)]
    content = [i for i in content if not sent.doc[i].is_stop] or content
    content = [i for i in content if i not in typed]  # "the Harim region" is no repeat
    if not content:
        return None
    share = sum(1 for i in content if i in asked) / len(content)
    if share >= 1.0:
        return None
    return SpanCandidate(cand.start, cand.end, cand.type_fit, cand.proximity, cand.rule, 1.0 - 0.7 * share)
