"""Hybrid reader: the trained span model proposes, the heuristic reader vouches.

The neural reader extracts better spans (paraphrases, clause answers); the heuristic reader
knows better when the articles do not say (its score needs the question's names and specific
words in the answer's sentence, and a span of the expected type). Each answer gets

    score = NEURAL_WEIGHT * support + (1 - NEURAL_WEIGHT) * vouch

`support` = min(1, sum over the span model's answers n of n.score * token_f1(answer, n)): the
span model's probability mass on this answer and on the spans that overlap it. The span model
splits its mass between nested variants of one answer ("commander of the forces", "the
commander of the forces of Idlib"); pooling them by shared words counts that mass once, where
spans scattered over unrelated places (the mark of a question the text does not answer) add
little. `vouch` = max over the heuristic's candidates h of h.score * token_f1(answer, h): the
heuristic agrees with a span when it proposed the same words, wherever in the articles.
Candidates of either reader are kept; the offsets are those of the reader that proposed the span
(the neural one when both did), so every answer is a verbatim span of its cited passage.

An answer made only of names, each one the question already uses or another name the passages
give it ("Ibrahim Awad" for "Who did al-Baghdadi appoint?" beside "Abu Bakr al-Baghdadi, whose
real name is Ibrahim Awad"), keeps REPEAT_SHARE of its score: it names the question's subject, not
its answer. So does a part of such a name ("John" of "General John Smith" for "Who did General
Smith accuse?"). Questions that ask for a name, "Who is X?" and either-or questions are
exempt (rag.aliases says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from rag.aliases import AliasPair, alias_pairs, repeats_question, whole_name
from rag.answer import Answer
from rag.evaluation import f1_tokens
from rag.evaluation import normalize_answer as official_normalize
from rag.question import analyze
from rag.reader import Reader, normalize_answer
from rag.retrieval import Hit
from rag.spans import TYPED_KINDS

NEURAL_WEIGHT = 0.5  # equal say; not fitted to the fixed question set
NEURAL_PASSAGES = 3  # the span model reads the best few passages (its cost grows with each one)
REPEAT_SHARE = 0.3  # as the heuristic's floor for a span that repeats the question (rag.spans)
# Shared by every HybridReader: a few so that concurrent chat sessions do not queue behind one.
_SPAN_MODEL_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="span-model")


class HybridReader:
    """Combines a span model and the heuristic reader (both implement `Reader`)."""

    def __init__(
        self,
        neural: Reader,
        heuristic: Reader,
        neural_weight: float = NEURAL_WEIGHT,
        neural_passages: int = NEURAL_PASSAGES,
    ) -> None:
        if not 0.0 <= neural_weight <= 1.0:
            raise ValueError(f"neural_weight must be between 0 and 1, got {neural_weight}")
        if neural_passages < 1:
            raise ValueError(f"neural_passages must be >= 1, got {neural_passages}")
        self.neural_passages = neural_passages
        self.neural = neural
        self.heuristic = heuristic
        self.neural_weight = neural_weight

    def read(self, question: str, hits: Sequence[Hit]) -> list[Answer]:
        # The span model runs in ONNX Runtime, which releases the GIL: it reads on a worker thread
        # while this thread parses and scores sentences, so the two costs overlap.
        proposed_later = _SPAN_MODEL_THREADS.submit(self.neural.read, question, hits[: self.neural_passages])
        vouchers = [a for a in self.heuristic.read(question, hits) if a.text]
        proposed = proposed_later.result()
        # SQuAD tokens of every text, computed once: each answer is compared with every voucher.
        tokens = {t: official_normalize(t).split() for a in (*proposed, *vouchers) if (t := a.text)}
        neural_tokens = [(tokens[a.text], a.score) for a in proposed if a.text]
        scored: dict[str, Answer] = {}
        for answer in proposed:
            if answer.text is None:
                continue
            mine = tokens[answer.text]
            vouch = max((h.score * f1_tokens(mine, tokens[h.text]) for h in vouchers if h.text), default=0.0)
            _keep(scored, answer, self._mix(_support(mine, neural_tokens), vouch))
        for h in vouchers:
            assert h.text is not None
            _keep(scored, h, self._mix(_support(tokens[h.text], neural_tokens), h.score))
        pairs = alias_pairs(hit.passage.text for hit in hits)
        # A count, an age or a date is never part of a name ("Six" of "Six John Smith penalties").
        names = hits if analyze(question).kind not in TYPED_KINDS else ()
        answers = [
            replace(a, score=round(a.score * REPEAT_SHARE, 4)) if _repeats(question, a, names, pairs) else a
            for a in scored.values()
        ]
        return sorted(answers, key=lambda a: -a.score)

    def _mix(self, support: float, vouch: float) -> float:
        return self.neural_weight * support + (1 - self.neural_weight) * vouch


def _repeats(question: str, answer: Answer, hits: Sequence[Hit], pairs: Sequence[AliasPair]) -> bool:
    """The answer names the question's subject: by itself, or as part of a longer name in its
    passage among `hits` ("John" of "General John Smith" for "Who did General Smith accuse?")."""
    if repeats_question(question, answer.text or "", pairs):
        return True
    for hit in hits:
        p = hit.passage
        if answer.doc_id == p.doc_id and answer.start is not None and answer.end is not None:
            if p.start <= answer.start and answer.end <= p.end:
                name = whole_name(p.text, answer.start - p.start, answer.end - p.start)
                return name is not None and repeats_question(question, name, pairs)
    return False


def _support(mine: list[str], proposed: Sequence[tuple[list[str], float]]) -> float:
    """The span model's probability mass on `mine` and on the spans that share its words."""
    return min(1.0, sum(score * f1_tokens(mine, theirs) for theirs, score in proposed))


def _keep(scored: dict[str, Answer], answer: Answer, score: float) -> None:
    """Keep the best-scored answer per normalized text (the first proposer wins ties)."""
    assert answer.text is not None
    key = normalize_answer(answer.text)
    if key and (key not in scored or scored[key].score < score):
        scored[key] = replace(answer, score=round(min(max(score, 0.0), 1.0), 4))
