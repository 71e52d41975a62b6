"""What every simulation view shares: the palette, the summary line and how it displays."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

#: Okabe-Ito colours: distinguishable with the common forms of colour blindness.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "grey": "#767676",  # the lightest grey with 4.5:1 contrast on white
    "black": "#000000",
}


class SimulationView:
    """Base for the chapter simulations.

    Subclasses set ``self.run`` (a scenario, see :meth:`_take_run`) and build ``self.view`` (the
    whole widget); :meth:`summary` is the scenario's. Calling
    :meth:`refresh` redraws from the scenario. In a notebook the object displays as its widget, and
    its plain-text form is the one-line summary, which is what nbval compares.
    """

    view: w.Widget
    #: True while the view moves its own controls to match the scenario (see :meth:`_on_control`).
    _syncing: bool = False

    def __init__(self) -> None:
        self.summary_label = w.HTML(layout=w.Layout(margin="4px 0 0 0"))

    def summary(self) -> str:
        """The one-line summary of the scenario this view shows."""
        return self.run.summary()

    @staticmethod
    def _take_run(run: Any, kind: type, default: Callable[[], Any]) -> Any:
        """``run`` if it is a ``kind`` scenario, ``default()`` if it is ``None``; anything else is
        a ``TypeError`` naming the parameter."""
        if run is None:
            return default()
        if not isinstance(run, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise TypeError(
                f"run must be {article} {kind.__name__} or None, got {type(run).__name__}"
            )
        return run

    def refresh(self) -> None:
        """Redraw the charts and the summary line from the scenario's state."""
        self._draw()
        self.summary_label.value = f"<b>State:</b> {html.escape(self.summary())}"

    def _draw(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers for building the controls -----------------------------------------------------
    def _button(self, label: str, action: Any, tooltip: str, icon: str = "") -> w.Button:
        """A button that calls ``action()`` when clicked (the click event itself is dropped, so
        ``action`` is the same method a notebook cell would call)."""
        button = w.Button(
            description=label, tooltip=tooltip, icon=icon, layout=w.Layout(width="auto")
        )
        button.on_click(lambda _b: action())
        return button

    def _on_control(self, action: Any) -> Any:
        """An observer for a control's ``"value"`` that calls ``action(new_value)``, except while
        ``self._syncing`` is set: when the view itself moves the control to match the scenario,
        that change must not be replayed as if the learner had made it."""

        def handler(change: dict[str, Any]) -> None:
            if not self._syncing:
                action(change["new"])

        return handler

    def _sync(self, control: w.ValueWidget, value: Any, *, widen_max: bool = True) -> None:
        """Move ``control`` to ``value`` to match the scenario, without its :meth:`_on_control`
        observer acting on the move. A slider's range first grows to take ``value`` (a value set
        from code may lie outside it, and a slider would otherwise clamp it silently); pass
        ``widen_max=False`` only for a control whose range is a hard limit of the scenario."""
        self._syncing = True
        try:
            if widen_max and hasattr(control, "max"):
                control.max = max(control.max, value)
                control.min = min(control.min, value)
            control.value = value
        finally:
            self._syncing = False

    @staticmethod
    def _slider(kind: type[w.ValueWidget], value: float, low: float, high: float, **options: Any):
        """A slider of ``kind`` on ``[low, high]``, widened to include ``value``, so that a run
        started with a value outside the usual range shows it instead of clamping it."""
        return kind(value=value, min=min(low, value), max=max(high, value), **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.view._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"] = self.summary()
        return data

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.summary()}>"
