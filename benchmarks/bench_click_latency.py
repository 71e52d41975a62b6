"""Click latency in JupyterLab: from a click on a simulation's main button to the page's update.

A plain script (it asserts nothing; timings depend on the machine and its load). It starts a
JupyterLab on 127.0.0.1 over a temporary directory, exactly as ``tests/test_jupyterlab.py`` does,
and opens notebooks in Chromium. Every page also shows a *baseline* (a bare ``ipywidgets.Button``
whose click assigns a new ``y`` to one ``bqplot.Lines``), measured in the same page. Two kinds of
page (``--page``):

- ``chapter`` (the default): each view in its own chapter's notebook, as a learner meets it. The
  script opens a copy of the chapter with the baseline as its first cell, runs all its cells (the
  labs and their real brokers too), and clicks the chapter's simulation; the chapter's other
  cells, views and quizzes stay on the page.
- ``all``: one notebook that shows every chapter simulation once and nothing else, a denser page
  than any chapter.

JupyterLab's notebook windowing is its default, ``contentVisibility`` (the browser skips drawing
the cells out of sight); ``--windowing none`` draws every cell, as the tests set it so that every
output is in the page. On each page the script clicks each view's main button ``--clicks`` times:

- fresh, as the view opens (after Run All), and
- after one simulated hour (``view.advance(3600)`` in a cell; a view without ``advance`` or one
  that refuses an hour is reported as such).

Before each click the view is scrolled to the middle of the window and left until it has been
quiet (no DOM change) for ``QUIET_MS``: a view that comes into sight is drawn again (JupyterLab
attaches the cells scrolled into view and bqplot lays its figures out anew), and a click made
in that moment timed the scroll's redraw too (a view's first click took 44-84 ms where most
of the others took about 20). Each click is timed inside the page: ``performance.now()`` just before
``button.click()``, and a ``MutationObserver`` on the view records the time of every DOM change
outside the button itself.
Two figures per click: *first* (the first change the learner can see: the state line or a chart)
and *settled* (the last change before the view has been quiet for ``QUIET_MS``). The figures are
the median and the worst over the clicks, with the load average before and after the run.

    .venv/bin/python benchmarks/bench_click_latency.py [--clicks 15] [--only PointToPoint,...]
    .venv/bin/python benchmarks/bench_click_latency.py --runs 3 --clicks 10
    .venv/bin/python benchmarks/bench_click_latency.py --page all --windowing none --runs 3

``--runs N`` repeats everything N times, each in a fresh JupyterLab, kernel and page, and pools
the clicks: one page's clicks are alike (the same frame timing, the same state), so the figures
of a single run vary from run to run by more than the changes being measured; the table then
also gives each page's median (one per run and chapter).

``--timeline`` also prints, for each view's last click, every batch of DOM changes the observer
saw: its time, its size and what it touched (chart, element, attribute). A mark that bqplot
redraws shows up as its own batch; two batches for one mark, or an axis batch on a click that
should keep the axis, point at what a view sends needlessly.

``--profile`` samples the page's CPU (Chrome's profiler, every 100 us) during each view's last
click and prints the self time of the busiest functions, then when each of the kernel's
WebSocket frames reached the page (ms after the click's own frame, ``<`` bytes received): frames
that arrive spread out while the kernel sent them together mean the page was busy drawing.

``--trace`` records a Chromium timeline trace (``devtools.timeline``) of each view's last click
and prints the main thread's time by kind (script, style, layout, paint, layerize, gc) and its
longest tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_jupyterlab import (  # noqa: E402 - after the path set-up
    KERNEL_IDLE_TIMEOUT,
    OVERRIDES,
    _request,
    jupyter_lab,
)

QUIET_MS = 400  # a view with no DOM change for this long has finished its update
CLICK_GIVE_UP_MS = 5000

# (view class, constructor arguments as code, the main control: a button label, or
# "key:<slider description>" for a view that has no button, pressing ArrowRight on that slider).
# ToggleButtons alternate between two labels (separated by "|").
VIEWS = [
    ("SyncVsAsync", "", "Asynchronous|Synchronous"),
    ("PointToPoint", "", "Send 1"),
    ("PubSub", "", "Publish 1"),
    ("DeliveryGuarantees", "", "Send 1"),
    ("MessageOrdering", "", "Send a batch"),
    ("Backpressure", "", "Advance 1 s"),
    ("DeadLetters", "", "Advance 1 s"),
    ("RetryStorm", "", "key:down until"),
    ("KafkaLog", "", "Produce"),
    ("Rebalancing", "", "+ member"),
    ("KafkaCluster", "", "Produce"),
    ("MessageQueueSimulator", "", "Advance 1 s"),
]

# --page chapter: where each view is shown in the course, (notebook, the cell's first line that
# builds it); the chapter's other views and cells stay as they are.
CHAPTER_OF = {
    "SyncVsAsync": ("00-the-problem.ipynb", "SyncVsAsync()"),
    "PointToPoint": ("01-point-to-point.ipynb", "sim = PointToPoint()"),
    "PubSub": ("02-publish-subscribe.ipynb", "sim = PubSub()"),
    "DeliveryGuarantees": ("03-delivery-guarantees.ipynb", "sim = DeliveryGuarantees()"),
    "MessageOrdering": ("04-message-ordering.ipynb", "sim = MessageOrdering()"),
    "Backpressure": ("05-backpressure.ipynb", "sim = Backpressure()"),
    "DeadLetters": ("06-dead-letter-queues.ipynb", "sim = DeadLetters()"),
    "RetryStorm": ("06-dead-letter-queues.ipynb", "storm = RetryStorm()"),
    "KafkaLog": ("07-kafka-architecture.ipynb", "log_view = KafkaLog()"),
    "Rebalancing": ("07-kafka-architecture.ipynb", "rebalancing = Rebalancing()"),
    "KafkaCluster": ("07-kafka-architecture.ipynb", "cluster_view = KafkaCluster()"),
    "MessageQueueSimulator": ("08-simulator.ipynb", "sim = MessageQueueSimulator()"),
}

BASELINE = """import bqplot as bq, ipywidgets as w
_bx, _by = bq.LinearScale(), bq.LinearScale()
_line = bq.Lines(x=list(range(50)), y=[0] * 50, scales={"x": _bx, "y": _by})
_axes = [bq.Axis(scale=_bx), bq.Axis(scale=_by, orientation="vertical")]
_fig = bq.Figure(marks=[_line], axes=_axes, layout=w.Layout(width="600px", height="270px"))
_bump = w.Button(description="Bump")
_count = [0]
def _on_bump(_b):
    _count[0] += 1
    _line.y = [(i * _count[0]) % 17 for i in range(50)]
_bump.on_click(_on_bump)
baseline = w.VBox([_fig, _bump])
baseline.add_class("mq-bench-baseline")
baseline"""

# Click the control of the view in output ``index`` and resolve with [first, settled] in ms; with
# ``settle`` set, only scroll the view into the middle and resolve once it has been quiet.
CLICK = """async ([index, label, quietMs, giveUpMs, timeline, settle]) => {
    const outputs = [...document.querySelectorAll('.mq-bench')];
    const root = outputs[index];
    let control = null;
    if (label.startsWith('key:')) {
        const box = [...root.querySelectorAll('.widget-slider')]
            .find(b => b.textContent.includes(label.slice(4)));
        control = box && box.querySelector('.noUi-handle');
    } else {
        const labels = label.split('|');
        const buttons = [...root.querySelectorAll('button')];
        // A toggle: press the option that is not pressed now.
        control = labels.map(l => buttons.find(b => b.textContent.trim() === l &&
                                               !b.classList.contains('mod-active')))
                        .find(b => b);
    }
    if (!control) return {error: `no control '${label}'`};
    if (settle) {
        control.scrollIntoView({block: 'center'});
        // A view scrolled into the window is drawn again (JupyterLab attaches the cells that come
        // into sight, and bqplot lays its figures out anew): wait until the view has been quiet
        // for quietMs, so that what is timed is the click and not the scroll.
        await new Promise(resolve => {
            let timer = null;
            const quiet = new MutationObserver(() => {
                clearTimeout(timer);
                timer = setTimeout(done, quietMs);
            });
            const cap = setTimeout(done, giveUpMs);
            function done() {
                quiet.disconnect(); clearTimeout(timer); clearTimeout(cap); resolve();
            }
            quiet.observe(root, {subtree: true, childList: true, attributes: true,
                                 characterData: true});
            timer = setTimeout(done, quietMs);
        });
        return {settled: null};
    }
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    return await new Promise(resolve => {
        let first = null, last = null, timer = null;
        const batches = [];
        const done = () => { observer.disconnect(); resolve({first, settled: last, batches}); };
        // --timeline: what each batch of mutations touched (chart title, element class, kind).
        const describe = r => {
            const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
            if (!el) return '?';
            const fig = el.closest('.bqplot');
            const title = fig && fig.querySelector('.mainheading');
            const where = fig ? `[${title ? title.textContent.slice(0, 18) : 'chart'}] ` : '';
            const cls = (el.getAttribute('class') || '').split(' ')[0];
            return `${where}${el.tagName.toLowerCase()}.${cls} ${r.attributeName || r.type}`;
        };
        const observer = new MutationObserver(records => {
            const now = performance.now();
            if (records.every(r => control.contains(r.target)))
                return;
            // 'first': the state line or a chart shows the click (not a toggle's own styling).
            const seen = records.some(r => {
                const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
                return el && el.closest && el.closest('.mq-state, .bqplot');
            });
            if (first === null && seen) first = now - t0;
            last = now - t0;
            if (timeline) {
                const kinds = {};
                for (const r of records) { const d = describe(r); kinds[d] = (kinds[d] || 0) + 1; }
                const top = Object.entries(kinds).sort((a, b) => b[1] - a[1]).slice(0, 3);
                batches.push([Math.round(last * 10) / 10, records.length,
                              top.map(([k, n]) => `${n}x ${k}`).join(', ')]);
            }
            clearTimeout(timer);
            timer = setTimeout(done, quietMs);
        });
        observer.observe(root, {subtree: true, childList: true, attributes: true,
                                characterData: true});
        setTimeout(() => { if (last === null) done(); }, giveUpMs);
        const t0 = performance.now();
        if (label.startsWith('key:')) {
            control.focus();
            control.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight',
                                                               bubbles: true}));
        } else {
            control.click();
        }
    });
}"""

KERNEL = """async code => { const k = window.jupyterapp.shell.currentWidget.sessionContext
    .session.kernel;
  let out = ''; const f = k.requestExecute({code});
  f.onIOPub = m => { if (m.header.msg_type === 'stream') out += m.content.text;
                     if (m.header.msg_type === 'error') out += m.content.ename + ': ' +
                                                               m.content.evalue; };
  await f.done; return out; }"""


# With --unbounded: the views send every sample of their series, as before ``step_points``.
UNBOUNDED = """import importlib
def _every_sample(times, values, limit=0, *, linear=False):
    return [float(t) for t in times], [float(v) for v in values]
# every module that calls step_points (``_base`` for bounded(), which the others call)
for _name in ("_base", "point_to_point", "dead_letter"):
    _module = importlib.import_module(f"mqlib.widgets.{_name}")
    assert hasattr(_module, "step_points"), _name
    _module.step_points = _every_sample"""


def _code(source: str, cell_id: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": cell_id,
        "metadata": {},
        "outputs": [],
        "source": source,
    }


def all_views_notebook(views: list[tuple[str, str, str]], unbounded: bool = False) -> dict:
    """``--page all``: the baseline, then every view in a cell of its own (``v0``, ``v1``...)."""
    cells = [BASELINE] + ([UNBOUNDED] if unbounded else [])
    for i, (cls, args, _control) in enumerate(views):
        cells.append(
            f"from IPython.display import display\nfrom mqlib.widgets import {cls}\n"
            f"try:\n    v{i} = {cls}({args})\n    v{i}.view.add_class('mq-bench')\n"
            f"    display(v{i})\nexcept Exception as error:  # reported, not measured\n"
            f"    v{i} = error"
        )
    return {
        "cells": [_code(c, f"bench-{n}") for n, c in enumerate(cells)],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def chapter_notebook(
    chapter: str, views: list[tuple[int, str]], unbounded: bool = False
) -> tuple[dict, list[int]]:
    """``--page chapter``: the chapter's own notebook with the baseline as its first cell and,
    after the cell that shows view ``i`` (``views``: ``(i, class)``), a cell that names it ``v{i}``
    and marks its widget for the clicks; nothing else changes. Returns the notebook and the
    view indexes in the order the page shows them."""
    nb = json.loads((ROOT / "chapters" / chapter).read_text())
    cells = list(nb["cells"])
    placed = []
    for i, cls in views:
        first_line = CHAPTER_OF[cls][1]
        at = next(
            (
                n
                for n, c in enumerate(cells)
                if c["cell_type"] == "code" and first_line in "".join(c["source"])
            ),
            None,
        )
        if at is None:
            raise SystemExit(f"{chapter}: no cell builds {cls} with {first_line!r}")
        # the chapter's name for the view, or what the cell above displayed (``Out``: ``_`` is
        # a chapter's own variable once a loop has used it)
        name = first_line.split(" = ")[0] if " = " in first_line else "Out[max(Out)]"
        cells.insert(
            at + 1,
            _code(
                f"v{i} = {name}\ntry:\n    v{i}.view.add_class('mq-bench')\n"
                f"except AttributeError as error:  # reported, not measured\n    v{i} = error",
                f"bench-v{i}",
            ),
        )
        placed.append((at, i))
    head = [BASELINE] + ([UNBOUNDED] if unbounded else [])
    nb["cells"] = [_code(c, f"bench-{n}") for n, c in enumerate(head)] + cells
    return nb, [i for _at, i in sorted(placed)]


def pages(
    views: list[tuple[str, str, str]], mode: str, unbounded: bool
) -> list[tuple[str, dict, list[int]]]:
    """The notebooks to open, each as ``(file name, notebook, indexes of the views it shows in
    page order)``: one page of every view (``all``) or each view in its chapter (``chapter``)."""
    if mode == "all":
        return [("bench.ipynb", all_views_notebook(views, unbounded), list(range(len(views))))]
    chapters: dict[str, list[tuple[int, str]]] = {}
    for i, (cls, _args, _control) in enumerate(views):
        chapters.setdefault(CHAPTER_OF[cls][0], []).append((i, cls))
    out = []
    for chapter, shown in sorted(chapters.items()):
        nb, order = chapter_notebook(chapter, shown, unbounded)
        out.append((f"bench-{chapter}", nb, order))
    return out


def figures(times: list[float]) -> str:
    if not times:
        return "   n/a          "
    return f"{statistics.median(times):6.1f} /{max(times):6.1f}"


def profile_summary(profile: dict, top: int = 14) -> str:
    """Self time per function of a CDP CPU profile, the largest first (a ``--profile`` table)."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    gaps = profile.get("timeDeltas", [])
    self_us: dict[str, float] = {}
    # timeDeltas[i] is the gap before sample i, so a sample lasts until the next one
    for sample, delta in zip(profile.get("samples", []), gaps[1:] + [0], strict=True):
        frame = nodes[sample]["callFrame"]
        url = frame.get("url", "").rsplit("/", 1)[-1][:28]
        key = f"{frame.get('functionName') or '(anonymous)'} {url}:{frame.get('lineNumber', 0)}"
        self_us[key] = self_us.get(key, 0.0) + delta
    busy = sum(v for k, v in self_us.items() if not k.startswith("(idle)"))
    lines = [f"    busy {busy / 1000:.1f} ms in all"]
    for key, us in sorted(self_us.items(), key=lambda kv: -kv[1])[:top]:
        if not key.startswith("(idle)"):
            lines.append(f"    {us / 1000:7.1f} ms  {key}")
    return "\n".join(lines)


# --profile: the kernel's WebSocket frames seen by the page, (CDP time in s, direction, bytes).
frames: list[tuple[float, str, int]] = []


def websocket_summary(seen: list[tuple[float, str, int]]) -> str:
    """When each WebSocket frame of a click came and went, from the first frame the page sent
    (the click's comm message): shows whether the kernel's replies arrive late or the page is
    slow to draw them."""
    if not seen:
        return "    no WebSocket frames"
    start = next((t for t, d, _n in seen if d == "sent"), seen[0][0])
    return "    frames: " + ", ".join(
        f"{(t - start) * 1000:.1f} {'>' if d == 'sent' else '<'}{n}" for t, d, n in seen
    )


#: What a trace summary names: the renderer's main-thread work, by kind.
TRACE_KINDS = {
    "FunctionCall": "script",
    "EvaluateScript": "script",
    "v8.callFunction": "script",
    "TimerFire": "script",
    "FireAnimationFrame": "script",
    "EventDispatch": "script",
    "UpdateLayoutTree": "style",
    "ParseAuthorStyleSheet": "style",
    "Layout": "layout",
    "PrePaint": "paint",
    "Paint": "paint",
    "Layerize": "layerize",
    "UpdateLayer": "paint",
    "MinorGC": "gc",
    "MajorGC": "gc",
    "V8.GC_SCAVENGER": "gc",
}


def trace_summary(events: list[dict], top: int = 12) -> str:
    """The main thread's time during a traced click: per kind (script, style, layout, paint,
    layerize, gc; nested events counted once, in the innermost kind) and its longest tasks."""
    main = next(
        (
            (e["pid"], e["tid"])
            for e in events
            if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
        ),
        None,
    )
    if main is None:
        return "    no renderer main thread in the trace"
    spans = [
        e
        for e in events
        if (e.get("pid"), e.get("tid")) == main and e.get("ph") == "X" and "dur" in e
    ]
    tasks = sorted((e for e in spans if e["name"] == "RunTask"), key=lambda e: e["ts"])
    if not tasks:
        return "    no tasks in the trace"
    start = tasks[0]["ts"]
    # self time per kind: an event's duration minus that of the kinded events nested in it
    kinded = sorted((e for e in spans if e["name"] in TRACE_KINDS), key=lambda e: e["ts"])
    totals: dict[str, float] = {}
    stack: list[list] = []
    for e in kinded:
        while stack and stack[-1][1] <= e["ts"]:
            stack.pop()
        if stack:
            totals[stack[-1][0]] = totals.get(stack[-1][0], 0.0) - e["dur"]
        kind = TRACE_KINDS[e["name"]]
        totals[kind] = totals.get(kind, 0.0) + e["dur"]
        stack.append([kind, e["ts"] + e["dur"]])
    busy = sum(t["dur"] for t in tasks) / 1000
    lines = [
        f"    main thread busy {busy:.1f} ms in {len(tasks)} tasks: "
        + ", ".join(f"{k} {v / 1000:.1f}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1]))
    ]
    for t in sorted(tasks, key=lambda e: -e["dur"])[:top]:
        if t["dur"] < 1000:
            break
        inner = {}
        for e in kinded:
            if t["ts"] <= e["ts"] < t["ts"] + t["dur"]:
                inner[e["name"]] = inner.get(e["name"], 0.0) + e["dur"]
        parts = ", ".join(
            f"{n} {d / 1000:.1f}" for n, d in sorted(inner.items(), key=lambda kv: -kv[1])[:5]
        )
        lines.append(
            f"    task at {(t['ts'] - start) / 1000:6.1f} ms: {t['dur'] / 1000:5.1f} ms  {parts}"
        )
    return "\n".join(lines)


def _trace(page, cdp, action):
    """Run ``action()`` under a Chromium timeline trace; return (its result, the trace events)."""
    events: list[dict] = []
    done: list[bool] = []
    cdp.on("Tracing.dataCollected", lambda e: events.extend(e["value"]))
    cdp.on("Tracing.tracingComplete", lambda e: done.append(True))
    cdp.send(
        "Tracing.start",
        {
            "traceConfig": {
                "includedCategories": [
                    "devtools.timeline",
                    "disabled-by-default-devtools.timeline",
                    "v8",
                    "__metadata",
                ],
            },
            "transferMode": "ReportEvents",
        },
    )
    result = action()
    cdp.send("Tracing.end")
    for _ in range(200):  # the trace arrives as events; the page's loop delivers them
        if done:
            break
        page.wait_for_timeout(50)
    return result, events


def measure(
    page, index: int, label: str, clicks: int, timeline: str = "", cdp=None, trace=False
) -> tuple[list[float], list[float], str]:
    first, settled, note = [], [], ""
    for click in range(clicks):
        # scrolled into place and quiet first (outside the profile: it samples the click only)
        page.evaluate(CLICK, [index, label, QUIET_MS, CLICK_GIVE_UP_MS, False, True])
        last = click == clicks - 1
        if cdp is not None and last:  # --profile: the last click, sampled
            frames.clear()
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 100})
            cdp.send("Profiler.start")

        def click_once():
            return page.evaluate(
                CLICK, [index, label, QUIET_MS, CLICK_GIVE_UP_MS, bool(timeline), False]
            )

        if trace and last:  # --trace: the last click under a timeline trace
            tracer = page.context.new_cdp_session(page)
            result, events = _trace(page, tracer, click_once)
            tracer.detach()
            print(
                f"\n{timeline or label}, click {click + 1} traced:"
                f" settled {result.get('settled')} ms"
                f" (the trace includes {QUIET_MS} ms of quiet)\n{trace_summary(events)}"
            )
        else:
            result = click_once()
        if cdp is not None and last:
            profile = cdp.send("Profiler.stop")["profile"]
            print(
                f"\n{timeline or label}, click {click + 1}, CPU profile (100 us samples,"
                f" includes {QUIET_MS} ms of quiet):\n{profile_summary(profile)}"
            )
            print(websocket_summary(frames))
        if timeline and click == clicks - 1:  # the last click's batches of DOM changes
            print(f"\n{timeline}, click {click + 1}: settled {result.get('settled')} ms")
            for at, count, what in result.get("batches", []):
                print(f"  {at:7.1f} ms {count:5d} changes: {what}")
        if "error" in result:
            return first, settled, result["error"]
        if result["settled"] is None:
            note = "a click changed nothing within 5 s"
            continue
        if result["first"] is not None:
            first.append(result["first"])
        settled.append(result["settled"])
    return first, settled, note


def measure_page(page, url, token, name, views, order, args) -> list:
    """Open notebook ``name``, Run All as a learner would, then click the baseline and each view
    of ``order`` (indexes into ``views``), fresh and after one simulated hour: the table's rows."""
    from playwright.sync_api import expect

    rows = []
    cdp = page.context.new_cdp_session(page) if args.profile else None
    if cdp is not None:
        cdp.send("Network.enable")
        for event, way in (
            ("Network.webSocketFrameSent", "sent"),
            ("Network.webSocketFrameReceived", "got"),
        ):
            cdp.on(
                event,
                lambda e, way=way: frames.append(
                    (e["timestamp"], way, len(e["response"].get("payloadData", "")))
                ),
            )
    # a workspace of its own: JupyterLab would reopen the notebooks of earlier pages beside it
    workspace = Path(name).stem
    page.goto(
        f"{url}/lab/workspaces/{workspace}/tree/{name}?token={token}",
        wait_until="domcontentloaded",
    )
    status = page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) |")
    expect(status).to_have_text("Python 3 (ipykernel) | Idle", timeout=KERNEL_IDLE_TIMEOUT)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands")
    # the command resolves once every cell has run (a chapter's labs start real brokers)
    page.evaluate(
        "async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
    )
    expect(status).to_have_text("Python 3 (ipykernel) | Idle", timeout=120_000)
    failed = {
        i: page.evaluate(
            KERNEL, f"if isinstance(v{i}, Exception): print(type(v{i}).__name__, v{i})"
        ).strip()
        for i in order
    }
    built = sum(not text for text in failed.values())
    page.wait_for_function(
        f"() => document.querySelectorAll('.mq-bench').length === {built} &&"
        " document.querySelector('.mq-bench-baseline .bqplot')",
        timeout=60_000,
    )
    page.evaluate("() => document.querySelector('.mq-bench-baseline').classList.add('mq-bench')")
    in_page = page.evaluate(
        "() => [...document.querySelectorAll('.mq-bench')]"
        ".map(e => e.classList.contains('mq-bench-baseline'))"
    )
    base_index = in_page.index(True)
    shown = iter(n for n, is_base in enumerate(in_page) if not is_base)
    index_of = {i: None if failed[i] else next(shown) for i in order}
    where = f" ({name.removeprefix('bench-').removesuffix('.ipynb')})" if args.page != "all" else ""

    f, s, note = measure(page, base_index, "Bump", args.clicks)
    rows.append(("baseline Button → bqplot Lines", "Bump", f, s, note))
    for i in order:
        cls, _a, label = views[i]
        if failed[i]:
            rows.append((cls, label, [], [], failed[i][:70]))
            continue
        f, s, note = measure(
            page, index_of[i], label, args.clicks, args.timeline and cls, cdp, args.trace
        )
        rows.append((cls, label, f, s, note))
    for i in order:
        cls, _a, label = views[i]
        if failed[i]:
            continue
        out = page.evaluate(
            KERNEL,
            f"try:\n    v{i}.advance(3600)\nexcept Exception as e:\n    print(type(e).__name__, e)",
        )
        if out.strip():
            rows.append((f"{cls} after 1 h", label, [], [], out.strip()[:70]))
            continue
        time.sleep(0.5)  # let the page draw the hour before clicking
        f, s, note = measure(
            page,
            index_of[i],
            label,
            args.clicks,
            args.timeline and f"{cls} after 1 h",
            cdp,
            args.trace,
        )
        rows.append((f"{cls} after 1 h", label, f, s, note))
    f, s, note = measure(page, base_index, "Bump", args.clicks)
    rows.append(("baseline again (end of a page)", "Bump", f, s, note))
    if where:
        print(f"measured{where}, load average {os.getloadavg()}")
    # the kernel goes with the page (and the brokers its labs started die with it)
    kernel = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id"
    )
    _request(f"{url}/api/kernels/{kernel}", token, method="DELETE", timeout=10.0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=15)
    parser.add_argument("--only", default="", help="comma-separated view classes")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print each view's last click as batches of DOM changes (time, count, what)",
    )
    parser.add_argument(
        "--unbounded",
        action="store_true",
        help="views send every sample of their series (the figures before step_points)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the page's CPU during each view's last click and print self time by function"
        " (that click is timed with the profiler on, and so is pooled: compare figures taken"
        " with --profile only with each other)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="record a Chromium timeline trace of each view's last click and print the main"
        " thread's time by kind (script, style, layout, paint, layerize, gc) and its longest tasks",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat the whole measurement in a fresh JupyterLab this many times; clicks pooled",
    )
    parser.add_argument(
        "--page",
        choices=("chapter", "all"),
        default="chapter",
        help="chapter: each view in its chapter's notebook, run as a learner runs it (labs too);"
        " all: one notebook that shows every view, nothing else",
    )
    parser.add_argument(
        "--windowing",
        choices=("contentVisibility", "none", "full", "defer"),
        default="contentVisibility",
        help="JupyterLab's notebook windowing mode: its default (contentVisibility: the browser"
        " skips drawing cells out of sight) or none (every cell drawn, as the tests set it)",
    )
    args = parser.parse_args()
    for name in ("clicks", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    views = [v for v in VIEWS if not args.only or v[0] in args.only.split(",")]
    tracker = "@jupyterlab/notebook-extension:tracker"
    overrides = {**OVERRIDES, tracker: {**OVERRIDES[tracker], "windowingMode": args.windowing}}

    from playwright.sync_api import sync_playwright

    print(f"load average before: {os.getloadavg()}")
    started = time.perf_counter()
    # each run: a fresh JupyterLab, page and kernel; the clicks of all runs are pooled
    rows: list[tuple[str, str, list[float], list[float], str]] = []
    for run in range(args.runs):
        if args.runs > 1:
            print(f"run {run + 1} of {args.runs}, load average {os.getloadavg()}")
        base = Path(tempfile.mkdtemp(prefix="bench-click-"))
        with (
            jupyter_lab(base, "00-the-problem.ipynb", overrides) as (url, token),
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            for name, nb, order in pages(views, args.page, args.unbounded):
                (base / "notebooks" / name).write_text(json.dumps(nb))
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                rows += measure_page(page, url, token, name, views, order, args)
                page.close()
            browser.close()

    mode = "every sample sent (--unbounded)" if args.unbounded else "bounded series"
    pooled: dict[tuple[str, str], list] = {}
    for name, label, f, s, note in rows:
        entry = pooled.setdefault((name, label), [[], [], [], ""])
        entry[0] += f
        entry[1] += s
        if s:
            entry[2].append(statistics.median(s))
        entry[3] = entry[3] or note
    runs = f"{args.runs} runs x " if args.runs > 1 else ""
    print(
        f"\n{runs}{args.clicks} clicks each, {mode}, --page {args.page},"
        f" --windowing {args.windowing}; ms, median / worst"
    )
    print(f"{'view':36} {'control':22} {'first change':>16} {'settled':>16}  note")
    for (name, label), (f, s, medians, note) in pooled.items():
        per_run = (
            "  each page's settled median " + ", ".join(f"{m:.0f}" for m in medians)
            if len(medians) > 1
            else ""
        )
        print(f"{name:36} {label:22} {figures(f):>16} {figures(s):>16}  {note}{per_run}")
    print(f"\nload average after: {os.getloadavg()}; took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
