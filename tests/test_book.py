"""The built book: every chapter page renders its simulations from saved widget state and its
quizzes are clickable, in a real Chromium with no request leaving the local server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))
WIDGET_STATE = re.compile(
    r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', re.S
)


def test_every_chapter_is_in_the_book_with_saved_widget_state(built_book):
    for chapter in CHAPTERS:
        page = built_book / "chapters" / f"{chapter}.html"
        assert page.exists(), f"{chapter} is not in the built book (_toc.yml?)"
        html = page.read_text()
        views = re.findall(r"application/vnd.jupyter.widget-view\+json", html)
        states = WIDGET_STATE.findall(html)
        if not views:
            continue
        assert states, f"{chapter}: widgets are shown but no widget state was saved"
        models = json.loads(states[0])["state"]
        marks = [m for m in models.values() if m["model_name"] in ("LinesModel", "BarsModel")]
        assert marks, f"{chapter}: no bqplot marks in the saved state"
        assert all(m["state"].get("x") for m in marks), f"{chapter}: a chart was saved empty"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_draws_its_charts_and_quizzes_work(browser, book_url, chapter, screenshot_dir):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside, errors = [], []

    def only_local(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", None):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{book_url}/chapters/{chapter}.html", wait_until="load")

    if (
        page.locator(".jp-OutputArea-output, .cell_output")
        .filter(has=page.locator("script[type='application/vnd.jupyter.widget-view+json']"))
        .count()
    ):
        page.wait_for_selector(".bqplot", timeout=30_000)
        # Every bqplot figure has drawn at least one mark with data (a line path or a bar).
        page.wait_for_function(
            """() => [...document.querySelectorAll('.bqplot')].length > 0 &&
                   [...document.querySelectorAll('.bqplot')].every(fig =>
                     [...fig.querySelectorAll('path.line')].some(p =>
                        (p.getAttribute('d') || '').length > 20) ||
                     [...fig.querySelectorAll('rect.bar')].some(r =>
                        parseFloat(r.getAttribute('height') || '0') > 0))""",
            timeout=30_000,
        )

    quizzes = page.locator(".Quiz").filter(has=page.locator(".MCButton"))
    if quizzes.count():
        first = quizzes.first
        wrong = first.locator(".MCButton[data-correct='false']").first
        wrong.click()
        feedback = first.locator(".Feedback")
        assert "incorrect" in (feedback.get_attribute("class") or "")
        assert feedback.inner_text().strip()
        right = first.locator(".MCButton[data-correct='true']").first
        right.click()
        assert "correct" in (feedback.get_attribute("class") or "").split()
        assert feedback.inner_text().strip()

    page.screenshot(path=str(screenshot_dir / f"book-{chapter}.png"), full_page=True)
    page.close()
    assert not outside, f"requests left the local server: {outside}"
    assert not errors, f"console errors: {errors}"
