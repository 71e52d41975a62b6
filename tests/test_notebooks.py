"""The shape every chapter notebook must have, checked without running it (nbval runs them)."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.fixture(params=CHAPTERS, ids=lambda p: p.stem)
def notebook(request):
    return nbformat.read(request.param, as_version=4)


def markdown(nb):
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_has_a_kernel_so_jupyterlab_opens_it_without_asking(notebook):
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def test_is_saved_executed_without_errors(notebook):
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "run tools/execute_notebooks.py"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    streams = [o for c in code for o in c.outputs if o.get("name") == "stderr"]
    assert not streams, "a cell writes to stderr (the book build treats that as an error)"


def test_saved_widget_state_for_the_static_book(notebook):
    views = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    if views:
        state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        for view in views:
            assert view.data["application/vnd.jupyter.widget-view+json"]["model_id"] in state


def test_has_goals_a_quiz_and_a_summary(notebook):
    text = markdown(notebook)
    assert "**What you will learn**" in text
    assert "## Summary" in text
    assert any("quiz.show(" in c.source for c in notebook.cells if c.cell_type == "code")


def test_no_escaped_dollars_in_prose(notebook):
    # JupyterLab renders text between two "\$" as math (jupyterlab#8645); write &#36; instead.
    assert "\\$" not in markdown(notebook)
