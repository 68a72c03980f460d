"""Question analysis: the expected answer type, the wh-word and the weighted key terms.

Pure regex, no model, so it costs well under a millisecond:

    >>> q = analyze("Who is Rami al-Haddad?")
    >>> q.kind, q.definition, q.subject
    ('person', True, 'Rami al-Haddad')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Answer-type labels: spaCy entity labels plus a few of our own.
DESCRIPTION = "DESCRIPTION"  # a noun phrase that says who or what something is
SPAN = "SPAN"  # a name, alias, quoted term or meaning
REASON = "REASON"  # a cause or purpose
AGE = "AGE"  # a person's age
CLAUSE = "CLAUSE"  # a verb phrase: "What did X refuse to do?"

PERSON_TYPES = frozenset({"PERSON", "ORG", "NORP", DESCRIPTION})
TIME_TYPES = frozenset({"DATE", "TIME"})
PLACE_TYPES = frozenset({"GPE", "LOC", "FAC"})
NUMBER_TYPES = frozenset({"CARDINAL", "MONEY", "PERCENT", "QUANTITY"})

NAME_WEIGHT = 2.5
WORD_WEIGHT = 1.0
TYPE_WEIGHT = 0.5

_TYPE_NOUNS: dict[str, tuple[str, frozenset[str]]] = {}
for _kind, _types, _nouns in (
    ("date", TIME_TYPES, "year date month day time decade century period hour"),
    (
        "place",
        PLACE_TYPES,
        "country nation city region province town place village area state location "
        "continent border capital territory district camp enclave",
    ),
    (
        "org",
        frozenset({"ORG", "NORP"}),
        "group organization organisation agency company newspaper team coalition party "
        "army ngo institution outlet channel network media body movement",
    ),
    ("person", frozenset({"PERSON"}), "person man woman people leader who"),
    ("nationality", frozenset({"NORP"}), "nationality nationalities religion"),
    ("org", frozenset({"ORG", "PRODUCT"}), "app application platform website service"),
    ("name", frozenset({SPAN}), "name nickname alias title term word"),
):
    for _noun in _nouns.split():
        _TYPE_NOUNS[_noun] = (_kind, _types)

STOPWORDS = frozenset(
    """a an the and or but of to in on at by for with from as into onto over under about
    after before since during than then that this these those there here it its it's
    is are was were be been being am do does did done doing has have had having will would
    shall should can could may might must what which who whom whose when where why how
    i me my we our you your he him his she her they them their himself herself themselves
    itself not no yes so such very too also just only some any all each both other more most
    much many old one's s according please kind sort""".split()
)

_WORD_RE = re.compile(r"[A-Za-z0-9][\w\-]*(?:['’][A-Za-z]+)?", re.UNICODE)
_POSSESSIVE_RE = re.compile(r"['’]s?$")
_DEFINITION_RE = re.compile(
    r"^\s*(?P<wh>who|what)\s+(?:is|was|are|were)\s+(?P<subj>.+?)\s*[?.!]*\s*$", re.IGNORECASE
)
_IMPERATIVES = frozenset({"name", "list", "give", "tell", "describe", "explain", "find"})
_AUX = r"(?:is|was|are|were|does|did|do|has|have|had|will|would|can|could)"
# "How did X classify Y?" asks for the "as ..." phrase; "How did X appear?" for the adjective.
_AS_VERBS = "classif|describ|call|label|consider|regard|view|brand|appear|look|seem|sound|feel"
_KIND_OF_RE = re.compile(
    r"^\s*(?:what|which)\s+(?:kind|type|sort)\s+of\s+(?P<noun>[\w\-]+)\s+(?:is|was|are|were)\s+"
    r"(?P<subj>.+?)\s*[?.!]*\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class KeyTerm:
    """A content word of the question; `stem` is what sentence tokens are matched on."""

    text: str
    stem: str
    weight: float
    is_name: bool
    is_type: bool = False  # the type noun of "which country": an anchor, not a coverage term


@dataclass(frozen=True)
class QuestionAnalysis:
    """What a question asks for, and the words an answer sentence should contain."""

    question: str
    wh: str  # "who", "when", "where", "what", "which", "how", "why", "whose", "" (none)
    kind: str  # person, date, place, number, age, name, reason, definition, org, other
    answer_types: frozenset[str]
    terms: tuple[KeyTerm, ...]
    definition: bool = False
    subject: str | None = None  # X in "Who is X?" / "What is X?"
    role: str | None = None  # "subject" ("Who arrested X?") or "object" ("Who did X arrest?")
    stranded: str | None = None  # the final preposition of "What was X accused of?"
    name_groups: tuple[tuple[int, ...], ...] = ()  # term indices of multi-word names
    focus: str | None = None  # stem of the asked-about noun: "how many children", "name of the girl"
    category: str | None = None  # N of "What kind of N is X?": the answer is a short class noun

    @property
    def names(self) -> tuple[KeyTerm, ...]:
        return tuple(t for t in self.terms if t.is_name)


def stem(word: str) -> str:
    """A crude, fast suffix stripper shared by questions and sentences ("arrested" -> "arrest")."""
    w = _POSSESSIVE_RE.sub("", word.lower().replace("’", "'"))
    if len(w) <= 3:
        return w
    for suffix, repl in (
        ("ies", "y"),
        ("ied", "y"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
        ("ly", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + repl
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # kidnapp -> kidnap
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]  # surrender/refuse -> refus, matching "refusing" -> refus
    return w


def _types_for(q: str, wh: str) -> tuple[str, frozenset[str], str | None]:
    """(kind, answer types, generic type noun ("country"), kept as a weak anchor)."""
    low = q.lower()
    m = re.search(r"\bhow\s+(old|many|much|long|far|big|large|often)\b", low)
    if m:
        if m.group(1) == "old":
            return "age", frozenset({AGE, "CARDINAL", "DATE"}), None
        if m.group(1) == "long":
            return "number", frozenset({"DATE", "TIME", "QUANTITY", "CARDINAL"}), None
        return "number", NUMBER_TYPES, None
    if re.search(r"\bwhat\s+(?:percentage|percent|proportion|share|number|amount)\b", low):
        return "number", NUMBER_TYPES, None
    if re.search(r"\b(?:what|which)\s+age\b|\bage\s+of\b|\bwhat\s+is\s+\S+\s+age\b", low):
        return "age", frozenset({AGE, "CARDINAL", "DATE"}), None
    if wh == "when":
        return "date", TIME_TYPES, None
    if wh == "where":
        return "place", PLACE_TYPES, None
    if wh == "why":
        return "reason", frozenset({REASON}), None
    if wh == "how" and re.search(r"\bhow\s+" + _AUX + r"\b.*\b(?:" + _AS_VERBS + r")\w*\b", low):
        return "manner", frozenset({DESCRIPTION}), None
    if wh == "what" and re.search(r"\b(?:do|done|doing)\b(?:\s+(?:to|with|about|for)\b.*)?\s*[?.!]*$", low):
        return "action", frozenset({CLAUSE}), None
    if re.search(r"\bmean(?:s|t|ing)?\b|\bstand\s+for\b|\bcalls?\s+(?:him|her|them)sel", low):
        return "name", frozenset({SPAN}), None
    if re.search(r"\b(?:called|named|known\s+as|nicknamed|alias)\b", low) and wh in (
        "what",
        "which",
    ):
        return "name", frozenset({SPAN, "PERSON", "ORG"}), None
    m = re.search(r"\b(?:what|which)\s+(?:(?:is|was|are|were)\s+)?(?:the\s+)?(\w+)", low)
    if m and wh in ("what", "which") and m.group(1) not in _TYPE_NOUNS:
        # "which former rebel enclave", "which messaging app": the noun after two modifiers.
        after = low[m.start(1) :].split()[:3]
        noun = next((w for w in after if w in _TYPE_NOUNS), None)
        m = re.search(r"\b(" + noun + r")\b", low) if noun else m
    if m and wh in ("what", "which") and m.group(1) in _TYPE_NOUNS:
        kind, types = _TYPE_NOUNS[m.group(1)]
        if kind == "person":
            types = PERSON_TYPES
        if kind == "name":
            types = frozenset({SPAN, "PERSON", "ORG"})
        return kind, types, m.group(1)
    m = re.search(r"\b(?:in|on|at|during)\s+(?:what|which)\s+(\w+)", low)
    if m and m.group(1) in _TYPE_NOUNS:
        kind, types = _TYPE_NOUNS[m.group(1)]
        return kind, types, m.group(1)
    if wh in ("who", "whom", "whose"):
        return "person", PERSON_TYPES, None
    return "other", frozenset(), None


def _terms(q: str, type_noun: str | None) -> tuple[KeyTerm, ...]:
    terms: list[KeyTerm] = []
    seen: set[str] = set()
    words = [_POSSESSIVE_RE.sub("", m.group(0)) for m in _WORD_RE.finditer(q)]
    for i, word in enumerate(words):
        # Hyphenated words match spaCy's split tokens: "al-Haddad" -> "Haddad".
        parts = [p for p in word.split("-") if len(p) > 2] if "-" in word else [word]
        for raw in parts:
            low = raw.lower()
            if not raw or low in STOPWORDS or (len(low) < 2 and not low.isdigit()):
                continue
            # A capital (past the question's first word), an acronym or a digit marks a name.
            is_name = any(c.isupper() for c in raw) and (i > 0 or low not in _IMPERATIVES)
            is_name = is_name or any(c.isdigit() for c in raw)
            key = low if is_name else stem(low)
            if key in seen:
                continue
            seen.add(key)
            if low == type_noun:
                terms.append(KeyTerm(raw, key, TYPE_WEIGHT, False, is_type=True))
            else:
                terms.append(KeyTerm(raw, key, NAME_WEIGHT if is_name else WORD_WEIGHT, is_name))
    return tuple(terms)


def analyze(question: str) -> QuestionAnalysis:
    """Classify `question`; a blank question gives kind "other" and no terms."""
    q = " ".join(question.split())
    low = q.lower()
    m = re.search(r"\b(who|whom|whose|when|where|why|which|what|how)\b", low)
    wh = m.group(1) if m else ""
    kind, types, type_noun = _types_for(q, wh)
    definition, subject = False, None
    d = _DEFINITION_RE.match(q)
    if d and kind in ("person", "other"):
        subj = d.group("subj")
        words = subj.split()
        head = _POSSESSIVE_RE.sub("", words[-1]) if words else ""
        subj = re.sub(r"^(?:the|a|an)\s+", "", subj, flags=re.IGNORECASE)
        is_verbal = bool(re.search(r"\b\w+ing\b|\b" + _AUX + r"\b", subj, re.IGNORECASE))
        is_verbal = is_verbal or bool(re.search(r"\b[a-z]+ed\b", subj)) or _stranded(q) is not None
        # "Who is X?" with a named X asks for a description; "Who is the commander?" for a name.
        named = any(c.isupper() for c in head)
        if not is_verbal and (named or d.group("wh").lower() == "what"):
            definition, subject = True, subj.strip(" \"'“”")
            kind = "definition"
            types = frozenset({DESCRIPTION}) if named else frozenset({DESCRIPTION, SPAN})
    k = _KIND_OF_RE.match(q)
    if k:
        definition, subject, kind = True, k.group("subj").strip(" \"'“”"), "definition"
        types = frozenset({DESCRIPTION})
    terms = _terms(q, type_noun)
    return QuestionAnalysis(
        question=question,
        wh=wh,
        kind=kind,
        answer_types=types,
        terms=terms,
        definition=definition,
        subject=subject,
        role=None if definition else _role(low),
        stranded=_stranded(q),
        name_groups=_name_groups(q, terms),
        focus=_focus(q),
        category=k.group("noun").lower() if k else None,
    )


def _focus(q: str) -> str | None:
    """The noun a count or a name is asked of: "how many children", "the name of the girl"."""
    low = q.lower()
    m = re.search(r"\bhow\s+many\s+(?:[a-z\-]+\s+)?([a-z\-]+)", low)
    if m and m.group(1) not in STOPWORDS:
        words = low[m.start() :].split()[2:4]
        # "how many government soldiers": the head is the last noun before a verb or auxiliary.
        head = m.group(1)
        if len(words) == 2 and re.fullmatch(_AUX + r"|did|took|live|were|are", words[1]) is None:
            head = words[1].strip("?.,!")
        elif words:
            head = words[0].strip("?.,!")
        return stem(head)
    m = re.search(
        r"\bname\s+of\s+(?:(?:the|a|an|his|her|their)\s+)?(?:[\w\-]+['’]s?\s+)?(\w+)(?:\s+(\w+))?", q
    )
    if not m:
        return None
    head = m.group(1)
    if head[0].isupper() and m.group(2) and m.group(2).islower():
        head = m.group(2)  # "the Kent resident": the noun after the name
    return stem(head.lower()) if head.islower() and head not in STOPWORDS else None


def _role(low: str) -> str | None:
    """Which argument of the question's verb the answer fills."""
    m = re.match(r"\s*(?:who|what|which\s+\w+)\s+(\w+)", low)
    if not m:
        return None
    nxt = m.group(1)
    if nxt in ("did", "does", "do", "will", "would", "can", "could", "should", "has", "have"):
        return "object"
    if re.fullmatch(_AUX, nxt):
        # "Who was arrested by HTS?" asks for the subject; "Who is X?" for neither.
        after = low[m.end() :].split()
        if re.search(r"\b(?:of|for)\s+\w+ing\s*[?.!]*$", low):
            return "object"  # "Who is X accused of kidnapping?": the one kidnapped
        return "subject" if after and after[0].endswith("ed") else None
    return "subject"


def _stranded(q: str) -> str | None:
    m = re.search(r"\b(of|by|for|to|with|from|about|on|in|at|into|against)\s*[?.!]*\s*$", q)
    return m.group(1).lower() if m else None


def _name_groups(q: str, terms: tuple[KeyTerm, ...]) -> tuple[tuple[int, ...], ...]:
    """Runs of name terms written next to each other in the question ("Anna Petrova")."""
    groups: list[list[int]] = []
    last_end = -10
    for k, term in enumerate(terms):
        if not term.is_name:
            last_end = -10
            continue
        m = re.search(re.escape(term.text), q)
        if m is None:
            continue
        gap = q[last_end : m.start()] if last_end >= 0 else "x"
        if groups and re.fullmatch(r"[\s\-]*(?:al|el|de|la|le|van|von|bin|ibn)?[\s\-]*", gap):
            groups[-1].append(k)
        else:
            groups.append([k])
        last_end = m.end()
    return tuple(tuple(g) for g in groups if len(g) > 1)
