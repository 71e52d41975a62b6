"""Quiz rendering: question banks stored as JSON data, shown with jupyterquiz.

The banks live in ``mqlib/quiz/banks/<chapter>.json`` in jupyterquiz's format: a list of questions,
each with ``question``, ``type`` (``"multiple_choice"`` or ``"numeric"``) and ``answers``; every
answer carries a ``feedback`` that explains why it is right or wrong. The rendered quiz is HTML and
JavaScript only, so it works in JupyterLab and in the static book without a kernel.

Unlike ``jupyterquiz.display_quiz``, :func:`show` gives the quiz's container a stable id derived
from the bank name, so an executed notebook saves the same output every time (nbval compares it).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from .. import _validate as check

TYPES = ("multiple_choice", "many_choice", "numeric")


def bank_names() -> list[str]:
    """The names of the stored banks (``"ch00"``, ``"ch01"``, ...)."""
    folder = resources.files(__package__).joinpath("banks")
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load(bank: str) -> list[dict[str, Any]]:
    """The questions of ``bank``, checked for the shape the course requires."""
    check.choice("bank", bank, bank_names())
    text = resources.files(__package__).joinpath("banks", f"{bank}.json").read_text("utf-8")
    questions = json.loads(text)
    validate(questions, bank)
    return questions


def validate(questions: Any, bank: str = "bank") -> None:
    """Raise ``ValueError`` unless every question has a type, a right answer and feedback on
    every option. ``bank`` is the bank's name, used in the messages."""
    check.text("bank", bank)
    if not isinstance(questions, list) or not questions:
        raise ValueError(f"{bank}: questions must be a non-empty list of questions")
    for i, q in enumerate(questions):
        where = f"{bank} questions[{i}] (question {i + 1})"
        if not isinstance(q, dict) or not q.get("question"):
            raise ValueError(f"{where}: needs a 'question' text")
        check.choice(f"{where} type", q.get("type"), TYPES)
        if "precision" in q and (not isinstance(q["precision"], int) or q["precision"] < 1):
            # jupyterquiz calls Number.toPrecision(precision), which throws below 1: no feedback.
            raise ValueError(f"{where}: precision must be an integer >= 1 (or absent)")
        answers = q.get("answers")
        if not isinstance(answers, list) or not answers:
            raise ValueError(f"{where}: needs a non-empty 'answers' list")
        if not any(a.get("correct") for a in answers):
            raise ValueError(f"{where}: no answer is marked correct")
        for j, a in enumerate(answers):
            if not a.get("feedback"):
                raise ValueError(
                    f"{where} answer {j + 1}: every option needs a 'feedback' explaining it"
                )


def show(bank: str, *, shuffle_answers: bool = True) -> None:
    """Display the quiz of ``bank`` in the notebook (and in the built book)."""
    from IPython.display import HTML, Javascript, display
    from jupyterquiz.dynamic.loader import load_questions_script
    from jupyterquiz.dynamic.renderer import build_script, build_styles, render_div

    from ..widgets._base import A11Y_LOADER  # names the answer boxes for screen readers

    questions = load(bank)
    check.boolean("shuffle_answers", shuffle_answers)
    div_id = "mqQuiz" + re.sub(r"\W", "_", bank)  # also a JS identifier: jupyterquiz needs that
    prefix, static, url = load_questions_script(questions, div_id)
    container = render_div(div_id, False, shuffle_answers, False, 1_000_000, 700, 10, "left")
    display(HTML(container + build_styles(div_id, COLOURS) + A11Y_LOADER))
    display(Javascript(without_mathjax(build_script(prefix, static, url, div_id, True))))


def without_mathjax(script: str) -> str:
    """Switch off jupyterquiz's MathJax typesetting in ``script``.

    Our questions contain no math, and where a page has a half-configured MathJax (JupyterLab does)
    jupyterquiz throws on ``MathJax.version`` or fetches MathJax from a public CDN, which breaks the
    quiz for a learner without network. Every ``typeof MathJax`` test becomes ``false``.
    """
    check.instance("script", script, str, "string (jupyterquiz's JavaScript)")
    switched = re.sub(r"typeof MathJax\s*!==?\s*['\"]undefined['\"]", "false", script)
    if "typeof MathJax" in switched:
        raise RuntimeError("jupyterquiz's MathJax check changed; update mqlib.quiz.without_mathjax")
    return switched


#: jupyterquiz's colour variables, set to the course palette (dark enough for white text).
COLOURS = {
    "--jq-multiple-choice-bg": "#1f4e79",
    "--jq-mc-button-bg": "#fafafa",
    "--jq-mc-button-border": "#e0e0e0e0",
    "--jq-mc-button-inset-shadow": "#555555",
    "--jq-many-choice-bg": "#6b3a5b",
    "--jq-numeric-bg": "#1f4e79",
    "--jq-numeric-input-bg": "#3b3b3b",
    "--jq-numeric-input-label": "#101010",
    "--jq-numeric-input-shadow": "#999999",
    "--jq-string-bg": "#4c1a57",
    "--jq-incorrect-color": "#b3261e",
    "--jq-correct-color": "#117a43",
    "--jq-text-color": "#fafafa",
    "--jq-link-color": "#9abafa",
}
