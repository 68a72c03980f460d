"""Swapped-name questions: near-miss "no answer" examples for training the span reader."""

from __future__ import annotations

import random

import pytest

from rag.squad import SquadQuestion
from rag.swaps import Mention, question_mentions, swap_pairs, swapped_question
from rag.training import training_windows

PARA = "In 2016 the Americans designated Diaby a terrorist. He lives in Harim."
Q = SquadQuestion(
    "q1",
    "When did the Americans designate Diaby a terrorist?",
    ("2016",),
    "d",
    0,
    PARA,
    (PARA.index("2016"),),
)
AMERICANS = Mention("Americans", "NORP", Q.question.index("Americans"), Q.question.index("Americans") + 9)


def _mention(text: str, label: str) -> Mention:
    return Mention(text, label, 0, len(text))


def test_a_name_the_paragraph_says_is_swapped_for_one_it_never_says() -> None:
    pool = [_mention("French", "NORP"), _mention("Americans", "NORP"), _mention("Paris", "GPE")]
    swapped = swapped_question(Q, [AMERICANS], pool, random.Random(0))
    assert swapped == "When did the French designate Diaby a terrorist?"


def test_no_swap_without_a_grounded_mention_or_a_foreign_replacement() -> None:
    rng = random.Random(0)
    # The replacement is said by the paragraph too ("Harim"), has another label, or contains the original.
    pool = [_mention("Harim", "NORP"), _mention("Paris", "GPE"), _mention("Native Americans", "NORP")]
    assert swapped_question(Q, [AMERICANS], pool, rng) is None
    unsaid = Mention("Germans", "NORP", 0, 7)  # the question's mention is not in the paragraph
    assert swapped_question(Q, [unsaid], [_mention("French", "NORP")], rng) is None
    assert swapped_question(Q, [], [_mention("French", "NORP")], rng) is None


def test_swap_pairs_take_about_the_share_asked_and_are_seeded() -> None:
    pool = {"d": [_mention(name, "NORP") for name in ("French", "Britons", "Germans")]}
    pairs = swap_pairs([Q] * 200, [[AMERICANS]] * 200, pool, share=0.3, seed=4)
    assert 40 < len(pairs) < 80
    assert all(p == PARA and "Americans" not in s for s, p in pairs)
    assert pairs == swap_pairs([Q] * 200, [[AMERICANS]] * 200, pool, share=0.3, seed=4)
    assert swap_pairs([Q] * 20, [[AMERICANS]] * 20, pool, share=0.0, seed=4) == []


def test_question_mentions_are_spacy_entities_with_offsets() -> None:
    from rag.reader import load_spacy

    question = "When did Barack Obama visit Paris in 2009?"
    [found] = question_mentions(load_spacy(), [question])
    assert {(m.text, m.label) for m in found} >= {("Barack Obama", "PERSON"), ("Paris", "GPE")}
    assert all(question[m.start : m.end] == m.text for m in found)


def test_swapped_pairs_become_no_answer_windows() -> None:
    from transformers import AutoTokenizer

    from embeddings.model_files import verified_model_dir

    tok = AutoTokenizer.from_pretrained(verified_model_dir())
    swapped = [("When did the French designate Diaby a terrorist?", PARA)] * 3
    windows, _ = training_windows(tok, [Q], 128, 32, swapped=swapped)
    assert len(windows) == 4
    assert windows[0].start > 0 and all(w.start == 0 and w.end == 0 for w in windows[1:])
    assert all("french" in tok.decode(w.input_ids) for w in windows[1:])


@pytest.mark.parametrize("rule", [1, 2])
def test_train_reader_swaps_names_from_other_questions_of_the_same_article(rule: int) -> None:
    from rag.training import _swapped

    para2 = "The French team won the cup in Paris."
    other = SquadQuestion(
        "q2", "Where did the French team win?", ("Paris",), "d", 1, para2, (para2.index("Paris"),)
    )
    elsewhere = SquadQuestion("q3", "Did the Germans play?", ("no",), "e", 0, "no", (0,))
    pairs = _swapped([Q], [Q, other, elsewhere], share=1.0, seed=0, rule=rule)
    # "Americans" (said by Q's paragraph) becomes "French", found in a question of the same
    # article; "Germans" belongs to another article.
    assert pairs == [("When did the French designate Diaby a terrorist?", PARA)]


def _question(text: str, paragraph: str) -> SquadQuestion:
    return SquadQuestion("q", text, ("x",), "d", 0, paragraph, (0,))


def test_rule_2_grounds_a_mention_by_whole_words_only() -> None:
    # "US" is inside "Thus" but never said as a word: rule 1 swaps it, rule 2 does not.
    q = _question("When did the US sign it?", "Thus the treaty was signed in 1990.")
    us = Mention("US", "GPE", q.question.index("US"), q.question.index("US") + 2)
    pool = [_mention("France", "GPE")]
    assert swapped_question(q, [us], pool, random.Random(0), rule=1) == "When did the France sign it?"
    assert swapped_question(q, [us], pool, random.Random(0), rule=2) is None


def test_rule_2_rejects_replacements_that_share_a_word_or_only_differ_in_spelling() -> None:
    q = _question("What did Barack Obama sign?", "Barack Obama signed the Américains’ treaty in Paris.")
    obama = Mention("Barack Obama", "PERSON", 9, 21)
    rng = random.Random(0)
    for same in ("President Obama", "Barack", "Obama's", "BARACK OBAMA"):
        assert swapped_question(q, [obama], [_mention(same, "PERSON")], rng, rule=2) is None
    # Said by the paragraph in another case, with accents, a curly quote or in the plural.
    for said in ("PARIS", "Americain", "Américain's", "Treaties"):
        assert swapped_question(q, [obama], [_mention(said, "PERSON")], rng, rule=2) is None
    assert swapped_question(q, [obama], [_mention("Angela Merkel", "PERSON")], rng, rule=2) == (
        "What did Angela Merkel sign?"
    )


def test_rule_2_never_swaps_in_another_name_the_article_gives_the_same_person() -> None:
    from rag.aliases import alias_pairs

    q = _question("Who did Awad appoint?", "Awad appointed a deputy in 2014.")
    awad = Mention("Awad", "PERSON", 8, 12)
    pool = [_mention("al-Baghdadi", "PERSON")]
    aliases = alias_pairs(["Abu Bakr al-Baghdadi, whose real name is Ibrahim Awad, spoke."])
    assert swapped_question(q, [awad], pool, random.Random(0), rule=2) == "Who did al-Baghdadi appoint?"
    assert swapped_question(q, [awad], pool, random.Random(0), rule=2, aliases=aliases) is None


def test_rule_2_drops_a_possessive_of_the_replacement() -> None:
    q = _question("What is Newton's law?", "Newton's law of gravity.")
    newton = Mention("Newton", "PERSON", 8, 14)
    swapped = swapped_question(q, [newton], [_mention("Eddington's", "PERSON")], random.Random(0), rule=2)
    assert swapped == "What is Eddington's law?"


def test_an_unknown_swap_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown swap rule 3"):
        swapped_question(Q, [AMERICANS], [_mention("French", "NORP")], random.Random(0), rule=3)
