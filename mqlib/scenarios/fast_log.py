"""Chapter 7's measurements: why an append-only log is fast, timed on this machine.

Three small experiments, each in its own temporary directory that is removed afterwards, each
bounded in size so that all three together take a few seconds at most:

:func:`sequential_vs_random_writes`
    The same 4 KiB blocks written to a file front to back, then at shuffled offsets with
    ``os.pwrite``; each run ends with one ``os.fsync`` (so the data must reach the disk) unless
    ``fsync=False``.
:func:`sendfile_vs_copy`
    Sending a file into a local socket with ``os.sendfile`` (the kernel moves the bytes:
    zero-copy) versus ``read()`` into a Python buffer and ``sendall()`` (two copies through user
    space).
:func:`batched_vs_single_writes`
    Many small records written with one ``os.write`` system call each, versus joined into batches.

The functions return plain numbers (MB/s, ratios). Timings differ from machine to machine and from
run to run, so nothing here promises a particular figure; the ratios are what to look at.
"""

from __future__ import annotations

import os
import random
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .. import _validate as check

MB = 1024 * 1024


def _temp_dir(directory: str | os.PathLike[str] | None) -> tempfile.TemporaryDirectory[str]:
    if directory is not None and not isinstance(directory, str | os.PathLike):
        raise TypeError(
            f"directory must be a folder path (str or Path) or None, got {directory!r} "
            f"({type(directory).__name__})"
        )
    if directory is not None and not Path(directory).is_dir():
        raise ValueError(f"directory must be an existing folder, got {directory!r}")
    return tempfile.TemporaryDirectory(prefix="mq-fastlog-", dir=directory)


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes / MB / max(seconds, 1e-9)


def sequential_vs_random_writes(
    size_mb: int = 32,
    *,
    block_kb: int = 4,
    fsync: bool = True,
    seed: int = 0,
    directory: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write ``size_mb`` MiB in ``block_kb`` KiB blocks, in order and then in a shuffled order.

    Both runs write the same blocks with one ``os.pwrite`` each into a fresh file; the random run
    visits the offsets in an order shuffled with ``seed``. With ``fsync=True`` each run ends with
    one ``os.fsync``, and the time includes it.

    Returns ``size_mb``, ``block_kb``, ``fsync``, ``sequential_mb_s``, ``random_mb_s`` and
    ``ratio`` (sequential / random).
    """
    check.integer("size_mb", size_mb, minimum=1, maximum=64)
    check.integer("block_kb", block_kb, minimum=1, maximum=1024)
    check.boolean("fsync", fsync)
    check.integer("seed", seed, minimum=0)
    block = block_kb * 1024
    count = size_mb * MB // block
    if count < 2:
        raise ValueError("size_mb must hold at least two blocks of block_kb")
    data = os.urandom(block)
    order = list(range(count))
    shuffled = order[:]
    random.Random(seed).shuffle(shuffled)
    rates = {}
    with _temp_dir(directory) as folder:
        for name, offsets in (("sequential", order), ("random", shuffled)):
            path = os.path.join(folder, f"{name}.log")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                start = time.perf_counter()
                for i in offsets:
                    os.pwrite(fd, data, i * block)
                if fsync:
                    os.fsync(fd)
                rates[name] = _rate(count * block, time.perf_counter() - start)
            finally:
                os.close(fd)
            os.remove(path)
    return {
        "size_mb": size_mb,
        "block_kb": block_kb,
        "fsync": fsync,
        "sequential_mb_s": rates["sequential"],
        "random_mb_s": rates["random"],
        "ratio": rates["sequential"] / rates["random"],
    }


def _drain(sock: socket.socket, expected: int, received: list[int]) -> None:
    total = 0
    while total < expected:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        total += len(chunk)
    received.append(total)


def _send(path: str, size: int, chunk: int, zero_copy: bool) -> float:
    """Send the file at ``path`` through a local socket pair; returns the seconds it took."""
    left, right = socket.socketpair()
    received: list[int] = []
    reader = threading.Thread(target=_drain, args=(right, size, received), daemon=True)
    reader.start()
    try:
        with open(path, "rb") as f:
            start = time.perf_counter()
            if zero_copy:
                offset = 0
                while offset < size:
                    sent = os.sendfile(left.fileno(), f.fileno(), offset, min(chunk, size - offset))
                    if sent == 0:
                        break
                    offset += sent
            else:
                while piece := f.read(chunk):
                    left.sendall(piece)
            left.shutdown(socket.SHUT_WR)
            reader.join()
            seconds = time.perf_counter() - start
    finally:
        left.close()
        right.close()
    if received != [size]:
        raise RuntimeError(f"sent {size} bytes but the reader got {received}")
    return seconds


def sendfile_vs_copy(
    size_mb: int = 32, *, chunk_kb: int = 256, directory: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Send a ``size_mb`` MiB file into a local socket, with ``os.sendfile`` and with
    ``read()`` + ``sendall()``, ``chunk_kb`` KiB at a time.

    The file is written (and read once, so it sits in the page cache) before either run, as a
    broker serves recent records from the page cache. A thread on the other end of the socket pair
    reads everything in both runs.

    Returns ``size_mb``, ``chunk_kb``, ``sendfile_mb_s``, ``copy_mb_s`` and ``ratio``
    (sendfile / copy). Raises ``RuntimeError`` where ``os.sendfile`` is missing.
    """
    check.integer("size_mb", size_mb, minimum=1, maximum=64)
    check.integer("chunk_kb", chunk_kb, minimum=4, maximum=4096)
    if not hasattr(os, "sendfile"):
        raise RuntimeError("os.sendfile is not available on this platform")
    size = size_mb * MB
    with _temp_dir(directory) as folder:
        path = os.path.join(folder, "segment.log")
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        with open(path, "rb") as f:
            while f.read(1 << 20):  # warm the page cache
                pass
        zero_copy = _send(path, size, chunk_kb * 1024, zero_copy=True)
        copying = _send(path, size, chunk_kb * 1024, zero_copy=False)
        os.remove(path)
    sendfile_rate, copy_rate = _rate(size, zero_copy), _rate(size, copying)
    return {
        "size_mb": size_mb,
        "chunk_kb": chunk_kb,
        "sendfile_mb_s": sendfile_rate,
        "copy_mb_s": copy_rate,
        "ratio": sendfile_rate / copy_rate,
    }


def batched_vs_single_writes(
    records: int = 20_000,
    *,
    record_bytes: int = 100,
    batch: int = 100,
    directory: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Append ``records`` records of ``record_bytes`` bytes to a file, one ``os.write`` per record
    and then one ``os.write`` per ``batch`` records joined together (no fsync in either run).

    Returns ``records``, ``record_bytes``, ``batch``, ``single_records_s``,
    ``batched_records_s``, ``single_mb_s``, ``batched_mb_s`` and ``ratio`` (batched / single).
    """
    check.integer("records", records, minimum=1, maximum=200_000)
    check.integer("record_bytes", record_bytes, minimum=1, maximum=64 * 1024)
    check.integer("batch", batch, minimum=2, maximum=records if records >= 2 else 2)
    if records * record_bytes > 64 * MB:
        raise ValueError("records * record_bytes must be at most 64 MiB")
    record = b"x" * (record_bytes - 1) + b"\n"
    seconds = {}
    with _temp_dir(directory) as folder:
        for name in ("single", "batched"):
            path = os.path.join(folder, f"{name}.log")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            try:
                start = time.perf_counter()
                if name == "single":
                    for _ in range(records):
                        os.write(fd, record)
                else:
                    full, rest = divmod(records, batch)
                    chunk = record * batch
                    for _ in range(full):
                        os.write(fd, chunk)
                    if rest:
                        os.write(fd, record * rest)
                seconds[name] = time.perf_counter() - start
            finally:
                os.close(fd)
            if os.path.getsize(path) != records * record_bytes:
                raise RuntimeError(f"{name}: the file does not hold every record")
            os.remove(path)
    nbytes = records * record_bytes
    return {
        "records": records,
        "record_bytes": record_bytes,
        "batch": batch,
        "single_records_s": records / max(seconds["single"], 1e-9),
        "batched_records_s": records / max(seconds["batched"], 1e-9),
        "single_mb_s": _rate(nbytes, seconds["single"]),
        "batched_mb_s": _rate(nbytes, seconds["batched"]),
        "ratio": seconds["single"] / max(seconds["batched"], 1e-9),
    }


def measure_all(directory: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Run the three experiments at their default sizes; one row per experiment with
    ``technique``, ``faster``, ``slower`` (each a description and MB/s) and ``ratio``."""
    writes = sequential_vs_random_writes(directory=directory)
    send = sendfile_vs_copy(directory=directory)
    batches = batched_vs_single_writes(directory=directory)
    return [
        {
            "technique": "sequential I/O",
            "faster": ("sequential 4 KiB writes + fsync", writes["sequential_mb_s"]),
            "slower": ("random 4 KiB writes + fsync", writes["random_mb_s"]),
            "ratio": writes["ratio"],
        },
        {
            "technique": "zero-copy",
            "faster": ("os.sendfile to a socket", send["sendfile_mb_s"]),
            "slower": ("read() + sendall()", send["copy_mb_s"]),
            "ratio": send["ratio"],
        },
        {
            "technique": "batching",
            "faster": (f"{batches['batch']} records per write", batches["batched_mb_s"]),
            "slower": ("1 record per write", batches["single_mb_s"]),
            "ratio": batches["ratio"],
        },
    ]
