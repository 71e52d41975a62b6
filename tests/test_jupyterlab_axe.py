"""axe-core in JupyterLab, for every chapter: after Run All, no serious or critical finding in any
simulation's output, nor in the notebook area as a whole (prose, code, quizzes, lab output).

The book's pages get the same check in ``test_book.py``; this is the other way the course is
used. A chapter's JupyterLab server, page and Run All come from ``test_jupyterlab``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_jupyterlab import (  # noqa: F401 - lab and page are fixtures
    CHAPTERS,
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


@pytest.mark.parametrize(
    "lab",
    [p.name for p in sorted(CHAPTERS.glob("*.ipynb"))],
    indirect=True,
)
def test_axe_finds_nothing_serious_in_jupyterlab(request, page, lab):  # noqa: F811 - fixtures
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
