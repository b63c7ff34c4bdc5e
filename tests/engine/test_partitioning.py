"""partition_for agrees with Kafka's default partitioner."""

from __future__ import annotations

import pytest

from nudge.engine.partitioning import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2.items())
def test_murmur2_matches_kafka(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_is_the_positive_hash_modulo_the_count() -> None:
    assert partition_for("foobar", 8) == (-790332482 & 0x7FFFFFFF) % 8
    assert partition_for("21", 3) == (-973932308 & 0x7FFFFFFF) % 3


def test_every_key_lands_in_range_and_spreads() -> None:
    seen = {partition_for(f"c-{i}", 16) for i in range(1000)}
    assert seen == set(range(16))


def test_non_ascii_keys_hash_their_utf8_bytes() -> None:
    assert partition_for("åsa", 8) == (murmur2("åsa".encode()) & 0x7FFFFFFF) % 8
