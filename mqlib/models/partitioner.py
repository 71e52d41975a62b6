"""How a Kafka producer picks the partition of each record.

A Kafka topic is split into numbered *partitions*; each partition is an ordered log. When a
producer sends a record it must choose one partition, and the choice decides everything that
follows: records in the same partition keep their order, records in different partitions do not.

The choice is made by the *client*, in the producer library, not by the broker, so two producers
with different partitioners put the same key in different partitions. Kafka's Java producer
chooses like this:

* **A record with a key** goes to ``to_positive(murmur2(key_bytes)) % num_partitions``
  (``BuiltInPartitioner.partitionForKey``). The same key bytes and the same partition count
  always give the same partition, which is why "all events of order 42 stay in order" works. Add
  partitions and the modulo changes, so keys move: the classic surprise of growing a topic.
* **A record without a key** has nothing to hash. Up to Kafka 2.3 the producer sent such records
  round-robin. Since 2.4 (KIP-480) it is *sticky*: it fills a batch for one partition and switches
  partition when the batch is sent. Since 3.3 (KIP-794) the built-in partitioner is *adaptive*:
  it switches after about ``batch.size`` bytes and sends fewer records to partitions whose broker
  is slow to answer (``partitioner.adaptive.partitioning.enable``, on by default).
  :class:`Partitioner` models round-robin and a simplified, deterministic sticky; it does not
  model the adaptive choice, which depends on broker latency.

:func:`murmur2` reproduces ``org.apache.kafka.common.utils.Utils.murmur2`` bit for bit, including
its Java quirk of returning a *signed* 32-bit int, so the partition numbers computed here are the
ones a real Java producer would pick. Clients built on librdkafka (confluent-kafka-python, the Go
and .NET clients) default to ``partitioner=consistent_random``: CRC32 of the key, random for
records without one. They agree with Java only when configured with ``murmur2_random``. A team
with producers in both worlds must set that, or one order's events land in two partitions.
"""

from __future__ import annotations

import struct
import zlib
from typing import Literal

from .. import _validate as check

__all__ = [
    "KEYLESS_STRATEGIES",
    "LIBRDKAFKA_PARTITIONERS",
    "Partitioner",
    "kafka_partition",
    "librdkafka_partition",
    "murmur2",
    "to_positive",
]

# The constants of Kafka's murmur2: MurmurHash2 by Austin Appleby with Kafka's fixed seed.
_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
# Python ints never overflow, Java ints wrap at 32 bits. Masking after every multiplication
# reproduces the wrap-around; the shifts below act on these unsigned values, which is what Java's
# unsigned shift ``>>>`` does.
_MASK32 = 0xFFFFFFFF

KEYLESS_STRATEGIES = ("sticky", "roundrobin")
"""How :class:`Partitioner` spreads records that have no key."""


def _bytes_arg(name: str, value: object) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        raise TypeError(
            f"{name} must be bytes, got the str {value!r}; encode it first, e.g. "
            f"{value!r}.encode('utf-8') (kafka_partition accepts str keys and does that for you)"
        )
    raise TypeError(f"{name} must be bytes, got {value!r} ({type(value).__name__})")


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 hash of ``data``, as the signed int Java returns.

    This is ``org.apache.kafka.common.utils.Utils.murmur2``: MurmurHash2 with seed
    ``0x9747b28c``, reading the input as little-endian 4-byte words. The result lies in
    ``[-2**31, 2**31 - 1]`` because Java has no unsigned int; :func:`to_positive` turns it into a
    non-negative number before the modulo.

    >>> murmur2(b"foobar")
    -790332482
    >>> murmur2(b"")        # an empty key is still a key, and it has a hash
    275646681
    """
    data = _bytes_arg("data", data)
    length = len(data)
    h = (_SEED ^ length) & _MASK32

    # Body: mix in four bytes at a time.
    whole = length - length % 4
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = (h * _M) & _MASK32
        h ^= k

    # Tail: the last 1-3 bytes (Java uses a switch that falls through from case 3 to case 1).
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * _M) & _MASK32

    # Final avalanche, so that every input bit affects every output bit.
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15

    # Reinterpret the 32 bits as Java's signed int (two's complement).
    return h - (1 << 32) if h & 0x80000000 else h


#: The most partitions a topic may have here (Kafka sets no hard limit; this keeps calls fast).
MAX_PARTITIONS = 100_000


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit, ``number & 0x7fffffff``.

    Why not ``abs()``? Because in Java ``Math.abs(Integer.MIN_VALUE)`` is still negative (it
    overflows), and a negative hash would give a negative partition number. Masking the sign bit
    has no such corner case. Note that the result is *not* ``abs(number)``:
    ``to_positive(-1) == 2147483647``.
    """
    check.integer("number", number, minimum=-(2**31), maximum=2**31 - 1)  # a Java int
    return number & 0x7FFFFFFF


def _key_bytes(key: object) -> bytes:
    if isinstance(key, str):
        try:
            # Kafka's StringSerializer encodes with UTF-8 by default.
            return key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"key must be encodable as UTF-8, got {key!r} (it contains a lone surrogate)"
            ) from None
    if isinstance(key, bytes | bytearray):
        return bytes(key)
    if key is None:
        raise TypeError(
            "key must be bytes or str, got None; a record without a key is not hashed: use "
            "Partitioner(...).partition(None) to spread keyless records"
        )
    raise TypeError(f"key must be bytes or str, got {key!r} ({type(key).__name__})")


def kafka_partition(key: bytes | str, num_partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a record with this ``key``.

    ``to_positive(murmur2(key)) % num_partitions``, with a ``str`` key encoded as UTF-8 first (as
    Kafka's ``StringSerializer`` does). Because only the key and the partition count enter the
    formula, every producer in every process agrees on where a key lives, without coordination.

    >>> kafka_partition("foobar", 50)
    16
    >>> kafka_partition(b"foobar", 50)   # same bytes, same partition
    16
    """
    data = _key_bytes(key)
    check.integer("num_partitions", num_partitions, minimum=1, maximum=MAX_PARTITIONS)
    return to_positive(murmur2(data)) % num_partitions


LIBRDKAFKA_PARTITIONERS = ("consistent_random", "murmur2_random", "consistent", "murmur2")
"""The hashing settings of librdkafka's ``partitioner`` property that :func:`librdkafka_partition`
computes (``random`` and ``fnv1a`` are left out)."""


def librdkafka_partition(
    key: bytes | str, num_partitions: int, partitioner: str = "consistent_random"
) -> int:
    """The partition a librdkafka-based producer (confluent-kafka-python, Go, .NET) picks for a
    record with this ``key``, for its ``partitioner`` setting.

    The default, ``"consistent_random"``, is the CRC32 of the key bytes modulo the partition
    count (an empty key is placed at random, so it raises here). ``"murmur2_random"`` is the
    Java producer's partitioner, :func:`kafka_partition`. So the same key can go to different
    partitions from a Python and a Java producer:

    >>> librdkafka_partition("44", 4), kafka_partition("44", 4)
    (1, 3)
    >>> librdkafka_partition("44", 4, "murmur2_random")
    3
    """
    data = _key_bytes(key)
    check.integer("num_partitions", num_partitions, minimum=1, maximum=MAX_PARTITIONS)
    check.choice("partitioner", partitioner, LIBRDKAFKA_PARTITIONERS)
    if partitioner.startswith("murmur2"):
        return kafka_partition(data, num_partitions)
    if not data and partitioner == "consistent_random":
        raise ValueError(
            "key must not be empty for partitioner 'consistent_random': librdkafka places empty "
            "and missing keys on a random partition"
        )
    return zlib.crc32(data) % num_partitions


class Partitioner:
    """Choose a partition for each record, as a Kafka producer does for one topic.

    Records **with a key** always go to :func:`kafka_partition`. Records **without a key**
    (``key=None``) are spread by the ``keyless`` strategy:

    ``"sticky"`` (like Kafka 2.4 to 3.2, KIP-480)
        Send ``batch_records`` keyless records in a row to one partition, then move on. Fewer,
        fuller batches mean fewer requests and better compression. Kafka counts the batch in
        bytes (``batch.size``, 16 KiB) and then picks a *random* partition; this model counts
        records and steps to the *next* partition (``start``, ``start + 1``, ... wrapping
        around), so every run of a scenario is identical. Since 3.3 (KIP-794) Kafka's choice is
        also *adaptive* (it avoids slow brokers), which this model leaves out.
    ``"roundrobin"`` (Kafka 2.3 and earlier)
        Each keyless record goes to the next partition: ``start``, ``start + 1``, ...
        (Kafka's old counter started at a random value; here it starts at ``start``.) This is the
        same as ``"sticky"`` with ``batch_records=1``. No current Kafka producer does this by
        default; chapter 4 uses it because it spreads a handful of events visibly.

    Keyed records never move the keyless position. (Kafka's separate ``RoundRobinPartitioner``
    class goes further and ignores keys altogether; this class always honours keys.)

    >>> p = Partitioner(3, keyless="roundrobin")
    >>> [p.partition() for _ in range(4)]
    [0, 1, 2, 0]
    >>> p = Partitioner(3, keyless="sticky", batch_records=2)
    >>> [p.partition() for _ in range(5)]
    [0, 0, 1, 1, 2]
    >>> p.partition("foobar")   # keyed: hashed, whatever the strategy
    0
    """

    def __init__(
        self,
        num_partitions: int,
        *,
        keyless: Literal["sticky", "roundrobin"] = "sticky",
        batch_records: int = 16,
        start: int = 0,
    ) -> None:
        self.num_partitions = check.integer(
            "num_partitions", num_partitions, minimum=1, maximum=MAX_PARTITIONS
        )
        self.keyless = check.choice("keyless", keyless, KEYLESS_STRATEGIES)
        self.batch_records = check.integer(
            "batch_records", batch_records, minimum=1, maximum=1_000_000
        )
        self.start = check.integer("start", start, minimum=0, maximum=num_partitions - 1)
        self._current = start  # the partition keyless records go to now
        self._sent_to_current = 0  # keyless records already sent to it

    def partition(self, key: bytes | str | None = None) -> int:
        """The partition for the next record with this ``key`` (``None`` for no key)."""
        if key is not None:
            return kafka_partition(key, self.num_partitions)
        # Round-robin is sticky with batches of one record.
        per_batch = 1 if self.keyless == "roundrobin" else self.batch_records
        if self._sent_to_current == per_batch:
            self._current = (self._current + 1) % self.num_partitions
            self._sent_to_current = 0
        self._sent_to_current += 1
        return self._current

    def __repr__(self) -> str:
        return (
            f"Partitioner({self.num_partitions}, keyless={self.keyless!r}, "
            f"batch_records={self.batch_records}, start={self.start})"
        )
