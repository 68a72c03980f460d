from __future__ import annotations

import time

import pytest

from rag.aliases import AliasPair, alias_pairs, asks_for_a_name, name_words, repeats_question, whole_name

SEED = "whose leader, Oumar Diaby, alias Omar Omsen, they accuse of refusing to surrender."
DIABY = AliasPair(("oumar", "diaby"), ("omar", "omsen"))


def test_name_words_keep_capitalized_words_and_names_with_particles() -> None:
    assert name_words("Oumar Diaby’s son Jibril al-Mouhajer, 50, in 2016") == {
        "oumar",
        "diaby",
        "jibril",
        "al-mouhajer",
    }
    assert name_words("a girl") == frozenset()


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        (SEED, DIABY),
        ("Oumar Diaby (alias Omar Omsen) leads the camp.", DIABY),
        (
            "Abu Bakr al-Baghdadi, whose real name is Ibrahim Awad, died.",
            AliasPair(("abu", "bakr", "al-baghdadi"), ("ibrahim", "awad")),
        ),
        (
            "the rapper Marshall Mathers, better known as Eminem",
            AliasPair(("marshall", "mathers"), ("eminem",)),
        ),
        ("Carlos, nicknamed ‘The Jackal’, was", AliasPair(("carlos",), ("jackal",))),
        ("Ömer Çelik, alias Abu Omar, said", AliasPair(("ömer", "çelik"), ("abu", "omar"))),
        ("Osama bin Laden, also known as the Sheikh, hid.", None),  # lower-case "the": no name
        ("Trump dubbed Kim Jong Un 'Rocket Man'.", None),  # a verb, not an aside: no comma
        ("Oumar Diaby, alias Omar Omsen\n\nSyrian forces. The camp", DIABY),  # not across lines
    ],
)
def test_alias_pairs_link_the_two_names(text: str, pair: AliasPair | None) -> None:
    assert alias_pairs([text]) == ([pair] if pair else [])


def test_alias_pairs_take_linear_time_on_long_runs_of_capitals() -> None:
    for text in ("NATO " * 4000, "A" * 20000, "Oumar Diaby, alias " * 1000, "A, alias B " * 2000):
        started = time.perf_counter()
        alias_pairs([text])
        assert time.perf_counter() - started < 1.0, text[:20]  # quadratic took 2-12 s


def test_repeats_question_by_name_or_alias() -> None:
    pairs = alias_pairs([SEED])
    assert repeats_question("Who accused Diaby of kidnapping a girl?", "Omar Omsen", pairs)
    assert repeats_question("What is the name of Omsen's son?", "Oumar Diaby", pairs)
    assert repeats_question("What is the name of Oumar Diaby's wife?", "Oumar Diaby, alias Omar Omsen", pairs)
    assert repeats_question("Who did Diaby meet?", "Diaby", [])  # the question's own name
    # The surname names the whole person: his first name too, under either of his names.
    assert repeats_question("What is the name of Omsen's son?", "Oumar Diaby, alias Omar", pairs)
    assert repeats_question("Where did Oumar Diaby's son play?", "Omar Omsen", pairs)
    # Its names and words of the question: the question's own phrase, not its answer.
    assert repeats_question("What is the name of Omsen's son?", "Oumar Diaby’s son", pairs)
    assert repeats_question("Who are the French jihadists sheltering with?", "the French jihadists", [])
    # A title before the surname names no one else.
    assert repeats_question("What did Mr. Diaby say?", "Omar Omsen", pairs)
    assert repeats_question("Whom did President Omsen meet?", "Oumar Diaby", pairs)


def test_the_subjects_own_full_name_repeats_a_question_that_names_him_by_surname() -> None:
    question = "Who did General Bakir say Diaby was using as human shields?"
    assert repeats_question(question, "Ghassan Bakir", [])
    assert repeats_question(question, "General Ghassan Bakir", [])
    assert not repeats_question(question, "civilians", [])
    assert not repeats_question("Who did Ali Bakir meet?", "Ghassan Bakir", [])  # another first name
    assert not repeats_question("What is General Bakir's first name?", "Ghassan Bakir", [])  # asks for it
    assert not repeats_question("Who is Bakir?", "Ghassan Bakir", [])


def test_a_surname_two_people_bear_brings_in_neither_ones_first_name() -> None:
    family = alias_pairs([SEED, "His son Jibril Diaby, alias Abu Hamza, fought."])
    assert not repeats_question("Who accused Diaby?", "Jibril Diaby", family)
    assert not repeats_question("Who accused Diaby?", "Oumar Diaby", family)
    assert repeats_question("Who accused Oumar Diaby?", "Omar Omsen", family)  # spelled out in full


def test_a_surname_links_only_as_a_name() -> None:
    pairs = alias_pairs(["Condoleezza Rice, nicknamed Condi, spoke."])
    assert not repeats_question("Who grows rice?", "Condi", pairs)
    assert repeats_question("Whom did Rice meet?", "Condi", pairs)


@pytest.mark.parametrize(
    ("passage", "question", "answer"),
    [
        (SEED, "Who leads the camp?", "Omar Omsen"),
        (SEED, "Who accused Diaby?", "Syrian government forces"),
        (SEED, "Who accused Diaby?", "a girl"),  # no name: not judged here
        (SEED, "Who is Jibril al-Mouhajer?", "Oumar Diaby’s son"),
        (SEED, "What is the name of Omsen's son?", "Oumar Diaby’s eldest son"),  # "eldest" is new
        (SEED, "Who accused Diaby?", "the Franco-Senegalese leader Omar Omsen"),  # says more
        ("", "What kind of T cells modulate it?", "regulatory T cells"),
        # Linked only by the surname the question uses, not a shared first word or title.
        ("His son Jibril Diaby, alias Abu Hamza, fought.", "Who is Oumar Diaby's son?", "Jibril Diaby"),
        # Another first name before the surname: another person of that family, not linked.
        ("His son Jibril Diaby, alias Abu Hamza, fought.", "Whom did Oumar Diaby's son marry?", "Abu Hamza"),
        (
            "His son Jibril Diaby, alias Abu Hamza, fought.",
            "Whom did Oumar Diaby's son marry?",
            "Jibril Diaby",
        ),
        (
            "Abu Bakr al-Baghdadi, whose real name is Ibrahim Awad",
            "Who did Abu Mohammad pledge to?",
            "Abu Bakr",
        ),
        (
            "Former Prime Minister Boris Johnson, dubbed BoJo",
            "Who succeeded Prime Minister May?",
            "Boris Johnson",
        ),
        ("On Tuesday Oumar Diaby, alias Omar Omsen", "Who was arrested on Tuesday?", "Oumar Diaby"),
        # The question asks for the other name, asks who someone is, or names the choices.
        (SEED, "What alias is Oumar Diaby also known by?", "Omar Omsen"),
        (SEED, "What is the real name of the jihadist leader called Omar Omsen?", "Oumar Diaby"),
        (SEED, "What nickname does Diaby go by?", "Omar Omsen"),
        (SEED, "Who is Omar Omsen?", "Oumar Diaby"),
        ("Hayat Tahrir al-Sham, also known as HTS", "What does HTS stand for?", "Hayat Tahrir al-Sham"),
        ("Marshall Mathers, better known as Eminem", "What is Eminem's birth name?", "Marshall Mathers"),
        ("Carlos, nicknamed ‘The Jackal’", "Who was dubbed the Jackal?", "Carlos"),
        ("", "Which team won, Arsenal or Chelsea?", "Chelsea"),
    ],
)
def test_not_a_repeat(passage: str, question: str, answer: str) -> None:
    assert not repeats_question(question, answer, alias_pairs([passage]))


def test_asks_for_a_name() -> None:
    for question in (
        "What alias ...?",
        "What is his real name?",
        "What does HTS stand for?",
        "What name did he adopt?",
    ):
        assert asks_for_a_name(question), question
    assert not asks_for_a_name("What is the name of Omsen's son?")  # the son's name is not the father's


@pytest.mark.parametrize(
    ("text", "part", "name"),
    [
        ("said General Ghassan Bakir, who", "Ghassan", "General Ghassan Bakir"),
        ("said General Ghassan Bakir, who", "Bakir", "General Ghassan Bakir"),
        ("said General Ghassan Bakir, who", "General Ghassan Bakir", None),  # the whole name
        ("led by Ahmad al-Chareh in Idlib", "al-Chareh", "Ahmad al-Chareh"),
        ("the Ghassan brigade met", "brigade", None),  # not a name
        ("Ghassan. Bakir spoke", "Ghassan", None),  # a sentence apart
        ("and Abdellatif Kechiche's L'Esquive won", "Abdellatif Kechiche", None),  # a possessive ends it
        ("and Abdellatif Kechiche's L'Esquive won", "Kechiche", "Abdellatif Kechiche"),
        ("and Abdellatif Kechiche's L'Esquive won", "L'Esquive", None),
        ("by the Jones' New Deal plan", "Deal", "New Deal"),
    ],
)
def test_whole_name_is_the_longer_name_a_span_is_part_of(text: str, part: str, name: str | None) -> None:
    start = text.index(part)
    assert whole_name(text, start, start + len(part)) == name
