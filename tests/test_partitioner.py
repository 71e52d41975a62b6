"""Tests for mqlib.models.partitioner: Kafka's murmur2, key -> partition, keyless spreading."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqlib.models.partitioner import (
    KEYLESS_STRATEGIES,
    Partitioner,
    kafka_partition,
    murmur2,
    to_positive,
)

# --- Published test vectors -------------------------------------------------------------------

# apache/kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
# testMurmur2 (signed Java ints).
KAFKA_UTILS_TEST = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
]


def _int32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


_UNALIGNED = b"PreAmbleWillBeRemoved,ThePrePartThatIs"
# confluentinc/librdkafka, src/rdmurmur2.c, unittest_murmur2: "java_murmur2_results", written
# there as hex int32. The suffixes of "1234" and of _UNALIGNED cover every tail length 0-3.
LIBRDKAFKA_TEST = [
    (b"kafka", _int32(0xD067CF64)),
    (b"giberish123456789", _int32(0x8F552B0C)),
    (b"1234", _int32(0x9FC97B14)),
    (b"234", _int32(0xE7C009CA)),
    (b"34", _int32(0x873930DA)),
    (b"4", _int32(0x5A4B5CA1)),
    (_UNALIGNED, _int32(0x78424F1C)),
    (_UNALIGNED[1:], _int32(0x4A62B377)),
    (_UNALIGNED[2:], _int32(0xE0E4E09E)),
    (_UNALIGNED[3:], _int32(0x62B8B43F)),
    (b"", _int32(0x106E08D9)),
]

# dpkp/kafka-python, test/test_partitioner.py, test_murmur2_java_compatibility: partitions over
# 1000 partitions, "compare with output from Kafka's org.apache.kafka.clients.producer.Partitioner".
KAFKA_PYTHON_PARTITIONS_OF_1000 = [
    (b"", 681),
    (b"a", 524),
    (b"ab", 434),
    (b"abc", 107),
    (b"123456789", 566),
    (b"\x00 ", 742),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_UTILS_TEST)
def test_murmur2_matches_kafka_utils_test(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@pytest.mark.parametrize(("data", "expected"), LIBRDKAFKA_TEST)
def test_murmur2_matches_librdkafka_java_results(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@pytest.mark.parametrize(("key", "expected"), KAFKA_PYTHON_PARTITIONS_OF_1000)
def test_kafka_partition_matches_java_producer(key: bytes, expected: int) -> None:
    assert kafka_partition(key, 1000) == expected


def test_partition_of_foobar_worked_by_hand() -> None:
    # -790332482 & 0x7fffffff == 1357151166, and 1357151166 % 50 == 16.
    assert to_positive(-790332482) == 1357151166
    assert kafka_partition("foobar", 50) == 16


# --- An independent, line-by-line transliteration of the Java code ----------------------------


def _java_murmur2(data: bytes) -> int:
    """Utils.murmur2 written as Java executes it: signed ints that wrap, >>> for shifts."""

    def wrap(x: int) -> int:  # what a Java int keeps of x
        return _int32(x & 0xFFFFFFFF)

    def ushr(x: int, n: int) -> int:  # Java's unsigned shift x >>> n
        return (x & 0xFFFFFFFF) >> n

    length = len(data)
    seed = _int32(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = wrap(seed ^ length)
    for i in range(length // 4):
        i4 = i * 4
        k = wrap(
            (data[i4] & 0xFF)
            + ((data[i4 + 1] & 0xFF) << 8)
            + ((data[i4 + 2] & 0xFF) << 16)
            + ((data[i4 + 3] & 0xFF) << 24)
        )
        k = wrap(k * m)
        k = wrap(k ^ ushr(k, r))
        k = wrap(k * m)
        h = wrap(h * m)
        h = wrap(h ^ k)
    rest = length % 4
    base = length & ~3
    if rest == 3:
        h = wrap(h ^ ((data[base + 2] & 0xFF) << 16))
    if rest >= 2:
        h = wrap(h ^ ((data[base + 1] & 0xFF) << 8))
    if rest >= 1:
        h = wrap(h ^ (data[base] & 0xFF))
        h = wrap(h * m)
    h = wrap(h ^ ushr(h, 13))
    h = wrap(h * m)
    h = wrap(h ^ ushr(h, 15))
    return h


def test_reference_transliteration_agrees_with_published_vectors() -> None:
    # Guards the test oracle itself before the property test below relies on it.
    for data, expected in KAFKA_UTILS_TEST + LIBRDKAFKA_TEST:
        assert _java_murmur2(data) == expected


@given(st.binary(max_size=64))
def test_murmur2_agrees_with_java_transliteration(data: bytes) -> None:
    result = murmur2(data)
    assert result == _java_murmur2(data)
    assert -(2**31) <= result < 2**31


# --- kafka_partition ---------------------------------------------------------------------------


@given(st.text(max_size=30), st.integers(min_value=1, max_value=500))
def test_str_key_is_its_utf8_bytes(key: str, num_partitions: int) -> None:
    expected = kafka_partition(key.encode("utf-8"), num_partitions)
    assert kafka_partition(key, num_partitions) == expected
    assert kafka_partition(bytearray(key, "utf-8"), num_partitions) == expected


@given(st.binary(max_size=40), st.integers(min_value=1, max_value=10_000))
def test_partition_is_in_range(key: bytes, num_partitions: int) -> None:
    assert 0 <= kafka_partition(key, num_partitions) < num_partitions


def test_one_partition_takes_every_key() -> None:
    assert {kafka_partition(f"user-{i}", 1) for i in range(50)} == {0}


def test_adding_partitions_moves_keys() -> None:
    # The lesson of growing a topic: the same key can land elsewhere once the count changes.
    keys = [f"order-{i}" for i in range(100)]
    moved = [k for k in keys if kafka_partition(k, 6) != kafka_partition(k, 8)]
    assert moved


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_to_positive_clears_only_the_sign_bit(n: int) -> None:
    result = to_positive(n)
    assert 0 <= result <= 2**31 - 1
    assert result == (n if n >= 0 else n + 2**31)


def test_to_positive_corner_cases() -> None:
    assert to_positive(-(2**31)) == 0  # where Java's Math.abs would have stayed negative
    assert to_positive(-1) == 2**31 - 1


# --- Partitioner (keyless records) ------------------------------------------------------------


def test_roundrobin_cycles_from_start() -> None:
    p = Partitioner(3, keyless="roundrobin", start=1)
    assert [p.partition() for _ in range(7)] == [1, 2, 0, 1, 2, 0, 1]


def test_sticky_fills_a_batch_then_moves_on() -> None:
    p = Partitioner(3, batch_records=2)
    assert p.keyless == "sticky"
    assert [p.partition(None) for _ in range(8)] == [0, 0, 1, 1, 2, 2, 0, 0]


def test_keyed_records_are_hashed_and_do_not_move_the_sticky_partition() -> None:
    p = Partitioner(1000, batch_records=2)
    assert p.partition() == 0
    assert p.partition(b"abc") == 107
    assert p.partition("abc") == 107
    assert p.partition() == 0  # still the same batch: the keyed records did not count
    assert p.partition() == 1


@given(
    st.integers(min_value=1, max_value=8),
    st.sampled_from(KEYLESS_STRATEGIES),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=60),
)
def test_keyless_spreading_is_even_and_deterministic(
    n: int, strategy: str, batch: int, records: int
) -> None:
    a = Partitioner(n, keyless=strategy, batch_records=batch)
    b = Partitioner(n, keyless=strategy, batch_records=batch)
    seq = [a.partition() for _ in range(records)]
    assert seq == [b.partition() for _ in range(records)]
    per_batch = 1 if strategy == "roundrobin" else batch
    # Record i goes to batch i // per_batch, and batches take the partitions in turn.
    assert seq == [(i // per_batch) % n for i in range(records)]


def test_repr_shows_the_settings() -> None:
    assert repr(Partitioner(4, keyless="roundrobin")) == (
        "Partitioner(4, keyless='roundrobin', batch_records=16, start=0)"
    )


# --- Bad arguments -----------------------------------------------------------------------------

_not_an_int = st.one_of(
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
_bad_count = st.one_of(_not_an_int, st.integers(max_value=0))
_not_a_key = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(st.integers(0, 255), max_size=3),
    st.tuples(st.binary(max_size=2)),
)


@given(_bad_count)
def test_bad_num_partitions_is_named(value: object) -> None:
    with pytest.raises((TypeError, ValueError), match="num_partitions") as info:
        kafka_partition(b"k", value)  # type: ignore[arg-type]
    assert repr(value) in str(info.value)
    with pytest.raises((TypeError, ValueError), match="num_partitions"):
        Partitioner(value)  # type: ignore[arg-type]


def test_num_partitions_message_says_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"^num_partitions must be >= 1, got 0$"):
        kafka_partition("k", 0)
    with pytest.raises(TypeError, match=r"num_partitions must be an integer, got 2\.0 \(float\)"):
        kafka_partition("k", 2.0)  # type: ignore[arg-type]


@given(_not_a_key)
def test_bad_key_is_named(value: object) -> None:
    with pytest.raises(TypeError, match="^key must be bytes or str"):
        kafka_partition(value, 3)  # type: ignore[arg-type]


def test_none_key_points_to_the_keyless_partitioner() -> None:
    with pytest.raises(TypeError, match="Partitioner"):
        kafka_partition(None, 3)  # type: ignore[arg-type]


def test_key_with_lone_surrogate_is_rejected() -> None:
    with pytest.raises(ValueError, match="key must be encodable as UTF-8"):
        kafka_partition("\ud800", 3)


@given(st.one_of(_not_a_key, st.text(max_size=5)))
def test_murmur2_wants_bytes(value: object) -> None:
    with pytest.raises(TypeError, match="^data must be bytes"):
        murmur2(value)  # type: ignore[arg-type]


def test_murmur2_str_message_suggests_encoding() -> None:
    with pytest.raises(TypeError, match=r"encode\('utf-8'\)"):
        murmur2("foobar")  # type: ignore[arg-type]


@given(_not_an_int)
def test_to_positive_wants_an_int(value: object) -> None:
    with pytest.raises(TypeError, match="^number must be an integer"):
        to_positive(value)  # type: ignore[arg-type]


@given(st.text(max_size=12).filter(lambda s: s not in KEYLESS_STRATEGIES))
def test_unknown_keyless_strategy_lists_the_allowed_ones(value: str) -> None:
    with pytest.raises(ValueError, match="keyless must be one of 'sticky', 'roundrobin'"):
        Partitioner(3, keyless=value)  # type: ignore[arg-type]


@given(_bad_count)
def test_bad_batch_records_is_named(value: object) -> None:
    with pytest.raises((TypeError, ValueError), match="^batch_records must be"):
        Partitioner(3, batch_records=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("start", [-1, 3, 10])
def test_start_must_be_a_partition(start: int) -> None:
    with pytest.raises(ValueError, match=f"^start must be .*got {start}$"):
        Partitioner(3, start=start)


def test_bad_key_through_partitioner_is_named() -> None:
    with pytest.raises(TypeError, match="^key must be bytes or str, got 42 \\(int\\)"):
        Partitioner(3).partition(42)  # type: ignore[arg-type]


# -- librdkafka's partitioners --------------------------------------------------------------------
def test_librdkafka_default_is_crc32_and_murmur2_random_matches_java() -> None:
    """librdkafka CONFIGURATION.md: ``partitioner`` defaults to ``consistent_random`` (CRC32 of the
    key); ``murmur2_random`` is the Java producer compatible hash."""
    import zlib

    from mqlib.models.partitioner import librdkafka_partition

    for key in ("42", "43", "44", "foobar", "order-7"):
        assert librdkafka_partition(key, 4) == zlib.crc32(key.encode()) % 4
        assert librdkafka_partition(key, 4, "murmur2_random") == kafka_partition(key, 4)
    # The chapter's point: a Python and a Java producer disagree on order 44.
    assert (librdkafka_partition("44", 4), kafka_partition("44", 4)) == (1, 3)
    with pytest.raises(ValueError, match="partitioner must be one of"):
        librdkafka_partition("42", 4, "sticky")
    with pytest.raises(ValueError, match="key must not be empty for partitioner"):
        librdkafka_partition(b"", 4)
    assert librdkafka_partition(b"", 4, "consistent") == 0  # crc32(b"") is 0


def test_librdkafka_partition_agrees_with_a_real_librdkafka_producer() -> None:
    """confluent-kafka's own producer against librdkafka's in-process mock cluster (which listens
    on 127.0.0.1 and auto-creates a 4-partition topic): the partitions it reports are the ones
    computed here, for both partitioner settings."""
    import confluent_kafka  # in requirements.txt (tested with 2.16.1, librdkafka 2.16.0)

    from mqlib.models.partitioner import librdkafka_partition

    keys = ("42", "43", "44", "foobar")
    for setting in ("consistent_random", "murmur2_random"):
        placed: dict[str, int] = {}
        producer = confluent_kafka.Producer(
            {"test.mock.num.brokers": 1, "partitioner": setting, "log_level": 3}
        )
        for key in keys:
            producer.produce(
                "orders",
                key=key,
                value=b"x",
                on_delivery=lambda e, m, placed=placed: placed.update(
                    {m.key().decode(): m.partition()}
                ),
            )
        assert producer.flush(15) == 0  # bounded wait for every delivery report
        partitions = len(producer.list_topics("orders", timeout=5).topics["orders"].partitions)
        assert placed == {k: librdkafka_partition(k, partitions, setting) for k in keys}
