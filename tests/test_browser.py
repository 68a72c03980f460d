"""End to end: the real app in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser_support import (
    ANSWER_TIMEOUT_S,
    CHROMIUM,
    ask,
    chromium_page,
    open_app,
    screenshot,
    streamlit_app,
)
from tests.conftest import ROOT
from tests.test_no_network import offline_env

HOSTILE = (
    "Harbour <script>alert('pwned')</script> news\n\n"
    'The harbour master <img src=x onerror="alert(1)"> Ingrid Solberg reopened the port of Tromso '
    'on Monday after the storm. [click](javascript:alert(2)) <a href="javascript:alert(3)">more</a>\n'
)


@pytest.mark.slow
@pytest.mark.browser
def test_a_question_typed_in_the_browser_gets_its_answer(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    started = time.monotonic()
    # RAG_INDEX_HOME is already a temp dir (conftest's autouse fixture); the server inherits it,
    # so the first page load builds the seeds index.
    netlog = tmp_path / "net.log"  # the server runs with outbound sockets blocked and logged
    corpus = tmp_path / "corpus"  # the seed article and a hostile one
    corpus.mkdir()
    for article in (ROOT / "seeds").glob("*.txt"):
        shutil.copy(article, corpus / article.name)
    (corpus / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    dialogs: list[str] = []
    with (
        streamlit_app(tmp_path / "streamlit.log", corpus=str(corpus), env=offline_env(netlog)) as url,
        chromium_page() as page,
    ):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        try:
            open_app(page, url)
            loaded = time.monotonic()
            answer = ask(page, "Who is Jibril al-Mouhajer?")
            expect(answer).to_contain_text("Diaby", timeout=ANSWER_TIMEOUT_S * 1000)
            hostile = ask(page, "Who reopened the port of Tromso?")
            expect(hostile).to_contain_text("Ingrid Solberg", timeout=ANSWER_TIMEOUT_S * 1000)
            expect(hostile).to_contain_text("<img src=x onerror=")  # shown as text...
            injected = page.locator("img[src='x'], script:has-text('pwned'), a[href^='javascript:']")
            assert injected.count() == 0  # ...never as elements
        finally:  # also on failure: the screenshot is the best clue
            shot = screenshot(page, tmp_path / "chat.png")
            if folder := os.environ.get("RAG_SCREENSHOTS"):
                Path(folder).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(folder) / "test_browser_chat.png")
    print(f"app ready in {loaded - started:.1f} s, answered in {time.monotonic() - loaded:.1f} s")
    assert not dialogs, f"a script ran in the page: {dialogs}"
    assert not netlog.exists(), f"the app tried to connect out:\n{netlog.read_text()[:3000]}"
