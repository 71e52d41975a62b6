"""Check a built book in headless Chromium with no network: every page, over http and file://.

    python book/offline/check_offline.py [_build/html] [--screenshots DIR] [--no-file-url]

For each page it blocks (and reports) every request to a host other than 127.0.0.1, and fails on
console errors, uncaught page errors and failed local requests. On pages that carry saved widget
state it also waits until every widget view has rendered, and fails on widget error views and
on bqplot figures without a drawn mark. Prints "N passed, N failed" and exits 1 on any failure.

Needs Playwright for Python and a system Chromium (Debian: `apt-get install chromium`; set
CHROMIUM to use another binary).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WIDGET_STATE = 'script[type="application/vnd.jupyter.widget-state+json"]'
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'

# Each rendered view: its output container holds a rendered widget next to the view script.
JS_WIDGETS_RENDERED = """(viewSelector) => {
  const views = [...document.querySelectorAll(viewSelector)];
  return views.every(v => v.parentElement.querySelector('.jupyter-widgets, .widget-subarea > *'));
}"""

# Marks actually drawn in each bqplot figure (not axes, legend, toolbar icons, backgrounds).
JS_WIDGET_REPORT = """(viewSelector) => ({
  views: document.querySelectorAll(viewSelector).length,
  errors: document.querySelectorAll('.jupyter-widgets-error-widget').length,
  figures: [...document.querySelectorAll('.bqplot')].map(f =>
    [...f.querySelectorAll('svg path, svg rect, svg circle, svg polygon, svg line, svg text')]
      .filter(e => !e.closest('.axis, .g_legend, clipPath, defs, .svg-inline--fa'))
      .filter(e => !(e.getAttribute('class') || '').startsWith('plotarea'))
      .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length),
})"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - keep the report readable
        pass


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _check_page(browser, url: str, shot: Path | None) -> list[str]:
    problems: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        u = urlparse(r.request.url)
        if u.scheme in ("file", "data", "blob", "about") or u.hostname == "127.0.0.1":
            r.continue_()
        else:
            problems.append(f"request to another host (blocked): {r.request.url}")
            r.abort()

    ctx.route("**/*", route)
    page: Page = ctx.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"),
    )
    page.goto(url, wait_until="load")
    if page.locator(WIDGET_STATE).count():
        try:
            page.wait_for_function(JS_WIDGETS_RENDERED, arg=WIDGET_VIEW, timeout=30_000)
        except Exception:  # noqa: BLE001 - reported below
            problems.append("widgets did not render within 30 s")
        page.wait_for_timeout(1500)  # let bqplot transitions and quiz/MathJax timers finish
        report = page.evaluate(JS_WIDGET_REPORT, WIDGET_VIEW)
        if report["errors"]:
            problems.append(f"{report['errors']} widget(s) rendered as an error")
        empty = [i for i, n in enumerate(report["figures"]) if n == 0]
        if empty:
            problems.append(f"bqplot figure(s) {empty} have no drawn mark")
    else:
        page.wait_for_timeout(500)
    if shot:
        page.screenshot(path=str(shot))  # the top of the page, as a reader first sees it
        outputs = page.locator(f".cell_output:has({WIDGET_VIEW})")
        for i in range(outputs.count()):
            outputs.nth(i).screenshot(path=str(shot.with_name(f"{shot.stem}-widget{i}.png")))
    ctx.close()
    return list(dict.fromkeys(problems))  # the same error often repeats once per widget


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--screenshots", type=Path, help="write page/widget PNGs here")
    parser.add_argument("--no-file-url", action="store_true", help="only check over http")
    args = parser.parse_args(argv)

    root = args.html_dir.resolve()
    pages = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if not p.relative_to(root).parts[0].startswith("_")
    )
    if not pages:
        print(f"no HTML pages under {root}; build the book first", file=sys.stderr)
        return 1
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    server, base = _serve(root)
    bases = [("http", base)] + ([] if args.no_file_url else [("file", root.as_uri() + "/")])
    passed = failed = 0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                headless=True,
                args=CHROMIUM_ARGS,
            )
            for scheme, prefix in bases:
                for rel in pages:
                    shot = None
                    if args.screenshots:
                        name = rel.removesuffix(".html").replace("/", "__")
                        shot = args.screenshots / f"{scheme}-{name}.png"
                    problems = _check_page(browser, prefix + rel, shot)
                    status = "FAIL" if problems else "ok"
                    print(f"{status:4} {scheme:4} {rel}")
                    for problem in problems:
                        print(f"       {problem}")
                    passed += not problems
                    failed += bool(problems)
            browser.close()
    finally:
        server.shutdown()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
