"""Follow-up questions: resolve "he", "his", "it", "they" and "And his son?" from the chat so far.

No language model: spaCy's entities, noun chunks and tags, and a few documented rules.

    >>> history = [Turn("Who chairs the water board?", "Tomas Keller", sentence)]
    >>> rewrite("How old is he?", history, nlp).text
    'How old is Tomas Keller?'

Rules:

- A question without a referential third-person pronoun (he, she, him, her, his, hers, they,
  them, their, theirs, it, its) that is not elliptical comes back unchanged. So does one whose
  pronoun has a fitting antecedent earlier in the question itself ("How old was Keller when he
  ..."), an expletive "it" ("Is it true that ...", "How long did it take to ..."), and a
  pronoun with no fitting candidate.
- Candidates come from the last MAX_TURNS_BACK turns, most recent first; within a turn: the
  answer (a named entity, a proper-noun phrase or a noun phrase; not a number, date or clause;
  typed ORG/GPE when the question asked "which group/country"; skipped for "Who is X?", whose
  answer describes X), then the question's entities and noun phrases, then the named entities
  of the answer's sentence. The pronoun picks the most recent turn that has a fitting
  candidate, then the best fit (he/she: PERSON, or a person noun of that gender such as "girl"
  or "son"; they: a plural phrase, then ORG/NORP, then GPE; it: ORG/GPE/LOC/... or a non-person
  singular noun), then the earlier source, then the earlier position. A name's gender is
  unknown, so "she" can land on a man.
- Only the pronoun's characters are replaced (spaCy token offsets): "his" -> "Tomas Keller's",
  "their" -> "the farmers'"; "a girl" becomes "the girl". A second pronoun with the
  same referent stays a pronoun ("Did he say his ..." -> "Did Tomas Keller say his ...").
- Elliptical follow-ups, "And <noun phrase>?", "What about ...?" or "How about ...?" with no
  verb: the phrase (pronouns resolved) replaces the one noun phrase of the previous question
  when that question has exactly one and it agrees in person-ness and number ("How old is
  Tomas Keller?" + "And his son?" -> "How old is Tomas Keller's son?"). Otherwise the result is
  "Who is <phrase>?" for one person, else "What about <phrase>?", which still retrieves the
  right passages. A phrase whose pronoun found no referent is left as typed.

`Turn.question` should be the question as it was answered (`Answer.question`, already
rewritten), so that chains of follow-ups keep their referents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.question import analyze

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

MAX_TURNS_BACK = 3

# The pronoun's class: m/f = he/she, p = they, n = it. "her" is possessive when tagged PRP$.
PRONOUNS = (
    dict.fromkeys(("he", "him", "his"), "m")
    | dict.fromkeys(("she", "her", "hers"), "f")
    | dict.fromkeys(("they", "them", "their", "theirs"), "p")
    | dict.fromkeys(("it", "its"), "n")
)
POSSESSIVES = frozenset(("his", "hers", "their", "theirs", "its"))
ENTITY_LABELS = frozenset(
    "PERSON ORG GPE NORP LOC FAC PRODUCT EVENT WORK_OF_ART LAW".split()
)  # not DATE, CARDINAL, ...: nobody calls a number "he"
THING_LABELS = frozenset("ORG GPE LOC FAC PRODUCT EVENT WORK_OF_ART LAW".split())
MALE_NOUNS = frozenset("man boy son father husband brother uncle nephew grandson king gentleman".split())
FEMALE_NOUNS = frozenset(
    "woman girl daughter mother wife sister aunt niece granddaughter queen lady widow".split()
)
_OTHER_PERSON_NOUNS = """person people child kid teenager baby parent leader commander director president
    minister preacher fighter jihadist militant rebel soldier official spokesman spokeswoman spokesperson
    correspondent reporter journalist resident prosecutor judge general chief head founder member victim
    suspect witness criminal player coach worker doctor citizen civilian hostage prisoner activist
    politician author writer friend neighbor neighbour"""
PERSON_NOUNS = MALE_NOUNS | FEMALE_NOUNS | frozenset(_OTHER_PERSON_NOUNS.split())
_ELLIPSIS_RE = re.compile(r"^\s*(?:and|what\s+about|how\s+about)\s+", re.IGNORECASE)
_TRAILING_RE = re.compile(r"[\s?.!]+$")


@dataclass(frozen=True)
class Turn:
    """One past exchange: the question as answered, the answer (None = not found), its sentence."""

    question: str
    answer: str | None
    sentence: str | None = None


@dataclass(frozen=True)
class Rewrite:
    """The question to answer, what was typed, and what a pronoun was resolved to (or None)."""

    text: str
    original: str
    changed: bool
    referent: str | None


@dataclass(frozen=True)
class _Candidate:
    text: str
    label: str  # an entity label, "PROPER" (an unlabelled proper-noun phrase) or "NOUN"
    plural: bool
    person: bool
    gender: str | None  # "m", "f", or None when unknown
    age: int  # 0 = the last turn
    source: int  # 0 answer, 1 question, 2 the answer's sentence
    position: int


def rewrite(question: str, history: Sequence[Turn], nlp: Language) -> Rewrite:
    """`question` made self-contained from `history` (oldest first), or unchanged."""
    unchanged = Rewrite(question, question, False, None)
    if not history or not re.search(r"[A-Za-z]", question):
        return unchanged
    doc = nlp(question)
    candidates = _history_candidates(history[-MAX_TURNS_BACK:], nlp)
    text, referent, unresolved = _resolve_pronouns(doc, candidates)
    ellipsis = _ELLIPSIS_RE.match(question)
    if ellipsis and not unresolved and _is_elliptical(doc, ellipsis.end()):
        # Pronouns are only replaced after the "And"/"What about" prefix, so its end still holds.
        phrase = _TRAILING_RE.sub("", text[ellipsis.end() :])
        text = _with_frame(phrase, history[-1].question, nlp)
    if text == question:
        return unchanged
    return Rewrite(text, question, True, referent)


def _history_candidates(turns: Sequence[Turn], nlp: Language) -> list[_Candidate]:
    out: list[_Candidate] = []
    for age, turn in enumerate(reversed(turns)):
        asked = analyze(turn.question)
        # The answer to "Who is X?" describes X ("Tomas Keller's son"): X is the one to point back to.
        answer_span = _answer_span(turn, nlp) if not asked.definition else None
        if answer_span is not None:
            # The question types its answer better than small NER does a foreign name:
            # "Which group ...?" answered "Hayat Tahrir al-Sham" is an ORG, tagged PERSON or not.
            label = {"org": "ORG", "place": "GPE"}.get(asked.kind)
            out.extend(c for c in [_candidate(answer_span, age, 0, label=label)] if c)
        qdoc = nlp(turn.question)
        out.extend(c for s in _referring_spans(qdoc, nested=True) if (c := _candidate(s, age, 1)))
        sdoc = nlp(turn.sentence or "")
        out.extend(c for e in sdoc.ents if _useful_entity(e) and (c := _candidate(e, age, 2)))
    return out


def _answer_span(turn: Turn, nlp: Language) -> Span | None:
    """The answer as a span of its parsed sentence (better tags and labels), else parsed alone."""
    answer = (turn.answer or "").strip()
    if not answer:
        return None
    at = turn.sentence.find(answer) if turn.sentence else -1
    if turn.sentence and at >= 0:
        span = nlp(turn.sentence).char_span(at, at + len(answer), alignment_mode="expand")
        if span is not None:
            return span
    doc = nlp(answer)
    return doc[:] if len(doc) else None


def _useful_entity(ent: Span) -> bool:
    # "French" in "the French farmers" is an adjective, not something to point back to.
    return ent.label_ in ENTITY_LABELS and ent.root.pos_ in ("PROPN", "NOUN")


def _referring_spans(doc: Doc, *, nested: bool) -> list[Span]:
    """Entities and noun phrases, in order; `nested=False` drops "Tomas Keller" in "Tomas Keller's son"."""
    ents = [e for e in doc.ents if _useful_entity(e)]
    in_ent = {i for e in ents for i in range(e.start, e.end)}
    chunks = [
        c
        for c in doc.noun_chunks
        if c.root.pos_ in ("NOUN", "PROPN")
        and c.root.i not in in_ent
        and not any(t.tag_ in ("WDT", "WP", "WP$") for t in c)
    ]
    chunk_tokens = {i for c in chunks for i in range(c.start, c.end)}
    kept = [e for e in ents if nested or e.start not in chunk_tokens]
    return sorted(kept + chunks, key=lambda s: s.start)


def _candidate(span: Span, age: int, source: int, label: str | None = None) -> _Candidate | None:
    root = span.root
    if label is None:
        label = next(
            (str(e.label_) for e in span.doc.ents if _useful_entity(e) and e.start <= root.i < e.end), None
        )
    if label is None:
        words = [t for t in span if not t.is_punct and t.pos_ != "DET"]
        if not words:
            return None
        if all(t.pos_ == "PROPN" for t in words):
            label = "PROPER"
        elif root.pos_ == "NOUN":
            label = "NOUN"
        else:
            return None  # a number, a date, a clause
    lemma = root.lemma_.lower()
    gender = "m" if lemma in MALE_NOUNS else "f" if lemma in FEMALE_NOUNS else None
    person = label == "PERSON" or (label == "NOUN" and lemma in PERSON_NOUNS)
    plural = root.tag_ in ("NNS", "NNPS") or (label == "NORP" and root.text.endswith("s"))
    return _Candidate(_referent_text(span), label, plural, person, gender, age, source, span.start_char)


def _referent_text(span: Span) -> str:
    tokens = list(span)
    while tokens and (tokens[-1].is_punct or tokens[-1].is_space or tokens[-1].tag_ == "POS"):
        tokens.pop()
    if not tokens:
        return span.text
    first = tokens[0]
    text = span.doc.text[first.idx : tokens[-1].idx + len(tokens[-1].text)]
    if first.pos_ == "DET" and first.lower_ in ("the", "a", "an"):
        text = "the" + text[len(first.text) :]  # "a girl" is "the girl" once mentioned
    return text


def _fit(cls: str, cand: _Candidate) -> int | None:
    """How well a candidate fits a pronoun class: 0 best, None not at all."""
    if cls in ("m", "f"):
        if cand.plural or (cand.gender is not None and cand.gender != cls):
            return None
        if cand.label == "PERSON" or (cand.person and cand.gender == cls):
            return 0
        return 1 if cand.label == "PROPER" else 2 if cand.person else None
    if cls == "p":
        if cand.plural:
            return 0
        return {"ORG": 1, "NORP": 1, "GPE": 2, "PROPER": 2}.get(cand.label)
    if cand.plural or cand.person:
        return None
    return 0 if cand.label in THING_LABELS else 1 if cand.label in ("PROPER", "NOUN") else None


def _is_expletive(token: Token) -> bool:
    # "Is it true that ...", "How long did it take to ...": "it" points forward, not back.
    later_clause = any(c.dep_ in ("ccomp", "xcomp", "csubj") and c.i > token.i for c in token.head.children)
    return token.lower_ == "it" and (token.dep_ == "expl" or later_clause)


def _resolve_pronouns(doc: Doc, candidates: Sequence[_Candidate]) -> tuple[str, str | None, int]:
    """The question with its pronouns resolved, the first referent, the count left unresolved."""
    own = [(s.end_char, c) for s in _referring_spans(doc, nested=True) if (c := _candidate(s, -1, 1))]
    edits: list[tuple[int, int, str]] = []
    used: set[str] = set()
    first: str | None = None
    unresolved = 0
    for token in doc:
        cls = PRONOUNS.get(token.lower_)
        if cls is None or _is_expletive(token):
            continue
        possessive = token.lower_ in POSSESSIVES or token.tag_ == "PRP$"
        if any(end <= token.idx and _fit(cls, c) is not None for end, c in own):
            continue  # its antecedent is in the question itself
        fitting = [
            (c.age, fit, c.source, c.position, c) for c in candidates if (fit := _fit(cls, c)) is not None
        ]
        if not fitting:
            unresolved += 1
            continue
        best = min(fitting, key=lambda f: f[:4])[4]
        if best.text in used:
            continue  # "Did he say his ...": the second mention stays a pronoun
        used.add(best.text)
        first = first or best.text
        new = best.text
        if possessive:
            new += "'" if best.plural and new.endswith("s") else "'s"
        if token.i == 0 or token.is_sent_start:
            new = new[0].upper() + new[1:]
        edits.append((token.idx, token.idx + len(token.text), new))
    text = doc.text
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    return text, first, unresolved


def _is_elliptical(doc: Doc, start: int) -> bool:
    """After "And"/"What about": a noun phrase, no verb and no wh-word ("And when?" is not one)."""
    rest = [t for t in doc if t.idx >= start and not t.is_punct]
    has_verb = any(t.pos_ in ("VERB", "AUX") or t.tag_ in ("WP", "WDT", "WRB", "WP$") for t in rest)
    return bool(rest) and not has_verb and any(t.pos_ in ("NOUN", "PROPN", "PRON") for t in rest)


def _with_frame(phrase: str, previous: str, nlp: Language) -> str:
    """`phrase` put in place of the previous question's one noun phrase, else "Who is <phrase>?"
    (one person) or "What about <phrase>?"."""
    new = _candidate(nlp(phrase)[:], 0, 0)
    spans = _referring_spans(nlp(previous), nested=False)
    if new is not None and len(spans) == 1:
        old = _candidate(spans[0], 0, 0)
        unknown = "PROPER" in (old.label if old else "", new.label)  # a name: person or not
        if old is not None and old.plural == new.plural and (unknown or old.person == new.person):
            start, end = spans[0].start_char, spans[0].end_char
            phrase = phrase[0].upper() + phrase[1:] if start == 0 else phrase
            return previous[:start] + phrase + previous[end:]
    if new is not None and new.person and not new.plural:
        return f"Who is {phrase}?"
    return f"What about {phrase}?"
