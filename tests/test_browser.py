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


@pytest.mark.slow
@pytest.mark.browser
def test_a_question_typed_in_the_browser_gets_its_answer(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    started = time.monotonic()
    # RAG_INDEX_HOME is already a temp dir (conftest's autouse fixture); the server inherits it,
    # so the first page load builds the seeds index.
    with streamlit_app(tmp_path / "streamlit.log", corpus="seeds") as url, chromium_page() as page:
        try:
            open_app(page, url)
            loaded = time.monotonic()
            answer = ask(page, "Who is Jibril al-Mouhajer?")
            expect(answer).to_contain_text("Diaby", timeout=ANSWER_TIMEOUT_S * 1000)
        finally:  # also on failure: the screenshot is the best clue
            shot = screenshot(page, tmp_path / "chat.png")
            if folder := os.environ.get("RAG_SCREENSHOTS"):
                Path(folder).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(folder) / "test_browser_chat.png")
    print(f"app ready in {loaded - started:.1f} s, answered in {time.monotonic() - loaded:.1f} s")
