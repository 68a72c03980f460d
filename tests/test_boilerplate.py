"""Boilerplate rules: page furniture goes, body sentences and crossheads stay."""

from __future__ import annotations

import pytest

from rag.boilerplate import (
    Byline,
    extract_html,
    is_byline,
    is_junk_line,
    keep_mask,
    parse_date,
    read_byline,
)


@pytest.mark.parametrize(
    "line",
    [
        "16,985FansLike",
        "2,458FollowersFollow",
        "61,453SubscribersSubscribe",
        "1.2K Followers",
        "Stay Connected",
        "Must Read",
        "Related News",
        "Related Posts",
        "Read more",
        "Read more: Storm hits the coast",
        "ADVERTISEMENT",
        "Share this",
        "Share this article",
        "Sign up to our newsletter",
        "Subscribe to our newsletter",
        "LEAVE A REPLY",
        "Please enter your comment!",
        "Please enter your name here",
        "You have entered an incorrect email address!",
        "Save my name, email, and website in this browser for the next time I comment.",
        "Tweet",
    ],
)
def test_furniture_lines_are_junk(line: str) -> None:
    assert is_junk_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "The channel now has 61,453 subscribers, up from 2,458 followers last year.",
        "Subscribers were told to read more carefully before signing.",
        "Shootings, reinforcements and fear of neighbors",
        "“They use civilians as shields”",
        "Author: A. Yes. with AFP",
        "Source: BFM TV",
        "Read more books, the minister urged.",
        "",
    ],
)
def test_body_lines_are_not_junk(line: str) -> None:
    assert not is_junk_line(line)


def test_breadcrumb_glued_to_a_truncated_title_is_dropped() -> None:
    lines = [
        "HomeWorldSyrian forces confront jihadists in the...",
        "",
        "Syrian forces confront jihadists in the northwest",
        "",
        "Body sentence.",
    ]
    assert keep_mask(lines) == [False, True, True, True, True]


def test_truncated_copy_of_the_title_is_dropped_without_a_breadcrumb() -> None:
    lines = [
        "World | Storms batter the western coast as…",
        "Storms batter the western coast as winter arrives",
        "Body.",
    ]
    assert keep_mask(lines) == [False, True, True]


def test_a_leading_line_with_an_ellipsis_but_no_later_copy_is_kept() -> None:
    lines = ["Waiting for the storm...", "", "It came at noon."]
    assert keep_mask(lines) == [True, True, True]


def test_home_office_is_not_a_breadcrumb() -> None:
    assert keep_mask(["Home Office rejects asylum plan", "Body."]) == [True, True]


def test_video_widget_date_stamp_and_duration_are_dropped() -> None:
    lines = ["Title", "Body one.", "Facing Duhamel: what to do? – 01/14", "", "10:45", "Body two."]
    assert keep_mask(lines) == [True, True, False, True, False, True]


def test_a_duration_alone_or_a_dated_line_alone_is_kept() -> None:
    lines = ["Title", "Kick-off – 01/14", "The match went on.", "10:45"]
    assert keep_mask(lines) == [True, True, True, True]


def test_footer_after_a_marker_is_cut_when_only_short_lines_follow() -> None:
    lines = [
        "Title",
        "Body sentence one.",
        "Related News",
        "Syria: army enters the camp",
        "Paris reacts to the clashes",
    ]
    assert keep_mask(lines) == [True, True, False, False, False]


def test_footer_cut_stops_when_real_paragraphs_follow_the_marker() -> None:
    lines = ["Title", "Comments", "The minister made three comments on the plan, all negative."]
    assert keep_mask(lines) == [True, False, True]


def test_byline_lines_are_recognized_and_read() -> None:
    lines = ["Title", "Body.", "Author: A. Yes. with AFP", "Source: BFM TV"]
    assert is_byline(lines[2]) and is_byline(lines[3])
    assert read_byline(lines) == Byline(author="A. Yes. with AFP", source="BFM TV")


def test_by_line_needs_a_name() -> None:
    assert is_byline("By Jane Doe")
    assert not is_byline("By the end of the week, prices had fallen.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Published: 2024-10-22 10:45", "2024-10-22"),
        ("Oct. 22, 2024", "2024-10-22"),
        ("22nd October 2024", "2024-10-22"),
        ("Wednesday, October 22", None),
        ("2024-02-30", None),
        ("Shares 22, 2024", None),
    ],
)
def test_parse_date(text: str, expected: str | None) -> None:
    assert parse_date(text) == expected


def test_published_beats_updated_and_dateline() -> None:
    lines = [
        "Title",
        "LONDON, 1 March 2023 - Body.",
        "Updated: 2024-01-02",
        "Published: 2024-01-01",
    ]
    assert read_byline(lines).published == "2024-01-01"
    assert read_byline(lines[:3]).published == "2024-01-02"
    assert read_byline(lines[:2]).published == "2023-03-01"
    assert read_byline(["Title", "It was March 1, 2023."]).published is None


def test_extract_html_falls_back_to_visible_text() -> None:
    page = extract_html(
        "<html><head><title>Scores</title><script>var x = 'SCRIPT';</script></head>"
        "<body><nav>Home World</nav><table><tr><td>Only table text.</td></tr></table></body></html>"
    )
    assert page.used_fallback
    assert (page.title, page.body) == ("Scores", ("Only table text.",))


def test_extract_html_of_a_title_only_page_has_no_visible_text() -> None:
    page = extract_html("<html><head><title>T</title></head><body></body></html>")
    assert (page.title, page.body, page.title_in_body) == ("T", (), False)
