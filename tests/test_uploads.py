from __future__ import annotations

from pathlib import Path

import pytest

from rag.uploads import UploadError, safe_name, save_upload

ARTICLE = b"Harbour reopens\n\nThe harbour of Tromso reopened on Monday after the storm.\n"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.txt", "report.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.md", "evil.md"),
        (".hidden.txt", "hidden.txt"),
        ("Zürich news (final).HTML", "Zurich_news_final.html"),
        ("/", "article"),
        ("...", "article"),
        ("no suffix", "no_suffix"),
    ],
)
def test_safe_name_keeps_only_a_plain_base_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_upload_is_written_inside_the_corpus_and_never_replaces_a_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    first = save_upload(corpus, "../../outside.txt", ARTICLE)
    second = save_upload(corpus, "outside.txt", ARTICLE + b"More.\n")
    assert first == corpus.resolve() / "uploads" / "outside.txt"
    assert second.name == "outside-1.txt"
    assert first.read_bytes() == ARTICLE
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("photo.png", ARTICLE, "not an article file"),
        ("empty.txt", b"", "empty file"),
        ("blank.txt", b"  \n\n ", "only whitespace"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        ("huge.txt", b"word " * 1000, "limit"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason_and_nothing_is_written(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with pytest.raises(UploadError, match=message):
        save_upload(corpus, name, data, max_bytes=4000)
    assert not list(corpus.rglob("*.*"))


def test_an_uploads_symlink_out_of_the_corpus_is_refused(tmp_path: Path) -> None:
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    corpus.mkdir()
    elsewhere.mkdir()
    (corpus / "uploads").symlink_to(elsewhere)
    with pytest.raises(UploadError, match="outside the corpus"):
        save_upload(corpus, "a.txt", ARTICLE)
    assert not list(elsewhere.iterdir())


def test_missing_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="does not exist"):
        save_upload(tmp_path / "nope", "a.txt", ARTICLE)
