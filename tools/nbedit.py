"""Edit chapter notebooks and shared book pages safely while others edit them too.

Several people (or processes) may change the same chapter at once: one adds a lab cell, another a
quiz or an exercise. Every read-modify-write of a shared file goes through a lock, so no edit
overwrites another's. ``tools/execute_notebooks.py`` takes the same lock while it runs a notebook.

As a library (run from the project root)::

    from tools.nbedit import Notebook, locked

    with Notebook("chapters/01-point-to-point.ipynb") as nb:   # locks and reads; writes on exit
        print(nb.outline())                                   # index, id, type, first line
        i = nb.find("## Run it")                               # first cell whose source contains it
        nb.replace(nb.cells[i]["id"], "## Run it\\n\\nNew text")
        new_id = nb.insert_after(nb.cells[i]["id"], "code", "print(1)")
        nb.delete(new_id)

    with locked("book/glossary.md"):                           # any other shared file
        text = open("book/glossary.md").read()
        ...

On the command line::

    python tools/nbedit.py list chapters/01-point-to-point.ipynb
    python tools/nbedit.py show chapters/01-point-to-point.ipynb CELL_ID
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat

LOCK_DIR = Path(tempfile.gettempdir()) / "mq-course-locks"


@contextlib.contextmanager
def locked(path: str | os.PathLike):
    """Hold an exclusive lock on ``path`` (by its absolute name) for the ``with`` block."""
    LOCK_DIR.mkdir(exist_ok=True)
    key = hashlib.md5(str(Path(path).resolve()).encode()).hexdigest()
    with open(LOCK_DIR / key, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _new_id() -> str:
    return uuid.uuid4().hex[:8]


def _cell(kind: str, source: str, tags: list[str] | None = None) -> dict:
    if kind not in ("markdown", "code"):
        raise ValueError(f"kind must be 'markdown' or 'code', not {kind!r}")
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source, id=_new_id())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


class Notebook:
    """A notebook opened for editing under its lock; saved when the ``with`` block ends cleanly."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = None
        self.nb: dict = {}

    def __enter__(self) -> Notebook:
        self._lock = locked(self.path)
        self._lock.__enter__()
        self.nb = nbformat.reads(self.path.read_text("utf-8"), as_version=4)
        self._before = nbformat.writes(self.nb)
        return self

    def __exit__(self, kind, value, tb):
        try:
            text = nbformat.writes(self.nb)
            if kind is None and text != self._before:
                if not text.endswith("\n"):
                    text += "\n"
                tmp = self.path.with_suffix(".ipynb.tmp")
                tmp.write_text(text, "utf-8")
                tmp.replace(self.path)
        finally:
            self._lock.__exit__(kind, value, tb)

    @property
    def cells(self) -> list[dict]:
        return self.nb["cells"]

    def source(self, cell_id: str) -> str:
        return "".join(self.cells[self.index(cell_id)]["source"])

    def index(self, cell_id: str) -> int:
        for i, cell in enumerate(self.cells):
            if cell.get("id") == cell_id:
                return i
        raise KeyError(f"no cell with id {cell_id!r} in {self.path}")

    def find(self, text: str, start: int = 0) -> int:
        """The index of the first cell from ``start`` whose source contains ``text``."""
        for i, cell in enumerate(self.cells[start:], start):
            if text in "".join(cell["source"]):
                return i
        raise KeyError(f"no cell containing {text!r} in {self.path}")

    def outline(self) -> str:
        rows = []
        for i, cell in enumerate(self.cells):
            first = "".join(cell["source"]).split("\n", 1)[0][:90]
            tags = cell.get("metadata", {}).get("tags")
            rows.append(f"{i:3} {cell.get('id')} {cell['cell_type']:8} {tags or ''} {first}")
        return "\n".join(rows)

    def replace(self, cell_id: str, source: str, *, clear_outputs: bool = True) -> None:
        cell = self.cells[self.index(cell_id)]
        cell["source"] = source
        if cell["cell_type"] == "code" and clear_outputs:
            cell["outputs"] = []
            cell["execution_count"] = None

    def insert_after(self, cell_id: str | None, kind: str, source: str, tags=None) -> str:
        """Insert a new cell after ``cell_id`` (at the top when ``None``); returns its id."""
        cell = _cell(kind, source, tags)
        at = 0 if cell_id is None else self.index(cell_id) + 1
        self.cells.insert(at, cell)
        return cell["id"]

    def insert_before(self, cell_id: str, kind: str, source: str, tags=None) -> str:
        cell = _cell(kind, source, tags)
        self.cells.insert(self.index(cell_id), cell)
        return cell["id"]

    def delete(self, cell_id: str) -> None:
        del self.cells[self.index(cell_id)]

    def set_tags(self, cell_id: str, tags: list[str]) -> None:
        meta = self.cells[self.index(cell_id)].setdefault("metadata", {})
        if tags:
            meta["tags"] = list(tags)
        else:
            meta.pop("tags", None)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "list":
        with Notebook(argv[1]) as nb:
            print(nb.outline())
        return 0
    if len(argv) == 3 and argv[0] == "show":
        with Notebook(argv[1]) as nb:
            print(nb.source(argv[2]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
