"""Article loading: decoding, cleaning, offsets back to the raw file, corpus discovery."""

from __future__ import annotations

import csv
import socket
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.documents import (
    Article,
    RawSpan,
    decode,
    discover,
    doc_id_for,
    load_corpus,
    parse_article,
)
from rag.errors import ArticleError, RagError

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "000_cf52fe43d28daad2.txt"
BBC_DIR = ROOT.parent / "shared" / "datasets" / "bbc-news"
SEED_BOILERPLATE = [
    "HomeWorldSyrian government forces confront French jihadists led by Oumar Diaby in the...",
    "Facing Duhamel: what to do with the jihadists? – 01/14",
    "10:45",
    "Stay Connected",
    "16,985FansLike",
    "2,458FollowersFollow",
    "61,453SubscribersSubscribe",
    "Must Read",
    "Related News",
    "LEAVE A REPLY",
    "Please enter your comment!",
    "Please enter your name here",
]


def assert_spans_exact(article: Article, data: bytes) -> None:
    raw = decode(data).text
    assert article.raw_spans is not None
    for span in article.raw_spans:
        cs, rs, n = span.clean_start, span.raw_start, span.length
        assert article.text[cs : cs + n] == raw[rs : rs + n]
        assert article.raw_offset(cs) == rs
        assert article.raw_offset(cs + n - 1) == rs + n - 1


# --- the seed article -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed() -> tuple[Article, bytes]:
    data = SEED.read_bytes()
    return parse_article("000_cf52fe43d28daad2.txt", data), data


def test_seed_boilerplate_is_gone(seed: tuple[Article, bytes]) -> None:
    article, _ = seed
    lines = article.text.split("\n")
    for junk in SEED_BOILERPLATE:
        assert junk not in lines
    assert "FansLike" not in article.text and "LEAVE A REPLY" not in article.text


def test_seed_keeps_every_body_line(seed: tuple[Article, bytes]) -> None:
    article, data = seed
    body = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    kept = [line for line in body if line not in SEED_BOILERPLATE]
    assert len(kept) == len(body) - len(SEED_BOILERPLATE)
    assert article.text.split("\n")[::2][: len(kept) - 1] == kept[:-1]  # blank line between
    assert article.text.endswith("Author: A. Yes. with AFP\nSource: BFM TV")
    for crosshead in ("“They use civilians as shields”", "Shootings, reinforcements and fear"):
        assert crosshead in article.text


def test_seed_title_metadata_and_offsets(seed: tuple[Article, bytes]) -> None:
    article, data = seed
    title = "Syrian government forces confront French jihadists led by Oumar Diaby in the northwest"
    assert article.title == title + " of the country"
    assert article.text.startswith(article.title + "\n\n")
    assert (article.author, article.source, article.published) == (
        "A. Yes. with AFP",
        "BFM TV",
        None,
    )
    assert article.encoding == "utf-8" and article.notes == ()
    assert_spans_exact(article, data)
    assert "\n\n\n" not in article.text


def test_raw_offset_of_separators_is_none_and_negative_is_rejected() -> None:
    article = parse_article("a.txt", b"Title\r\n\r\nBody line.\r\nSecond line.\r\n")
    assert article.text == "Title\n\nBody line.\nSecond line."
    assert article.raw_spans == (RawSpan(0, 0, 5), RawSpan(7, 9, 10), RawSpan(18, 21, 12))
    assert article.raw_offset(5) is None and article.raw_offset(17) is None
    assert article.raw_offset(7) == 9
    assert article.raw_offset(len(article.text)) is None
    with pytest.raises(ValueError, match="got -1"):
        article.raw_offset(-1)


# --- decoding and rejection --------------------------------------------------------------------


def test_utf8_bom_is_stripped() -> None:
    data = "\ufeffTitle\n\nCafé body.".encode()
    article = parse_article("a.txt", data)
    assert (article.title, article.encoding) == ("Title", "utf-8")
    assert_spans_exact(article, data)


def test_cp1252_smart_quotes() -> None:
    data = "Title\n\n“Quoted” – it’s fine.".encode("cp1252")
    article = parse_article("a.txt", data)
    assert article.encoding == "cp1252"
    assert "“Quoted” – it’s fine." in article.text
    assert article.notes == ("not UTF-8; decoded as cp1252",)


def test_latin1_byte_outside_cp1252() -> None:
    article = parse_article("a.txt", b"Title\n\nPrice \xa3100 and \x81.")
    assert article.encoding == "latin-1"
    assert "Price £100" in article.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b" \n\t\r\n  ", "only whitespace"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF document"),
        (b"Title\n\nText\x00with a NUL", "NUL bytes"),
        (bytes(range(1, 32)) * 4 + b"some text", "controls"),
        (b"Stay Connected\n16,985FansLike\nLEAVE A REPLY\n", "no text left"),
    ],
)
def test_unreadable_articles_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ArticleError, match=reason) as err:
        parse_article("bad.txt", data)
    assert "'bad.txt'" in str(err.value)


# --- markdown and HTML ---------------------------------------------------------------------------


def test_markdown_title_drops_the_hashes_and_text_starts_with_it() -> None:
    data = b"# Storm hits coast\n\nRain **fell**.\n\n## Aftermath\n\nRoads closed."
    article = parse_article("news/storm.md", data)
    assert article.title == "Storm hits coast"
    assert article.text == "Storm hits coast\n\nRain **fell**.\n\n## Aftermath\n\nRoads closed."
    assert_spans_exact(article, data)
    assert parse_article("bare.md", b"###\n\n## Real title\nBody.").text == "Real title\nBody."


HTML_PAGE = b"""<!doctype html><html><head><title>Storm hits coast | Daily News</title>
<meta name="author" content="Jane Doe">
<style>body { color: red } .x::after {content: "STYLE"}</style>
<script>var secret = "SCRIPTTEXT";</script></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a> NAVTEXT</nav>
<article><h1>Storm hits coast</h1>
<p>Published: 2024-10-22</p>
<p>A powerful storm struck the coast on Monday, flooding streets and cutting power to thousands
of homes across the region, officials said.</p>
<script>document.write("MORESCRIPT")</script>
<p>Rescue teams were deployed overnight and schools would remain closed until Wednesday at the
earliest, the regional council announced.</p></article>
<footer>Copyright 2024 Daily News. Subscribe to our newsletter</footer></body></html>"""


def test_html_main_text_without_scripts_styles_or_navigation() -> None:
    article = parse_article("storm.html", HTML_PAGE)
    assert article.title == "Storm hits coast"
    assert article.text.startswith("Storm hits coast\n\n")
    assert "A powerful storm struck the coast on Monday" in article.text
    assert "regional council announced." in article.text
    for junk in ("SCRIPTTEXT", "MORESCRIPT", "STYLE", "color: red", "NAVTEXT", "Copyright"):
        assert junk not in article.text
    assert (article.author, article.published, article.raw_spans) == (
        "Jane Doe",
        "2024-10-22",
        None,
    )
    assert article.raw_offset(0) is None


def test_html_parsing_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert parse_article("storm.htm", HTML_PAGE).title == "Storm hits coast"


def test_html_fallback_is_reported_not_silent() -> None:
    page = b"<html><head><title>Scores</title></head><body><table><tr><td>Only a table.</td></tr>"
    article = parse_article("scores.html", page + b"</table></body></html>")
    assert article.text == "Scores\n\nOnly a table."
    assert any("trafilatura found no main text" in note for note in article.notes)


def test_html_with_only_a_title_is_rejected() -> None:
    with pytest.raises(ArticleError, match="no article text"):
        parse_article("t.html", b"<html><head><title>T</title><script>x()</script></head></html>")


# --- discovery and corpus loading --------------------------------------------------------------


def test_discover_errors_quote_the_path(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="corpus folder not found: '.*nope'"):
        discover(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RagError, match="is a file"):
        discover(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(RagError, match=r"no \.txt/\.md/\.html articles in '.*empty'"):
        discover(tmp_path / "empty")


def test_discover_recurses_sorts_and_skips_hidden_and_outside_links(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for rel in ("b/2.TXT", "b/10.md", "a.html", "c/d/e.htm", ".hidden.txt", ".git/x.txt", "z.csv"):
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text("Title\n\nBody.")
    (tmp_path / "outside.txt").write_text("Outside\n\nBody.")
    (corpus / "link_out.txt").symlink_to(tmp_path / "outside.txt")
    (corpus / "link_in.txt").symlink_to(corpus / "a.html")
    (corpus / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    found = [doc_id_for(path, corpus) for path in discover(corpus)]
    assert found == ["a.html", "b/10.md", "b/2.TXT", "c/d/e.htm", "link_in.txt"]
    with pytest.raises(RagError, match="not inside the corpus"):
        doc_id_for(tmp_path / "outside.txt", corpus)


def test_load_corpus_reports_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        "a.txt": b"Alpha\n\nThe same body.",
        "b.txt": b"Alpha\n\nThe same body.",
        "c.txt": b"Gamma\n\nThe same  body!",
        "empty.txt": b"",
        "image.txt": b"\x89PNG\r\n\x1a\n\x00\x00",
        "locked.txt": b"Locked\n\nBody.",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    real_open = Path.open

    def open_(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    load = load_corpus(tmp_path)
    assert [a.doc_id for a in load.articles] == ["a.txt", "b.txt", "c.txt"]
    reasons = {s.doc_id: s.reason for s in load.skipped}
    assert set(reasons) == {"empty.txt", "image.txt", "locked.txt"}
    assert "empty file" in reasons["empty.txt"] and "PNG" in reasons["image.txt"]
    assert reasons["locked.txt"] == "cannot read file: Permission denied"
    assert [(d.doc_id, d.duplicate_of, d.kind) for d in load.duplicates] == [
        ("b.txt", "a.txt", "exact"),
        ("c.txt", "a.txt", "near"),
    ]


# --- properties --------------------------------------------------------------------------------


def check_parse(doc_id: str, data: bytes) -> None:
    try:
        article = parse_article(doc_id, data)
    except ArticleError:
        return
    assert article.text.startswith(article.title) and article.title.strip()
    assert article.text == article.text.strip()
    if article.raw_spans is not None:
        assert_spans_exact(article, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".txt", ".md", ".html"]))
def test_parse_random_bytes_only_raises_article_error(data: bytes, suffix: str) -> None:
    check_parse("x" + suffix, data)


LINES = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(SEED_BOILERPLATE + ["", "  ", "# Heading", "Author: X", "…", "Home > News"]),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    lines=LINES,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    suffix=st.sampled_from([".txt", ".md"]),
)
def test_parse_random_text_keeps_offsets_exact(lines: list[str], newline: str, suffix: str) -> None:
    check_parse("x" + suffix, newline.join(lines).encode("utf-8"))


# --- the BBC corpus (slow) ---------------------------------------------------------------------


@pytest.mark.slow
def test_whole_bbc_corpus_loads(tmp_path: Path) -> None:
    archive = BBC_DIR / "bbc.tar.gz"
    if not archive.exists():
        pytest.skip(f"BBC archive not found at {archive}")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    started = time.perf_counter()
    load = load_corpus(tmp_path / "bbc")
    elapsed = time.perf_counter() - started
    assert load.skipped == ()
    assert len(load.articles) == 2226  # 2,225 articles and README.TXT
    assert elapsed < 60, f"loading took {elapsed:.1f}s"
    by_id = {a.doc_id: a for a in load.articles}
    assert "£" in by_id["sport/199.txt"].text and by_id["sport/199.txt"].encoding == "cp1252"
    with (BBC_DIR / "DUPLICATES.tsv").open(encoding="utf-8") as fh:
        expected = {
            (r["duplicate"].removeprefix("bbc/"), r["kept"].removeprefix("bbc/"), r["kind"])
            for r in csv.DictReader(fh, delimiter="\t")
        }
    kinds = {"exact": "exact", "near": "same_body_diff_title"}
    found = {(d.doc_id, d.duplicate_of, kinds[d.kind]) for d in load.duplicates}
    assert len(expected) == 136 and expected <= found
    # Two more pairs differ only in case or punctuation; they are near duplicates too.
    assert found - expected == {
        ("sport/344.txt", "sport/332.txt", "same_body_diff_title"),
        ("tech/342.txt", "tech/048.txt", "same_body_diff_title"),
    }
