"""Rules for what-questions: what a sentence says X is, is called, did, or why.

"Who is X?" -> an apposition or copula; "What alias ...?" -> the name after "alias"; "What did
X refuse to do?" -> a verb phrase; "How did X classify Y?" -> the "as" phrase; "Why ...?" -> a
cause.

Split from rag.spans, whose generic helpers (trim, noun_phrase, ...) these rules share;
`rag.reader` passes their candidates to `rag.spans.extract_candidates`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rag.question import QuestionAnalysis
from rag.spans import (
    CUT_WORDS,
    NAMING_VERBS,
    PAREN_RE,
    QUOTE_RE,
    QUOTES,
    RawSpan,
    SpanCandidate,
    char_span,
    noun_phrase,
    trim,
)

if TYPE_CHECKING:
    from spacy.tokens import Span, Token

_SPEECH_VERBS = frozenset("say tell add announce indicate state declare report claim explain".split())
_REASON_MARKERS = frozenset("because since as due for of over after".split())
# "accused X of Y", "arrested for Y": Y is the stated reason whatever the question's verb.
_CHARGE_VERBS = frozenset("accuse suspect charge arrest convict condemn blame sentence detain".split())

RuleSpan = tuple[int, int, float, str, bool]  # start, end, type fit, rule, entity-like


def question_spans(
    sent: Span, qa: QuestionAnalysis, anchors: Mapping[int, tuple[int, float]]
) -> list[RuleSpan]:
    """The spans that only one kind of question asks for: names, verb phrases, reasons, quotes."""
    kind = qa.kind
    if kind == "name":
        return [(a, b, f, r, True) for a, b, f, r in named_spans(sent, qa, anchors)]
    if kind in ("place", "nationality"):
        found = _modifiers(sent, anchors, places=kind == "place")
        return [(a, b, f, "modifier", True) for a, b, f in found]
    if kind == "action":
        return [(a, b, f, "action", False) for a, b, f in _action(sent, anchors)]
    if kind == "manner":
        return [(a, b, f, "manner", False) for a, b, f in _manner(sent, anchors)]
    if kind == "reason":
        return [(a, b, f, "reason", False) for a, b, f in _reason(sent, anchors)]
    if kind == "other" and any(sent.doc[i].lemma_.lower() in _SPEECH_VERBS for i in anchors):
        return [(a, b, 0.9, "speech", False) for a, b in _speech(sent, anchors)]
    return []


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
            if doc[end].lower_ in CUT_WORDS or doc[end].text in QUOTES:
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


def definition_candidates(
    sent: Span, anchors: Mapping[int, tuple[int, float]], *, short: bool = False
) -> list[SpanCandidate]:
    """What the sentence says the question's subject is; `short` keeps only the class noun
    ("an NGO", not "an NGO based in ...") for "What kind of N is X?"."""
    doc = sent.doc
    out: list[SpanCandidate] = []
    for s, e in _subjects(sent, anchors):
        # Extend the subject over the whole entity it sits in ("Rami al-Haddad").
        for ent in sent.ents:
            if ent.start <= s < ent.end or ent.start < e <= ent.end:
                s, e = min(s, ent.start), max(e, ent.end)
        inside = set(range(s, e))
        root = doc[s:e].root
        subj_tree = {t.i for t in root.subtree} | inside

        def add(span: tuple[int, int], fit: float, rule: str, inside: set[int] = inside) -> None:
            a, b = trim(sent, span[0], span[1], entity=False)
            if short and b > a:
                b = min(b, doc[a:b].root.i + 1)
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
        if s > sent.start and doc[s - 1].text == "(" and not short:
            # "Syrian Observatory for Human Rights (OSDH)": the phrase before the parenthesis.
            before = s - 1
            for ent in sent.ents:
                if ent.end == before:
                    add((ent.start, ent.end), 0.9, "acronym")
    return out


def named_spans(sent: Span, qa: QuestionAnalysis, anchors: Mapping[int, tuple[int, float]]) -> list[RawSpan]:
    """Names, aliases, quoted terms and glosses: (start, end, fit, rule)."""
    doc = sent.doc
    found: list[RawSpan] = []
    wants_meaning = bool(re.search(r"\bmean|\bstand\s+for", qa.question, re.IGNORECASE))
    for tok in sent:
        if tok.lemma_.lower() in NAMING_VERBS:
            for child in tok.children:
                if child.dep_ in ("oprd", "attr", "xcomp", "appos") and child.pos_ != "PRON":
                    found.append((child.left_edge.i, child.right_edge.i + 1, 1.0, "naming"))
                if child.dep_ == "prep" and child.lower_ == "as":  # "known as X"
                    found.extend((c.left_edge.i, c.right_edge.i + 1, 1.0, "naming") for c in child.children)
        if tok.lower_ in ("alias", "aka", "a.k.a.") and tok.i + 1 < sent.end:
            end = tok.i + 1  # "X, alias Y": the proper nouns after the word
            while end < sent.end and doc[end].pos_ == "PROPN" or end < sent.end and doc[end].text == "-":
                end += 1
            if end > tok.i + 1:
                found.append((tok.i + 1, end, 1.0, "alias"))
    for m in QUOTE_RE.finditer(sent.text):
        span = char_span(sent, m.start(1), m.end(1))
        if span:
            window = range(span[0] - 4, span[0])
            near_naming = any(sent.start <= j and doc[j].lemma_.lower() in NAMING_VERBS for j in window)
            found.append((*span, 1.0 if near_naming else 0.6, "quote"))
    for m in PAREN_RE.finditer(sent.text):
        span = char_span(sent, m.start(1), m.end(1))
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


def _reason(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> list[tuple[int, int, float]]:
    doc = sent.doc
    found = []
    for tok in sent:
        if tok.lower_ == "because":
            clause = tok.head if tok.dep_ == "mark" else tok
            found.append((tok.i, clause.right_edge.i + 1, 1.0))
    for verb in sent:
        if verb.lemma_.lower() in _CHARGE_VERBS:
            for prep in (c for c in verb.children if c.lower_ in ("of", "for") and c.dep_ == "prep"):
                fit = 0.85 if verb.i in anchors else 0.5
                found.extend((c.left_edge.i, c.right_edge.i + 1, fit) for c in prep.children)
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


def _action(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> list[tuple[int, int, float]]:
    """Verb phrases: "refused to [surrender to the authorities]", "[surrounded the camp]"."""
    found = []
    for verb in sent:
        if verb.pos_ != "VERB" or verb.i not in anchors and not any(c.i in anchors for c in verb.children):
            continue
        for child in verb.children:
            if child.dep_ == "xcomp" and child.pos_ == "VERB":  # refused to surrender ...
                start = child.i - (1 if verb.i in anchors else 0)
                found.append(
                    (_after_aux(child, start), child.right_edge.i + 1, 1.0 if verb.i in anchors else 0.7)
                )
        if verb.i not in anchors:  # the verb acting on a question word: "surrounded the camp"
            objects = [c for c in verb.children if c.dep_ in ("dobj", "prep") and c.i > verb.i]
            objects = [c for c in objects if c.i in anchors or any(g.i in anchors for g in c.children)]
            if objects:
                found.append((_after_aux(verb, verb.i), max(c.right_edge.i for c in objects) + 1, 0.8))
    return found


def _after_aux(verb: Token, start: int) -> int:
    """Start of the phrase of `verb` without its subject, auxiliaries and "to"."""
    left = [
        c.i
        for c in verb.children
        if c.i < verb.i
        and c.dep_ not in ("nsubj", "nsubjpass", "aux", "auxpass", "mark", "neg", "advmod", "punct")
    ]
    return min([verb.i, *left]) if start >= verb.i else start


def _manner(sent: Span, anchors: Mapping[int, tuple[int, float]]) -> list[tuple[int, int, float]]:
    """ "classified X as [an international terrorist]", "appeared [calm]"."""
    doc = sent.doc
    found: list[tuple[int, int, float]] = []
    for i in anchors:
        verb = doc[i]
        if verb.pos_ not in ("VERB", "AUX"):
            continue
        for child in verb.children:
            if child.dep_ == "prep" and child.lower_ == "as":
                found.extend(
                    (c.left_edge.i, c.right_edge.i + 1, 1.0) for c in child.children if c.dep_ == "pobj"
                )
            elif child.dep_ in ("acomp", "oprd"):
                found.append((child.left_edge.i, child.right_edge.i + 1, 0.9))
    return found


def _modifiers(
    sent: Span, anchors: Mapping[int, tuple[int, float]], *, places: bool
) -> list[tuple[int, int, float]]:
    """Proper adjectives on an asked-about noun: "[French] justice", "the [Franco-Senegalese] leader"."""
    doc = sent.doc
    found = []
    heads = set(anchors) | {doc[i].head.i for i in anchors if doc[i].dep_ in ("appos", "compound")}
    for tok in sent:
        if (
            tok.head.i not in heads
            or tok.dep_ not in ("amod", "compound", "poss")
            or not tok.text[:1].isupper()
        ):
            continue
        if tok.i in anchors or tok.head.i < tok.i:
            continue
        start = tok.left_edge.i
        while start < tok.i and not doc[start].text[:1].isupper():
            start += 1
        end = tok.i + 1
        while end < tok.head.i and (doc[end].text == "-" or doc[end].text[:1].isupper()):
            end += 1  # "Franco - Senegalese"
        named = tok.ent_type_ in ("NORP", "GPE")
        if named or not places:  # a place is a named one; a nationality may be "Franco-Senegalese"
            found.append((start, end, 1.0 if named or "-" in doc[start:end].text else 0.8))
    return found
