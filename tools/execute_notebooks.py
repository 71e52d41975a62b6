"""Execute the chapter notebooks in place, saving their outputs and widget state.

The notebooks are committed executed: nbval compares a fresh run against the saved outputs, and a
learner who opens one in JupyterLab sees the simulations' pictures before running anything.

    python tools/execute_notebooks.py                 # every chapter
    python tools/execute_notebooks.py chapters/01-*.ipynb
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from nbedit import locked  # noqa: E402


def execute(path: Path) -> float:
    """Run every cell of ``path`` from a fresh kernel and write the result back; returns seconds.

    Holds the notebook's edit lock (``tools/nbedit.py``) from reading to writing, so an edit made
    meanwhile by someone else waits instead of being overwritten."""
    with locked(path):
        return _execute(path)


def _execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)  # timestamps would change every run
    nbformat.write(stable_widget_ids(nb, path.stem), path)
    return time.perf_counter() - started


def stable_widget_ids(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Replace the kernel's random widget model ids by ids derived from the notebook's name and the
    widget's position, so that re-executing an unchanged notebook leaves it unchanged in git."""
    widgets = nb.metadata.get("widgets", {})
    state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    text = json.dumps(nb)
    for index, old in enumerate(list(state)):
        text = text.replace(old, hashlib.md5(f"{name}:{index}".encode()).hexdigest())
    return nbformat.reads(text, as_version=4)


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "chapters").glob("*.ipynb"))
    for path in paths:
        print(f"{path.name}: {execute(path):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
