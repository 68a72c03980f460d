"""Regenerate the README's screenshots with the real app in headless Chromium.

    make screenshots                  # or: .venv/bin/python -m scripts.screenshots [--corpus seeds]

Starts `streamlit run app.py` on a free local port (the index is built or reused as for
`make app`), then writes, at 1280x900, full page:

- docs/screenshots/chat.png: "Who leads the French jihadists?" and the follow-up "How old is he?";
- docs/screenshots/evaluation.png: the Evaluation tab after "Run the fixed question set".

Needs Debian's chromium (/usr/bin/chromium) and the dev extra (Playwright's Python client).
Anything missing on the page (the tab, the button, an answer) stops it with an error.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Literal

import click
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser_support import (
    ROOT,
    AppError,
    ask,
    chromium_page,
    open_app,
    page_text,
    screenshot,
    streamlit_app,
    wait_until_idle,
)

QUESTIONS = ("Who leads the French jihadists?", "How old is he?")
EVALUATION_TAB = "Evaluation"
EVALUATION_BUTTON = "Run the fixed question set"
FIND_TIMEOUT_S = 30
EVALUATION_TIMEOUT_S = 300


def chat_screenshot(page: Page, path: Path) -> None:
    for question in QUESTIONS:
        answer = ask(page, question).get_by_test_id("stChatMessageContent")
        first_line = (answer.inner_text().strip().splitlines() or ["(empty)"])[0]
        click.echo(f"  {question} -> {first_line[:80]!r}")
    screenshot(page, path)


def _find(page: Page, role: Literal["tab", "button"], name: str) -> None:
    element = page.get_by_role(role, name=name, exact=True)
    try:
        element.wait_for(timeout=FIND_TIMEOUT_S * 1000)
    except PlaywrightTimeoutError as exc:
        raise AppError(f"the app has no {role} {name!r}; the page shows:\n{page_text(page)}") from exc
    element.click()


def evaluation_screenshot(page: Page, path: Path) -> None:
    _find(page, "tab", EVALUATION_TAB)
    _find(page, "button", EVALUATION_BUTTON)
    # The results (metrics, then a table) or an error, whichever comes first; then the run's end.
    done = (
        page.get_by_test_id("stMetric")
        .or_(page.get_by_test_id("stDataFrame"))
        .or_(page.get_by_test_id("stException"))
        .or_(page.get_by_test_id("stAlert"))
    )
    try:
        done.filter(visible=True).first.wait_for(timeout=EVALUATION_TIMEOUT_S * 1000)
        wait_until_idle(page, EVALUATION_TIMEOUT_S)
    except PlaywrightTimeoutError as exc:
        raise AppError(
            f"no evaluation results within {EVALUATION_TIMEOUT_S} s; the page shows:\n{page_text(page)}"
        ) from exc
    if page.get_by_test_id("stException").count() or not page.get_by_test_id("stMetric").count():
        raise AppError(f"the evaluation did not show its results; the page shows:\n{page_text(page)}")
    tables = page.get_by_test_id("stDataFrame")
    if tables.count():
        tables.first.scroll_into_view_if_needed()
        tables.first.wait_for()
    page.wait_for_timeout(1000)  # charts and the table draw after the run ends
    screenshot(page, path)


@click.command()
@click.option("--corpus", default="seeds", show_default=True, help="Articles folder (RAG_CORPUS).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT / "docs" / "screenshots",
    show_default=True,
    help="Where chat.png and evaluation.png go.",
)
def main(corpus: str, out: Path) -> None:
    """Screenshot the chat and the evaluation page of the running app."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rag-screenshots-") as tmp:
        log = Path(tmp) / "streamlit.log"
        try:
            with streamlit_app(log, corpus=corpus) as url, chromium_page() as page:
                click.echo(f"app at {url}")
                open_app(page, url)
                chat_screenshot(page, out / "chat.png")
                click.echo(f"wrote {out / 'chat.png'}")
                evaluation_screenshot(page, out / "evaluation.png")
                click.echo(f"wrote {out / 'evaluation.png'}")
        except (AppError, PlaywrightError) as exc:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.exists() else ""
            raise click.ClickException(f"{exc}\n--- streamlit's output (end) ---\n{tail}") from exc
    click.echo(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
