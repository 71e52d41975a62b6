"""What every simulation view shares: the palette, the summary line and how it displays."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator
from typing import Any

import bqplot as bq
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

#: Installed once per page by every view (its ``a11y_loader``, see :data:`A11Y_LOADER`), in
#: JupyterLab and in the static book alike, because ipywidgets offers no way to set ARIA attributes
#: from Python: the state line's element becomes a polite live region, each chart (``.bqplot``)
#: becomes an image whose accessible name is its sentence (the ``data-alt`` of the hidden
#: ``.mq-chart-text`` at the end of the state line),
#: sliders get their description as a name, focused controls get a visible ring, and jupyterquiz's
#: numeric answer boxes get their label's text as a name (in the book
#: ``book/_static/accessibility.js`` does that; JupyterLab loads no such file), and a rendered cell
#: or output that scrolls (a wide table) can take the keyboard focus, so that it can be scrolled
#: without a mouse.
A11Y_SCRIPT = """(function () {
  if (window.mqA11y) { window.mqA11y(); return; }
  var css = document.createElement('style');
  css.textContent = '.mq-sr-only{position:absolute!important;width:1px;height:1px;padding:0;' +
    'margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}' +
    '.mq-view button:focus-visible,.mq-view input:focus-visible,.mq-view select:focus-visible,' +
    '.mq-view [role=slider]:focus-visible,.mq-view .widget-readout:focus' +
    '{outline:3px solid #0072B2!important;outline-offset:2px!important}';
  document.head.appendChild(css);
  // Rendered cells measured and found not to scroll: measuring costs a layout, and this pass runs
  // whenever the page changes outside a chart, so each is measured once (again after the window
  // is resized). A cell out of sight is measured too: the browser lays it out for the question.
  var fits = new WeakSet();
  window.addEventListener('resize', function () { fits = new WeakSet(); });
  function apply() {
    // A rendered cell or output too wide for the page scrolls: keyboard users must be able to
    // focus it to scroll it (axe's scrollable-region-focusable), e.g. a wide table in JupyterLab.
    document.querySelectorAll('.jp-RenderedHTMLCommon:not([tabindex])').forEach(function (el) {
      if (fits.has(el)) return;
      // not displayed (a collapsed cell): no size to measure yet; measured once it is shown
      if (el.checkVisibility && !el.checkVisibility()) return;
      var s = getComputedStyle(el);
      if (/auto|scroll/.test(s.overflowX + ' ' + s.overflowY) &&
          (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)) {
        el.setAttribute('tabindex', '0');
      } else {
        fits.add(el);
      }
    });
    document.querySelectorAll('.Quiz input.Input-text:not([aria-label])').forEach(function (el) {
      var label = el.parentNode && el.parentNode.querySelector('.InpLabel');
      el.setAttribute('aria-label', label ? label.textContent.trim() : 'Your answer');
    });
    document.querySelectorAll('.mq-state:not([aria-live])').forEach(function (el) {
      el.setAttribute('role', 'status');
      el.setAttribute('aria-live', 'polite');
      el.setAttribute('aria-atomic', 'true');
    });
    document.querySelectorAll('.mq-view').forEach(function (view) {
      var text = view.querySelector('.mq-chart-text');
      if (!text) return;
      var alts = text.querySelectorAll('.mq-alt');
      view.querySelectorAll('.bqplot').forEach(function (figure, i) {
        var alt = alts[i] ? (alts[i].getAttribute('data-alt') || '').trim() : '';
        if (alt && figure.getAttribute('aria-label') !== alt) {
          figure.setAttribute('role', 'img');
          figure.setAttribute('aria-label', alt);
        }
      });
    });
    document.querySelectorAll('.mq-view .widget-slider').forEach(function (box) {
      var label = box.querySelector('.widget-label');
      var name = label ? label.textContent.trim() : '';
      box.querySelectorAll('[role=slider]').forEach(function (handle) {
        if (name && handle.getAttribute('aria-label') !== name) {
          handle.setAttribute('aria-label', name);
        }
      });
      var readout = box.querySelector('.widget-readout');
      if (name && readout && !readout.hasAttribute('aria-label')) {
        readout.setAttribute('role', 'textbox');
        readout.setAttribute('aria-label', name + ', typed value');
      }
    });
  }
  // Inside a chart nothing this pass looks at changes, and a chart's update is hundreds of
  // mutations: only the others run it. It runs at once (an observer's callback comes before the
  // page is drawn again), so that a chart's new name is in the same frame as the chart. A
  // rendered cell whose content changed (a cell is attached before its content arrives) is
  // measured again.
  window.mqA11y = apply;
  new MutationObserver(function (records) {
    var outside = false;
    for (var i = 0; i < records.length; i++) {
      var node = records[i].target;
      var el = node.nodeType === 1 ? node : node.parentElement;
      if (el && el.closest('.bqplot')) continue;
      outside = true;
      var cell = el && el.closest('.jp-RenderedHTMLCommon');
      if (cell) fits.delete(cell);
    }
    if (outside) apply();
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
  apply();
})();"""

#: An invisible 1×1 GIF whose ``onload`` runs :data:`A11Y_SCRIPT`: an HTML widget's value is set
#: with ``innerHTML``, where a ``<script>`` would not run but an event handler does.
A11Y_LOADER = (
    '<img alt="" hidden'
    ' src="data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEAAAAALAAAAAABAAEAAAIBRAA7"'
    f' onload="{html.escape(A11Y_SCRIPT, quote=True)}">'
)


#: The most points a view sends for one line: a chart 600 px wide shows no more.
MAX_CHART_POINTS = 1200


def step_points(
    times: Any, values: Any, limit: int = MAX_CHART_POINTS, *, linear: bool = False
) -> tuple[list[float], list[float]]:
    """The points of a step-after line (``times`` ascending, one ``values`` entry each) that draw
    the same picture with at most ``limit`` points, so that a click after hours of simulated
    history sends a bounded chart.

    Samples that repeat the previous value add nothing to a step line and are dropped (the
    first and the last sample stay); the drawing is then exact. For a line drawn with
    ``linear`` interpolation a flat run keeps its last sample too, so it is still drawn flat.
    If more than ``limit`` points remain, the time axis is cut into ``limit // 2`` equal spans
    and each span keeps its lowest and highest sample, in time order: every peak and trough is
    still drawn."""
    import numpy as np

    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, got {type(limit).__name__}")
    if limit < 4:
        raise ValueError(f"limit must be >= 4, got {limit}")
    if not isinstance(linear, bool):
        raise TypeError(f"linear must be True or False, got {type(linear).__name__}")
    x = np.asarray(times, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"times and values must be flat and of one length, got {x.shape} and {y.shape}"
        )
    if len(x) <= 2:
        return x.tolist(), y.tolist()
    keep = np.empty(len(y), dtype=bool)
    keep[0] = keep[-1] = True
    keep[1:-1] = y[1:-1] != y[:-2]
    if linear:  # the last sample of a flat run, where the line leaves it
        keep[1:-1] |= y[1:-1] != y[2:]
    x, y = x[keep], y[keep]
    if len(x) <= limit:
        return x.tolist(), y.tolist()
    spans = (limit - 2) // 2  # two per span, plus the first and last sample
    edges = np.linspace(x[0], x[-1], spans + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, spans - 1)
    starts = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
    chosen = set()
    for start, end in zip(starts, [*starts[1:], len(x)], strict=True):
        segment = y[start:end]
        chosen.add(start + int(segment.argmin()))
        chosen.add(start + int(segment.argmax()))
    chosen.update((0, len(x) - 1))
    index = np.array(sorted(chosen))
    return x[index].tolist(), y[index].tolist()


def bounded(times: Any, values: Any, *, linear: bool = False) -> tuple[list[float], list[float]]:
    """The points of :func:`step_points`: the samples that draw the line, without those that
    repeat the value before them (a queue that holds steady for an hour is a handful of points,
    not thousands), and at most :data:`MAX_CHART_POINTS` of them, so a click sends and redraws
    what the line shows, not every sample of its history."""
    return step_points(times, values, linear=linear)


def folding_toggle(
    section: w.Box,
    description: str,
    tooltip: str,
    *,
    icons: tuple[str, str] = ("caret-right", "caret-down"),
    shown: str = "flex",
) -> w.ToggleButton:
    """A button that shows and hides ``section`` (hidden at first): less-used settings fold
    away under it. A toggle button, not an ipywidgets ``Accordion``, because an Accordion's
    header cannot be reached with the Tab key. ``icons`` are the closed and open icons,
    ``shown`` the ``display`` of the open section."""
    section.layout.display = "none"
    toggle = w.ToggleButton(
        value=False, description=description, tooltip=tooltip, icon=icons[0],
        layout=w.Layout(width="auto"),
    )  # fmt: skip

    def fold(change: dict[str, Any]) -> None:
        section.layout.display = shown if change["new"] else "none"
        toggle.icon = icons[1] if change["new"] else icons[0]

    toggle.observe(fold, "value")
    return toggle


#: Finer round numbers for :func:`nice_ceiling`, for a chart whose data would otherwise fill
#: as little as 40 % of it.
FINE_STEPS = (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8)


def line_swatch(colour: str, text: str, dashed: bool = False) -> str:
    """One entry of an HTML legend: a short solid (or dashed) line in ``colour``, then ``text``.
    (bqplot's own legend box sits on top of the lines it explains.)"""
    line = "&#9477;&#9477;" if dashed else "&#9473;&#9473;"
    return f'<span style="color:{colour}"><b>{line}</b></span> {text}'


def nice_ceiling(value: float, mantissas: tuple[float, ...] = (1, 2, 5)) -> float:
    """The smallest of 1, 2, 5, 10, 20, 50, ... (``mantissas`` times a power of ten) that is
    at least ``value`` (1 for anything up to 1): a scale's maximum that changes only when the
    data crosses a round number, so that most clicks leave the scale's domain, and with it the
    axis and every mark on it, as they are (the page redraws all of them whenever a domain
    changes).

    >>> nice_ceiling(0.3), nice_ceiling(12), nice_ceiling(20), nice_ceiling(20.5)
    (1.0, 20.0, 20.0, 50.0)
    >>> nice_ceiling(124, FINE_STEPS)
    150.0
    """
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise TypeError(f"value must be a number, got {value!r}")
    if value <= 1:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    for mantissa in (*mantissas, 10):
        if mantissa * scale >= value * (1 - 1e-12):
            return float(round(mantissa * scale, 9))
    return float(10 * scale)  # pragma: no cover - 10 * scale >= value always


def _same(old: Any, new: Any) -> bool:
    """Whether assigning ``new`` over ``old`` would change nothing the page draws."""
    import numpy as np

    if isinstance(old, np.ndarray) or isinstance(new, np.ndarray):
        try:
            a, b = np.asarray(old), np.asarray(new)
        except (ValueError, TypeError):  # ragged lists: compare them as lists
            return False
        if a.shape != b.shape:  # bqplot squeezes its arrays: [[0], [0]] is kept as [0, 0]
            a, b = np.squeeze(a), np.squeeze(b)
        if a.shape != b.shape or (a.dtype.kind in "US") != (b.dtype.kind in "US"):
            return False
        try:
            return bool(np.array_equal(a, b))
        except (TypeError, ValueError):
            return False
    try:
        return type(old) is type(new) and bool(old == new)
    except (TypeError, ValueError):
        return False


def assign(widget: w.Widget, **traits: Any) -> None:
    """Set the ``traits`` of ``widget`` whose value differs from the one it has, and leave the
    others alone, so that a view's redraw reads as a list of what the chart shows and sends the
    page only what changed. (traitlets and bqplot's array traits already skip an equal value
    of the same kind; this also skips one that differs only in its container or number type,
    ``[0, 1]`` over ``array([0., 1.])``, and never assigns, so never validates, the others.)"""
    for name, value in traits.items():
        if not _same(getattr(widget, name), value):
            setattr(widget, name, value)


@contextlib.contextmanager
def held(figure: bq.Figure) -> Iterator[None]:
    """Hold the changes to ``figure``, its marks, axes and scales until the block ends: each of
    them then sends its changed traits in one message (unchanged traits are not sent at all),
    so the page redraws a mark once per click instead of once per trait (``x``, then ``y``...).
    """
    if not isinstance(figure, bq.Figure):
        raise TypeError(f"figure must be a bqplot Figure, got {type(figure).__name__}")
    widgets: list[w.Widget] = [figure, *figure.marks, *figure.axes]
    for mark in figure.marks:
        widgets.extend(mark.scales.values())
    widgets.extend(axis.scale for axis in figure.axes if axis.scale is not None)
    unique = list({id(widget): widget for widget in widgets}.values())
    with contextlib.ExitStack() as stack:
        for widget in unique:
            stack.enter_context(widget.hold_sync())
        yield


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

    #: What the latest action did when the chart does not show it (see :meth:`_tell`).
    notice: str = ""

    def __init__(self) -> None:
        # The state line is announced by screen readers whenever it changes (a live region).
        self.summary_label = w.HTML(layout=w.Layout(margin="4px 0 0 0"))
        self.summary_label.add_class("mq-state")
        # The page script, sent once with the view (not with every state line: it is 3.5 KB).
        self.a11y_loader = w.HTML(
            A11Y_LOADER, layout=w.Layout(width="1px", height="1px", overflow="hidden")
        )
        self.a11y_loader.add_class("mq-sr-only")

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
        """Redraw the charts, the summary line and the charts' text alternatives from the
        scenario's state. A :attr:`notice` set by the latest action is shown after the summary
        once, then cleared."""
        self._draw()
        note = f' <i class="mq-notice">{html.escape(self.notice)}</i>' if self.notice else ""
        self.notice = ""
        # (ipywidgets' 28 px line height would make a two-line summary take four lines' room.)
        # One sentence per chart, for screen readers, rides with the state line in attributes:
        # no text of its own (the line reads as before) and no widget of its own (a click sends
        # one message fewer). The page script makes each sentence its chart's accessible name.
        alts = "".join(
            f'<span class="mq-alt" data-alt="{html.escape(sentence, quote=True)}"></span>'
            for sentence in self.describe_charts()
        )
        self.summary_label.value = (
            f'<div style="line-height:1.45"><b>State:</b> {html.escape(self.summary())}{note}</div>'
            f'<span class="mq-chart-text" hidden>{alts}</span>'
        )
        self._attach_page_script()

    def describe_charts(self) -> list[str]:
        """One sentence per chart, in the order they appear, saying what it shows now: the text a
        screen reader reads instead of the picture. Views override it with sentences about their
        data; this default names each chart by its title and gives the summary."""
        return [
            f"Chart '{figure.title or 'simulation'}': {self.summary()}" for figure in self.figures()
        ]

    def figures(self) -> list[bq.Figure]:
        """The view's bqplot figures, in the order they are drawn."""
        found: list[bq.Figure] = []
        stack = [getattr(self, "view", None)]
        while stack:
            widget = stack.pop(0)
            if isinstance(widget, bq.Figure):
                found.append(widget)
            elif widget is not None:
                stack[:0] = list(getattr(widget, "children", ()))
        return found

    def _tell(self, notice: str) -> None:
        """Say in the state line what the latest action did (until the next redraw): for an
        action whose effect the chart does not show yet, such as a setting that applies from the
        next message."""
        self.notice = notice

    def _attach_page_script(self) -> None:
        """Put the page script's loader into the view (once) and mark the view for the page
        script."""
        view = getattr(self, "view", None)
        if not isinstance(view, w.Box):
            return
        if "mq-view" not in view._dom_classes:
            view.add_class("mq-view")
        if self.a11y_loader not in view.children:
            view.children = (*view.children, self.a11y_loader)

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
        started with a value outside the usual range shows it instead of clamping it.

        It sends its value when a drag ends or a key is pressed (``continuous_update=False``,
        unless ``options`` say otherwise). With continuous updates the page echoes the value
        back as soon as the slider is drawn, rounded by the slider's float arithmetic (5.0 comes
        back as 4.999999999999999); when that happens during Run All, while the kernel runs a
        later cell that awaits, the echo's idle status is reported under another message, the
        page's widget model waits for it forever and never sends the slider's value again:
        arrow keys and drags then move the handle but change nothing (seen in JupyterLab 4.6,
        ipywidgets 8.1, ipykernel 7.4)."""
        options.setdefault("continuous_update", False)
        return kind(value=value, min=min(low, value), max=max(high, value), **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.view._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"] = self.summary()
        return data

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.summary()}>"
