"""Run the Streamlit app on a free local port and drive it with a real headless Chromium.

Shared by `tests/test_browser.py` and `scripts/screenshots.py`. The browser is Debian's
`chromium` package (`apt-get install chromium`), driven by Playwright's Python client;
Playwright never downloads a browser here (no `playwright install`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page, ViewportSize, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHAT_PLACEHOLDER = "Ask a question about the articles"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

SERVER_TIMEOUT_S = 120  # until /_stcore/health answers "ok"
APP_READY_TIMEOUT_S = 300  # first page load: loads the models and builds the index when missing
ANSWER_TIMEOUT_S = 120


class AppError(RuntimeError):
    """The app or the browser could not be started, or the page is not what was expected."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log_path: Path, lines: int = 40) -> str:
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppError(
                f"streamlit exited with code {process.returncode} before it answered; "
                f"its output ({log_path}):\n{_log_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                if response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AppError(
        f"{url}/_stcore/health did not answer 'ok' within {timeout_s:.0f} s; "
        f"streamlit's output ({log_path}):\n{_log_tail(log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def streamlit_app(
    log_path: Path,
    *,
    corpus: str = "seeds",
    env: Mapping[str, str] | None = None,
    timeout_s: float = SERVER_TIMEOUT_S,
) -> Iterator[str]:
    """`streamlit run app.py` on a free port; yields its URL and always stops the server.

    The server inherits this process's environment (so `RAG_INDEX_HOME` is honoured) plus
    `RAG_CORPUS=corpus` and `env`; its output goes to `log_path`.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    environment = {**os.environ, "RAG_CORPUS": corpus, **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(url, process, log_path, timeout_s)
            yield url
        finally:
            _stop(process)


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A page of a headless Debian Chromium (1280x900); the browser is closed afterwards."""
    if not CHROMIUM.exists():
        raise AppError(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def wait_until_idle(page: Page, timeout_s: float) -> None:
    """Wait until no script run is in progress (Streamlit marks its root element)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
        timeout=timeout_s * 1000
    )


def page_text(page: Page, limit: int = 2000) -> str:
    """What the page shows (for error messages: Streamlit prints exceptions into the page)."""
    try:
        text = page.locator("body").inner_text(timeout=5000)
    except PlaywrightTimeoutError:
        return "(page text unavailable)"
    return text if len(text) <= limit else text[:limit] + " [...]"


def open_app(page: Page, url: str, *, timeout_s: float = APP_READY_TIMEOUT_S) -> None:
    """Load the app and wait for its chat input (the first run loads the models and the index)."""
    page.goto(url)
    try:
        page.get_by_placeholder(CHAT_PLACEHOLDER).wait_for(timeout=timeout_s * 1000)
        wait_until_idle(page, timeout_s)
    except PlaywrightTimeoutError as exc:
        raise AppError(
            f"no chat input {CHAT_PLACEHOLDER!r} within {timeout_s:.0f} s; the page shows:\n{page_text(page)}"
        ) from exc


def ask(page: Page, question: str, *, timeout_s: float = ANSWER_TIMEOUT_S) -> Locator:
    """Type `question` into the chat input, press Enter, and return the new assistant message
    once the run has finished (whatever it says)."""
    messages = page.get_by_test_id("stChatMessage")
    before = messages.count()
    box = page.get_by_placeholder(CHAT_PLACEHOLDER)
    box.fill(question)
    box.press("Enter")
    answer = messages.nth(before + 1)  # the question, then the answer
    try:
        answer.wait_for(timeout=timeout_s * 1000)
        wait_until_idle(page, timeout_s)
        wait_until_drawn(answer, timeout_s)
    except PlaywrightTimeoutError as exc:
        raise AppError(
            f"no answer to {question!r} within {timeout_s:.0f} s; the page shows:\n{page_text(page)}"
        ) from exc
    return answer


def wait_until_drawn(element: Locator, timeout_s: float, quiet_s: float = 1.0) -> str:
    """Wait until `element`'s text has not changed for `quiet_s`, and return it. A run can end
    before its output is drawn (the first markdown with HTML loads its renderer lazily)."""
    deadline = time.monotonic() + timeout_s
    text, since = element.inner_text(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise PlaywrightTimeoutError(f"the text was still changing after {timeout_s:.0f} s")
        time.sleep(0.2)
        if (now := element.inner_text()) != text:
            text, since = now, time.monotonic()
    return text


# How much the outermost scroll containers (Streamlit's main area and sidebar, not the
# scrolling tables inside them) hide below their visible part.
_OVERFLOW_JS = """() => {
    const scrolls = (e) => ["auto", "scroll"].includes(getComputedStyle(e).overflowY);
    const outermost = (e) => {
        for (let a = e.parentElement; a; a = a.parentElement) if (scrolls(a)) return false;
        return true;
    };
    const boxes = [...document.querySelectorAll("*")].filter((e) => scrolls(e) && outermost(e));
    return Math.max(0, ...[document.documentElement, ...boxes].map((e) => e.scrollHeight - e.clientHeight));
}"""


def screenshot(page: Page, path: Path, *, max_height: int = 8000) -> Path:
    """A full-page PNG. Streamlit scrolls inside its own containers, not the document, so a
    plain full-page screenshot stops at the viewport: the viewport is grown by what its
    scroll containers hide (at most to `max_height`) for the shot, then restored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size or VIEWPORT
    height = viewport["height"]
    try:
        for _ in range(5):  # a taller viewport can relayout (tables, charts): grow until nothing is hidden
            hidden = int(page.evaluate(_OVERFLOW_JS))
            if hidden <= 1 or height >= max_height:
                break
            height = min(height + hidden, max_height)
            page.set_viewport_size({"width": viewport["width"], "height": height})
            page.wait_for_timeout(500)
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)
    return path
