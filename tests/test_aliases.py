from __future__ import annotations

import pytest

from rag.aliases import alias_groups, asks_for_a_name, name_words, repeats_question

SEED = "whose leader, Oumar Diaby, alias Omar Omsen, they accuse of refusing to surrender."


def test_name_words_keep_capitalized_words_and_names_with_particles() -> None:
    assert name_words("Oumar Diaby’s son Jibril al-Mouhajer, 50, in 2016") == {
        "oumar",
        "diaby",
        "jibril",
        "al-mouhajer",
    }
    assert name_words("a girl") == frozenset()


@pytest.mark.parametrize(
    ("text", "group"),
    [
        (SEED, {"oumar", "diaby", "omar", "omsen"}),
        ("Osama bin Laden, also known as the Sheikh, hid.", None),  # lower-case "the": no name
        (
            "Abu Bakr al-Baghdadi, whose real name is Ibrahim Awad, died.",
            {"abu", "bakr", "al-baghdadi", "ibrahim", "awad"},
        ),
        ("the rapper Marshall Mathers, better known as Eminem", {"marshall", "mathers", "eminem"}),
        ("Carlos, nicknamed “The Jackal”", {"carlos", "the", "jackal"}),
    ],
)
def test_alias_groups_link_the_two_names(text: str, group: set[str] | None) -> None:
    assert alias_groups([text]) == ([frozenset(group)] if group else [])


def test_a_name_does_not_run_across_lines_or_sentences() -> None:
    groups = alias_groups(["Oumar Diaby, alias Omar Omsen\n\nSyrian forces. The camp"])
    assert groups == [frozenset({"oumar", "diaby", "omar", "omsen"})]


def test_repeats_question_by_name_or_alias_but_not_when_the_name_is_asked_for() -> None:
    groups = alias_groups([SEED])
    assert repeats_question("Who accused Diaby of kidnapping a girl?", "Omar Omsen", groups)
    assert repeats_question(
        "What is the name of Oumar Diaby's wife?", "Oumar Diaby, alias Omar Omsen", groups
    )
    assert repeats_question("Who did Diaby meet?", "Diaby", [])  # the question's own name
    assert not repeats_question("Who leads the camp?", "Omar Omsen", groups)
    assert not repeats_question("Who accused Diaby?", "Syrian government forces", groups)
    assert not repeats_question("Who accused Diaby?", "a girl", groups)  # no name: not judged here
    assert not repeats_question("Who is Jibril al-Mouhajer?", "Oumar Diaby’s son", groups)
    # A name of the question beside a new word is an answer: "What kind of T cells ...?"
    assert not repeats_question("What kind of T cells modulate it?", "regulatory T cells", [])
    assert not repeats_question("Who accused Diaby?", "the Franco-Senegalese leader Omar Omsen", groups)
    for question in (
        "What alias is Oumar Diaby also known by?",
        "What is the real name of the jihadist leader called Omar Omsen?",
        "What nickname does Diaby go by?",
    ):
        assert asks_for_a_name(question)
        assert not repeats_question(question, "Omar Omsen", groups)
