"""rtkit.books.checksum against the venues' documented worked examples."""

from __future__ import annotations

import json

from rtkit.books.checksum import (
    kraken_crc32,
    kraken_digits,
    kraken_text,
    okx_crc32,
    okx_text,
    signed32,
)  # fmt: skip
from tests.books.golden import spec


def _kraken_v2_example():
    """The levels of Kraken's v2 worked example, as the fixture holds them."""
    case = spec("kraken")["cases"][0]
    data = json.loads(case["text"])["data"][0]
    bids = [(lv["price"], lv["qty"]) for lv in data["bids"]]
    asks = [(lv["price"], lv["qty"]) for lv in data["asks"]]
    return bids, asks, data["checksum"]


def test_kraken_digits_follow_the_guide():
    assert kraken_digits("45285.2") == "452852"
    assert kraken_digits("0.00100000") == "100000"
    assert kraken_digits("0.05000") == "5000"
    assert kraken_digits("0.00000500") == "500"


def test_kraken_v2_worked_example_reproduced_exactly():
    bids, asks, checksum = _kraken_v2_example()
    assert checksum == 3310070434
    assert kraken_text(asks, bids).startswith("452852100000" "4528641545719534")
    assert kraken_crc32(asks, bids) == 3310070434


def test_kraken_v1_worked_example_reproduced_exactly():
    frame = spec("kraken-v1")["cases"][0]["frame"][1]
    asks = [(p, q) for p, q, _ in frame["as"]]
    bids = [(p, q) for p, q, _ in frame["bs"]]
    assert kraken_crc32(asks, bids) == 974947235


def test_kraken_checksum_covers_only_the_top_ten():
    bids, asks, checksum = _kraken_v2_example()
    deeper_bids = bids + [("45200.0", "9.00000000")]
    deeper_asks = asks + [("45400.0", "9.00000000")]
    assert kraken_crc32(deeper_asks, deeper_bids) == checksum


def test_a_float_round_trip_breaks_the_kraken_checksum():
    """Real captures: '0.80386470' → 0.8038647 → another checksum."""
    bids, asks, checksum = _kraken_v2_example()
    asks = [("45285.2", "0.80386470")] + asks[1:]
    from_strings = kraken_crc32(asks, bids)
    via_float = [(repr(float(p)), repr(float(q))) for p, q in asks]
    assert via_float[0] == ("45285.2", "0.8038647")
    assert kraken_crc32(via_float, bids) != from_strings


def test_okx_documented_check_strings_and_values():
    """OKX's two documented examples: 25+ levels (only 2 shown) and a short side."""
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8")]
    assert okx_text(bids, asks) == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert okx_crc32(bids, asks) == -1881014294
    short_bids = [("3366.1", "7")]
    long_asks = [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
    assert okx_text(short_bids, long_asks) == "3366.1:7:3366.8:9:3368:8:3372:8"
    assert okx_crc32(short_bids, long_asks) == 831078360


def test_okx_takes_the_top_25_of_each_side():
    bids = [(str(1000 - i), "1") for i in range(30)]
    asks = [(str(1001 + i), "1") for i in range(30)]
    assert okx_crc32(bids, asks) == okx_crc32(bids[:25], asks[:25])
    assert okx_crc32(bids, asks) != okx_crc32(bids[:24], asks[:25])


def test_signed32():
    assert signed32(0) == 0
    assert signed32(2**31 - 1) == 2**31 - 1
    assert signed32(2**31) == -(2**31)
    assert signed32(2**32 - 1) == -1
