"""Question analysis: answer types, definition subjects, key terms. No model needed."""

from __future__ import annotations

import time

import pytest

from rag.question import AGE, DESCRIPTION, REASON, SPAN, analyze, stem


@pytest.mark.parametrize(
    ("question", "kind", "label"),
    [
        ("Who leads the French jihadists?", "person", "PERSON"),
        ("Who is the commander of the security forces?", "person", "PERSON"),
        ("When did the clashes take place?", "date", "DATE"),
        ("What year was Diaby classified as a terrorist?", "date", "DATE"),
        ("On what date did the conflict end?", "date", "DATE"),
        ("Where is the camp?", "place", "GPE"),
        ("In which region is the camp located?", "place", "LOC"),
        ("Which country classified him as a terrorist?", "place", "GPE"),
        ("How many people are part of his group?", "number", "CARDINAL"),
        ("How much money did they pay?", "number", "MONEY"),
        ("What percentage of voters agreed?", "number", "PERCENT"),
        ("How old is Diaby?", "age", AGE),
        ("What does Firqat al Ghouraba mean?", "name", SPAN),
        ("What is the name of the group?", "name", SPAN),
        ("What does his son call himself?", "name", SPAN),
        ("Why did the forces accuse him?", "reason", REASON),
        ("Which newspaper did the prosecutor speak to?", "org", "ORG"),
        ("What nationality is the preacher?", "nationality", "NORP"),
    ],
)
def test_answer_type(question: str, kind: str, label: str) -> None:
    qa = analyze(question)
    assert qa.kind == kind
    assert label in qa.answer_types


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("Who is Jibril al-Mouhajer?", "Jibril al-Mouhajer"),
        ("Who was Oumar Diaby?", "Oumar Diaby"),
        ("What is the OSDH?", "OSDH"),
        ("What is HTS?", "HTS"),
    ],
)
def test_definition_questions_name_their_subject(question: str, subject: str) -> None:
    qa = analyze(question)
    assert qa.definition and qa.kind == "definition"
    assert qa.subject == subject
    assert DESCRIPTION in qa.answer_types


@pytest.mark.parametrize(
    "question",
    [
        "Who is the French president?",  # a role: the answer is a name, not a description
        "Who is leading the coalition?",
        "What was Oumar Diaby suspected of?",
        "What did Diaby's son tell AFP?",
    ],
)
def test_not_definitions(question: str) -> None:
    assert not analyze(question).definition


def test_names_weigh_more_than_words() -> None:
    qa = analyze("Why did Syrian forces accuse Oumar Diaby's son?")
    weights = {t.text: t.weight for t in qa.terms}
    assert weights["Diaby"] > weights["accuse"]
    assert "Syrian" in {t.text for t in qa.names}
    assert "did" not in weights and "Why" not in weights
    assert qa.name_groups == ((3, 4),)  # "Oumar Diaby" is one name


def test_hyphenated_names_split_like_spacy_tokens() -> None:
    terms = {t.stem for t in analyze("Who is Jibril al-Mouhajer?").terms}
    assert terms == {"jibril", "mouhajer"}


def test_type_noun_is_a_weak_anchor() -> None:
    qa = analyze("Which newspaper did Olivier Christen speak to?")
    (noun,) = [t for t in qa.terms if t.is_type]
    assert noun.text == "newspaper" and noun.weight < 1


def test_roles_and_stranded_prepositions() -> None:
    assert analyze("Who controlled the enclave?").role == "subject"
    assert analyze("Who did Ahmad al-Chareh overthrow?").role == "object"
    assert analyze("Who was HTS led by?").stranded == "by"
    assert analyze("What was Diaby suspected of?").stranded == "of"


def test_stem_matches_inflections() -> None:
    assert stem("arrested") == stem("arrest") == stem("arrests")
    assert stem("kidnapped") == stem("kidnapping")
    assert stem("refused") == stem("refusing") == stem("refuse")
    assert stem("Diaby’s") == "diaby"


@pytest.mark.parametrize("question", ["", "   ", "?!"])
def test_blank_question(question: str) -> None:
    qa = analyze(question)
    assert qa.kind == "other" and qa.terms == () and not qa.definition


def test_fast() -> None:
    questions = ["Who is Jibril al-Mouhajer?", "How many people are part of Diaby's group?"] * 50
    started = time.perf_counter()
    for q in questions:
        analyze(q)
    assert (time.perf_counter() - started) / len(questions) < 0.005
