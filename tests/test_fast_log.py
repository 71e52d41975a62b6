"""Chapter 7's measurements: they return positive numbers, check their arguments and leave no
files behind. Nothing here asserts a timing threshold: machines differ."""

from __future__ import annotations

import math
import os

import pytest

from mqlib.scenarios import fast_log


def positive(*values: float) -> bool:
    return all(isinstance(v, float) and v > 0 and math.isfinite(v) for v in values)


def test_sequential_vs_random_writes_returns_rates_and_cleans_up(tmp_path):
    result = fast_log.sequential_vs_random_writes(2, block_kb=4, directory=tmp_path)
    assert (result["size_mb"], result["block_kb"], result["fsync"]) == (2, 4, True)
    assert positive(result["sequential_mb_s"], result["random_mb_s"], result["ratio"])
    assert result["ratio"] == pytest.approx(result["sequential_mb_s"] / result["random_mb_s"])
    no_sync = fast_log.sequential_vs_random_writes(1, fsync=False, seed=3, directory=tmp_path)
    assert no_sync["fsync"] is False and positive(no_sync["ratio"])
    assert os.listdir(tmp_path) == []


def test_sendfile_vs_copy_returns_rates_and_cleans_up(tmp_path):
    result = fast_log.sendfile_vs_copy(2, chunk_kb=64, directory=tmp_path)
    assert (result["size_mb"], result["chunk_kb"]) == (2, 64)
    assert positive(result["sendfile_mb_s"], result["copy_mb_s"], result["ratio"])
    assert os.listdir(tmp_path) == []


def test_batched_vs_single_writes_returns_rates_and_cleans_up(tmp_path):
    result = fast_log.batched_vs_single_writes(1001, record_bytes=50, batch=100, directory=tmp_path)
    assert (result["records"], result["record_bytes"], result["batch"]) == (1001, 50, 100)
    assert positive(
        result["single_records_s"],
        result["batched_records_s"],
        result["single_mb_s"],
        result["batched_mb_s"],
        result["ratio"],
    )
    assert os.listdir(tmp_path) == []


def test_measure_all_gives_one_row_per_technique(tmp_path):
    rows = fast_log.measure_all(directory=tmp_path)
    assert [r["technique"] for r in rows] == ["sequential I/O", "zero-copy", "batching"]
    for row in rows:
        assert positive(row["faster"][1], row["slower"][1], row["ratio"])
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("call", "kwargs", "name"),
    [
        (fast_log.sequential_vs_random_writes, {"size_mb": 0}, "size_mb"),
        (fast_log.sequential_vs_random_writes, {"size_mb": 65}, "size_mb"),
        (fast_log.sequential_vs_random_writes, {"size_mb": 1, "block_kb": 1024}, "size_mb"),
        (fast_log.sequential_vs_random_writes, {"block_kb": 0}, "block_kb"),
        (fast_log.sequential_vs_random_writes, {"seed": -1}, "seed"),
        (fast_log.sendfile_vs_copy, {"size_mb": 100}, "size_mb"),
        (fast_log.sendfile_vs_copy, {"chunk_kb": 1}, "chunk_kb"),
        (fast_log.batched_vs_single_writes, {"records": 0}, "records"),
        (fast_log.batched_vs_single_writes, {"record_bytes": 0}, "record_bytes"),
        (fast_log.batched_vs_single_writes, {"batch": 1}, "batch"),
        (fast_log.batched_vs_single_writes, {"records": 200_000, "record_bytes": 1024}, "64 MiB"),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter(call, kwargs, name):
    with pytest.raises(ValueError, match=name):
        call(**kwargs)


def test_wrong_types_and_missing_directories_are_refused(tmp_path):
    with pytest.raises(TypeError, match="fsync"):
        fast_log.sequential_vs_random_writes(1, fsync="yes")
    with pytest.raises(TypeError, match="size_mb"):
        fast_log.sendfile_vs_copy("8")
    with pytest.raises(ValueError, match="directory"):
        fast_log.batched_vs_single_writes(10, batch=2, directory=tmp_path / "missing")
