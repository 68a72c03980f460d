"""Follow-up questions: pronouns and "And his son?" resolved from the chat history (rag.followup)."""

from __future__ import annotations

import pytest

from rag.answer import answer_json
from rag.followup import Rewrite, Turn, rewrite

LEADS = "Who leads the French jihadists?"
TITLE_SENTENCE = (
    "Syrian government forces confront French jihadists led by Oumar Diaby in the northwest of the country"
)
AGE_SENTENCE = (
    "Syrian government forces accused Diaby, 50, of kidnapping a girl and refusing to surrender "
    "to authorities, and later announced they had surrounded the camp."
)
OSDH_SENTENCE = (
    "According to Rami Abdel Rahman, director of the Syrian Observatory for Human Rights (OSDH), "
    "an NGO based in the United Kingdom but with a wide network of sources in Syria"
)
HTS_SENTENCE = (
    "Oumar Diaby had pledged allegiance to Hayat Tahrir al-Sham (HTS), which was led by Ahmad "
    "al-Chareh and controlled the rebel enclave of Idlib."
)
DIABY = [Turn(LEADS, "Oumar Diaby", TITLE_SENTENCE)]


@pytest.fixture(scope="session")
def nlp():  # type: ignore[no-untyped-def]
    from rag.reader import load_spacy

    return load_spacy()


def test_he_becomes_the_last_answer(nlp) -> None:  # type: ignore[no-untyped-def]
    result = rewrite("How old is he?", DIABY, nlp)
    assert result == Rewrite("How old is Oumar Diaby?", "How old is he?", True, "Oumar Diaby")


def test_possessive_pronoun_becomes_a_possessive(nlp) -> None:  # type: ignore[no-untyped-def]
    assert rewrite("What is his nationality?", DIABY, nlp).text == "What is Oumar Diaby's nationality?"
    assert rewrite("His son is called what?", DIABY, nlp).text == "Oumar Diaby's son is called what?"


def test_elliptical_follow_up_reuses_the_previous_question(nlp) -> None:  # type: ignore[no-untyped-def]
    history = [*DIABY, Turn("How old is Oumar Diaby?", "50", AGE_SENTENCE)]
    result = rewrite("And his son?", history, nlp)
    assert result.text == "How old is Oumar Diaby's son?"
    assert result.changed and result.referent == "Oumar Diaby"


def test_elliptical_follow_up_without_a_safe_frame(nlp) -> None:  # type: ignore[no-untyped-def]
    # "Who leads Oumar Diaby's son?" would be nonsense: the previous question's phrase is plural.
    assert rewrite("And his son?", DIABY, nlp).text == "Who is Oumar Diaby's son?"
    assert rewrite("And Jibril al-Mouhajer?", DIABY, nlp).text == "Who is Jibril al-Mouhajer?"
    assert rewrite("And the camp?", DIABY, nlp).text == "What about the camp?"
    assert not rewrite("And what else?", DIABY, nlp).changed  # a wh-word: not a noun phrase


def test_self_contained_question_is_unchanged(nlp) -> None:  # type: ignore[no-untyped-def]
    for question in ("Who is Jibril al-Mouhajer?", "How old was Diaby when he was arrested?"):
        result = rewrite(question, DIABY, nlp)
        assert result == Rewrite(question, question, False, None)


def test_no_history_or_no_answer_leaves_the_question(nlp) -> None:  # type: ignore[no-untyped-def]
    assert not rewrite("How old is he?", [], nlp).changed
    assert not rewrite("How old is he?", [Turn(LEADS, None)], nlp).changed
    assert not rewrite("And his son?", [Turn(LEADS, None)], nlp).changed


def test_previous_answer_none_falls_back_to_the_question_entities(nlp) -> None:  # type: ignore[no-untyped-def]
    history = [Turn("When was Oumar Diaby born?", None)]
    assert rewrite("Where was he arrested?", history, nlp).text == "Where was Oumar Diaby arrested?"


def test_it_and_they_resolve_to_organisations_and_groups(nlp) -> None:  # type: ignore[no-untyped-def]
    osdh = [
        Turn(
            "Who is the director of the Syrian Observatory for Human Rights?",
            "Rami Abdel Rahman",
            OSDH_SENTENCE,
        )
    ]
    assert (
        rewrite("Where is it based?", osdh, nlp).text
        == "Where is the Syrian Observatory for Human Rights based?"
    )
    hts = [Turn("Which group did Oumar Diaby pledge allegiance to?", "Hayat Tahrir al-Sham", HTS_SENTENCE)]
    assert rewrite("Who led it?", hts, nlp).text == "Who led Hayat Tahrir al-Sham?"
    assert rewrite("When was he arrested?", hts, nlp).text == "When was Oumar Diaby arrested?"
    assert rewrite("Where are they hiding?", DIABY, nlp).text == "Where are the French jihadists hiding?"


def test_she_prefers_a_female_noun_and_a_girl_becomes_the_girl(nlp) -> None:  # type: ignore[no-untyped-def]
    history = [Turn("Who is Diaby accused of kidnapping?", "a girl", AGE_SENTENCE)]
    assert rewrite("What is her name?", history, nlp).text == "What is the girl's name?"
    assert rewrite("How old is he?", history, nlp).text == "How old is Diaby?"


def test_pronoun_without_candidate_is_unchanged(nlp) -> None:  # type: ignore[no-untyped-def]
    assert not rewrite("Where is it based?", DIABY, nlp).changed  # no organisation or thing
    assert not rewrite("How old is he?", [Turn("How many people were killed?", "dozens")], nlp).changed
    assert not rewrite("Is it true?", [Turn("How many people were killed?", None)], nlp).changed


def test_expletive_it_stays_and_a_second_pronoun_is_kept(nlp) -> None:  # type: ignore[no-untyped-def]
    result = rewrite("Is it true that he kidnapped a girl?", DIABY, nlp)
    assert result.text == "Is it true that Oumar Diaby kidnapped a girl?"
    result = rewrite("When was he arrested and who released him?", DIABY, nlp)
    assert result.text == "When was Oumar Diaby arrested and who released him?"


@pytest.mark.parametrize("question", ["", "   ", "???", "123?", "Кто он?", "他多大了？"])
def test_odd_input_never_crashes(nlp, question: str) -> None:  # type: ignore[no-untyped-def]
    assert rewrite(question, DIABY, nlp) == Rewrite(question, question, False, None)


def test_blank_or_odd_history_never_crashes(nlp) -> None:  # type: ignore[no-untyped-def]
    history = [Turn("", ""), Turn("???", "   ", ""), Turn("Кто он?", "Диаби", "Диаби, 50")]
    assert not rewrite("How old is he?", history, nlp).changed


def test_answer_json_reports_the_interpretation() -> None:
    from rag.answer import Answer

    data = answer_json(Answer("How old is Oumar Diaby?", "50", 0.9, interpreted_as="How old is Oumar Diaby?"))
    assert data["interpreted_as"] == "How old is Oumar Diaby?"
    assert answer_json(Answer("Who?", None, 0.0))["interpreted_as"] is None


@pytest.mark.slow
def test_pipeline_answers_a_follow_up_about_diaby(seed_qa) -> None:  # type: ignore[no-untyped-def]
    first = seed_qa.ask(LEADS)
    assert first.text is not None and "Diaby" in first.text
    assert first.interpreted_as is None
    turn = Turn(first.question, first.text, first.sentence)
    follow_up = seed_qa.ask("When was he arrested by HTS?", history=[turn])
    assert follow_up.interpreted_as is not None and "Diaby" in follow_up.interpreted_as
    assert follow_up.question == follow_up.interpreted_as
    assert follow_up.text == "August 2020"  # "But in August 2020 he was arrested by HTS"
