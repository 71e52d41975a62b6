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
# Every page of the book, as the path of its HTML file: chapters and the book's own pages.
PAGES = [f"chapters/{c}.html" for c in CHAPTERS] + sorted(
    f"book/{p.stem}.html" for p in (ROOT / "book").glob("*.md")
)
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# The bqplot marks the chapters draw with (a Label only annotates).
MARK_MODELS = ("LinesModel", "BarsModel", "ScatterModel", "LabelModel")
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
        shown = set(re.findall(r'"model_id": "([0-9a-f]+)"', html))
        assert shown <= set(models), f"{chapter}: a widget on the page has no saved state"
        marks = [m for m in models.values() if m["model_name"] in MARK_MODELS]
        assert marks, f"{chapter}: no bqplot marks in the saved state"
        data = [m for m in marks if m["model_name"] != "LabelModel"]  # labels may be blank
        assert all(m["state"].get("x") for m in data), f"{chapter}: a chart was saved empty"


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
                        parseFloat(r.getAttribute('height') || '0') > 0) ||
                     fig.querySelectorAll('.dot').length > 0)""",
            timeout=30_000,
        )
        # The page script names each chart with its sentence, carried in the state line's
        # hidden data-alt attributes (the book has no kernel: from the saved widget state).
        page.wait_for_function(
            """() => { const views = [...document.querySelectorAll('.mq-view')];
                return views.length > 0 && views.every(view => {
                  const alts = [...view.querySelectorAll('.mq-chart-text .mq-alt')]
                    .map(a => (a.getAttribute('data-alt') || '').trim());
                  const figures = [...view.querySelectorAll('.bqplot')];
                  return figures.length > 0 && figures.length === alts.length &&
                    figures.every((f, i) => alts[i] && f.getAttribute('role') === 'img' &&
                                            f.getAttribute('aria-label') === alts[i]);
                }); }""",
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


def test_glossary_links_resolve(built_book):
    glossary = (built_book / "book" / "glossary.html").read_text()
    anchors = set(re.findall(r'id="([^"]+)"', glossary))
    links = 0
    for page in PAGES:
        html = (built_book / page).read_text()
        for anchor in re.findall(r'href="[^"]*glossary\.html#([^"]+)"', html):
            links += 1
            assert anchor in anchors, f"{page} links to glossary entry #{anchor}, which is missing"
    assert links, "no chapter links to the glossary"


@pytest.mark.parametrize("page_path", PAGES)
def test_page_has_no_serious_accessibility_violations(browser, book_url, page_path):
    """axe-core, injected into the page, finds no serious or critical violation in the article
    (the book's own content: prose, simulations, quizzes), after the widgets have rendered."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{book_url}/{page_path}", wait_until="load")
    if page.locator("script[type='application/vnd.jupyter.widget-view+json']").count():
        page.wait_for_selector(".bqplot", timeout=30_000)
    if page.locator(".Quiz").count() or "mqQuiz" in page.content():
        page.wait_for_selector(".Quiz", timeout=30_000)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => {
            const scope = document.querySelector('article.bd-article') || document;
            const result = await axe.run(scope, {resultTypes: ['violations']});
            return result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => `${v.impact} ${v.id}: ${v.nodes.slice(0, 3)
                    .map(n => n.target.join(' ')).join(', ')}`);
        }"""
    )
    page.close()
    assert not violations, f"{page_path}: " + "; ".join(violations)


def test_a_failing_cell_fails_the_build_and_names_the_notebook(tmp_path):
    """The book build stops on an exception in a cell and says which notebook and cell failed."""
    import shutil
    import subprocess
    import sys

    import nbformat

    project = tmp_path / "project"
    (project / "chapters").mkdir(parents=True)
    (project / "book").mkdir()
    shutil.copy(ROOT / "_config.yml", project / "_config.yml")
    shutil.copytree(ROOT / "book" / "offline", project / "book" / "offline")
    shutil.copytree(ROOT / "book" / "_static", project / "book" / "_static")
    (project / "node_modules").symlink_to(ROOT / "node_modules")
    (project / "book" / "intro.md").write_text("# Intro\n")
    (project / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: chapters/broken\n"
    )
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Broken"),
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_code_cell("raise RuntimeError('this cell is broken on purpose')"),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, project / "chapters" / "broken.ipynb")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter-book")), "build", "-W", "-n", str(project)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "broken" in log and "this cell is broken on purpose" in log
    assert "raise RuntimeError" in log  # the failing cell's source is shown
