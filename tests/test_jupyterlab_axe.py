"""Every chapter in JupyterLab at 1280×720 after Run All: axe-core finds nothing serious or critical
in any simulation's output, nor in the notebook area as a whole (prose, code, quizzes, lab output);
every simulation fits the screen, and works from the keyboard alone.

The book's pages get the same check in ``test_book.py``; this is the other way the course is
used. A chapter's JupyterLab server, page and Run All come from ``test_jupyterlab``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_jupyterlab import (  # noqa: F401 - lab and page are fixtures
    CHAPTERS,
    FIT_HEIGHT,
    LIVE_OUTPUT,
    RUN_ALL_TIMEOUT,
    lab,
    open_and_run_all,
    page,
    wait_until_every_cell_ran,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"

# Serious and critical findings under each element the selector picks, one string per finding:
# "rule-id: element, element" (axe's own CSS paths of at most three offending elements).
# With ``each``, every element the selector picks is a run of its own (numbered in the
# findings); without, one run covers them all.
AXE_EACH = """async ([selector, each]) => {
    const found = [];
    const roots = each ? [...document.querySelectorAll(selector)] : [{include: [selector]}];
    for (const [i, root] of roots.entries()) {
        const result = await axe.run(root, {resultTypes: ['violations']});
        for (const v of result.violations) {
            if (v.impact !== 'serious' && v.impact !== 'critical') continue;
            found.push(`#${i} ${v.impact} ${v.id}: ` + v.nodes.slice(0, 3)
                .map(n => `${n.target.join(' ')} ${n.html.slice(0, 120)}`).join(', '));
        }
    }
    return found;
}"""
SIMULATIONS = f"{LIVE_OUTPUT} .mq-view"
# The course's part of the notebook area: the rendered prose and every output. (JupyterLab's
# own parts, the code editors, prompts and the cell list, are JupyterLab's to fix: axe reports
# its CodeMirror editors as unnamed textboxes and the heading-collapse buttons as unnamed.)
NOTEBOOK_AREA = (
    ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownOutput, "
    ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
)


# Every control of a view a learner can reach with Tab, in reading (DOM) order: buttons, dropdowns,
# checkboxes, text fields, slider handles and a slider's readout (where a value can be typed).
# Each gets a ``data-kbd`` index so that the Tab walk can be compared with it.
CONTROLS = """view => { document.querySelectorAll('[data-kbd]')
        .forEach(e => e.removeAttribute('data-kbd'));  // earlier views' marks
    return [...view.querySelectorAll('button, input, select, textarea, ' +
        '[role=slider], [contenteditable]:not([contenteditable=false])')]
    .filter(e => !e.disabled && e.getClientRects().length > 0 &&
                 getComputedStyle(e).visibility !== 'hidden' &&
                 e.getAttribute('tabindex') !== '-1')
    .map((e, i) => { e.setAttribute('data-kbd', i);
        return e.getAttribute("aria-label") || e.textContent.trim() || e.value || e.tagName;
    }); }"""
# Where the focus is (its ``data-kbd`` index, or the start of its HTML when it is not one of
# the view's controls) and its outline.
FOCUS = """() => { const e = document.activeElement, s = getComputedStyle(e);
    return [e.getAttribute('data-kbd') ?? e.outerHTML.slice(0, 100), s.outlineStyle,
            parseFloat(s.outlineWidth)]; }"""
# What to press to make a view act, first found first: a button that acts (not a toggle that
# picks a mode or folds a section open), else a mode not yet picked, else a slider (its arrow key).
ACTIONS = (
    ("button.widget-button:not(.widget-toggle-button):not([disabled])", "Enter"),
    (".widget-toggle-buttons button:not(.mod-active):not([disabled])", "Space"),
    ("[role=slider]", "ArrowRight"),
)


def check_view_by_keyboard(browser_page, view, label: str) -> None:
    """Tab from the view's first control reaches every control once, in reading order, each with
    a visible focus ring; the first control pressed (a button, else a mode, else a slider's arrow
    key) changes the live state line."""
    from playwright.sync_api import expect

    names = view.evaluate(CONTROLS)
    assert names, f"{label}: no control to reach with the keyboard"
    view.locator("[data-kbd='0']").focus()
    walk = [browser_page.evaluate(FOCUS)]
    for _ in names[1:]:
        browser_page.keyboard.press("Tab")
        walk.append(browser_page.evaluate(FOCUS))
    reached = [int(i) if i.isdigit() else i for i, _, _ in walk]
    assert reached == list(range(len(names))), f"{label}: Tab order {reached} for controls {names}"
    unringed = [
        n for n, (_, style, width) in zip(names, walk, strict=True) if style == "none" or width < 2
    ]
    assert not unringed, f"{label}: no visible focus ring on {unringed}"

    live = view.locator(".mq-state[aria-live=polite]")
    expect(live, f"{label}: the state line is not a live region").to_have_count(1)
    action = next(((sel, key) for sel, key in ACTIONS if view.locator(sel).count()), None)
    assert action, f"{label}: nothing to press (no button, mode or slider)"
    selector, key = action
    control = view.locator(selector).first
    what = control.get_attribute("aria-label") or control.inner_text().strip()
    before = live.inner_text()
    control.focus()
    browser_page.keyboard.press(key)
    expect(live, f"{label}: {key} on '{what}' left the state line as it was").not_to_have_text(
        before
    )


@pytest.mark.parametrize(
    "lab",
    [p.name for p in sorted(CHAPTERS.glob("*.ipynb"))],
    indirect=True,
)
def test_axe_fit_and_keyboard_in_jupyterlab(request, page, lab, screenshot_dir):  # noqa: F811
    """After axe: each simulation is at most FIT_HEIGHT px tall (its chart and buttons on screen
    together at 1280×720) and passes ``check_view_by_keyboard``; an element screenshot of each
    is saved as ``jupyterlab-1280-<chapter>-<n>.png``."""
    from playwright.sync_api import expect

    name = request.node.callspec.params["lab"]
    open_and_run_all(page, lab, name)
    wait_until_every_cell_ran(page)
    page.set_viewport_size({"width": 1280, "height": 720})
    views = page.locator(SIMULATIONS)
    if name.startswith("09-"):
        assert views.count() == 0  # chapter 9 has no simulation
    else:
        expect(views.first, f"{name}: no simulation after Run All").to_be_visible(
            timeout=RUN_ALL_TIMEOUT
        )
        # The page script has made each state line a live region and each chart an image.
        page.wait_for_function(
            """sel => [...document.querySelectorAll(sel)].every(v =>
                v.querySelector('.mq-state[aria-live]') &&
                [...v.querySelectorAll('.bqplot')].every(f => f.getAttribute('aria-label')))""",
            arg=SIMULATIONS,
            timeout=RUN_ALL_TIMEOUT,
        )
    page.add_script_tag(path=str(AXE_JS))
    in_views = page.evaluate(AXE_EACH, [SIMULATIONS, True])
    in_notebook = page.evaluate(AXE_EACH, [NOTEBOOK_AREA, False])
    assert not in_views, f"{name}, simulations: " + "; ".join(in_views)
    assert not in_notebook, f"{name}, notebook area: " + "; ".join(in_notebook)

    for i in range(views.count()):
        view = views.nth(i)
        label = f"{name}, simulation {i}"
        view.scroll_into_view_if_needed()
        height = view.evaluate("el => el.getBoundingClientRect().height")
        view.screenshot(path=screenshot_dir / f"jupyterlab-1280-{Path(name).stem[:2]}-{i}.png")
        assert height <= FIT_HEIGHT, f"{label} is {height:.0f} px tall (at most {FIT_HEIGHT})"
        check_view_by_keyboard(page, view, label)
