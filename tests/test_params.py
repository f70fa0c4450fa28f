"""Every numeric parameter is checked at construction, with its range in the message."""

import math

import pytest

import rtkit
from rtkit.cli import main
from rtkit.onchain import ChainCollector, Pool
from rtkit.params import RANGES

BAD = [
    ("flush_interval_s", math.inf),  # the writer never wakes: nothing stored
    ("flush_interval_s", 1e-9),  # the writer spins
    ("flush_interval_s", math.nan),
    ("flush_interval_s", True),
    ("stale_after_s", -1),  # every connection is stale at once: a reconnect loop
    ("stale_after_s", 0),
    ("stale_after_s", math.inf),
    ("pending_limit", -5),  # every tick dropped
    ("pending_limit", 0),
    ("pending_limit", 1e6),
    ("pending_limit", True),
    ("capacity", 1.5),
    ("capacity", 10**12),
    ("capacity", False),
    ("max_frame_bytes", 0),
    ("max_frame_bytes", -1),
    ("max_frame_bytes", 2**40),
    ("backoff_initial_s", 0),
    ("backoff_initial_s", -0.5),
    ("backoff_max_s", math.inf),
    ("backoff_max_s", "30"),
    ("connect_timeout_s", 0),
    ("connect_timeout_s", math.inf),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_out_of_range_parameter_is_refused_with_the_range(db, name, value):
    r = RANGES[name]
    with pytest.raises(ValueError, match=rf"^{name} must be .*between .* and .*{r.unit} "
                                         rf"\(default .*\), not "):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, **{name: value})
    assert not db.exists()  # refused before anything is made


def test_the_message_says_the_range_and_what_to_pass(db):
    with pytest.raises(ValueError) as e:
        rtkit.Collector("binance", ["BTC-USDT"], db=db, flush_interval_s=math.inf)
    assert str(e.value) == ("flush_interval_s must be between 0.01 and 3,600 seconds "
                            "(default 1), not inf")
    with pytest.raises(ValueError) as e:
        rtkit.Collector("binance", ["BTC-USDT"], db=db, pending_limit=-5)
    assert str(e.value) == ("pending_limit must be a whole number between 1 and 10,000,000 "
                            "ticks (default 500,000), not -5")


@pytest.mark.parametrize("name", sorted(RANGES))
def test_the_bounds_themselves_are_accepted(db, name):
    r = RANGES[name]
    for value in (r.low, r.high):
        if name == "capacity" and value == r.high:
            continue  # 4.7 GB of ring: the bound is a promise, not something to allocate here
        value = int(value) if r.whole else float(value)
        c = rtkit.Collector("binance", ["BTC-USDT"], db=db, **{name: value})
        assert not c.running


def test_group_onchain_and_replay_check_the_same_ranges(db, tmp_path):
    with pytest.raises(ValueError, match="flush_interval_s must be between"):
        rtkit.collect_many({"binance": ["BTC-USDT"], "coinbase": ["BTC-USD"]}, db=db,
                           flush_interval_s=math.inf)
    with pytest.raises(ValueError, match="stale_after_s must be between"):
        rtkit.CollectorGroup({"binance": ["BTC-USDT"]}, db=db,
                             venue_options={"binance": {"stale_after_s": -1}})
    pool = Pool("0x" + "11" * 20, token0="USDC", token1="ETH", decimals0=6, decimals1=18,
                version=3)
    with pytest.raises(ValueError, match="pending_limit must be a whole number between"):
        ChainCollector([pool], db=tmp_path / "chain.sqlite", pending_limit=-5)
    recording = tmp_path / "empty.jsonl"
    recording.write_text("")
    for bad in ({"capacity": 0}, {"max_frame_bytes": -1}, {"capacity": True}):
        with pytest.raises(ValueError, match="must be a whole number between"):
            rtkit.replay(recording, db=tmp_path / "replayed.sqlite", **bad)
    assert not (tmp_path / "replayed.sqlite").exists()


@pytest.mark.parametrize("value", ["inf", "1e-9", "nan", "-1"])
def test_cli_flush_interval_gives_the_message_not_a_traceback(tmp_path, capsys, value):
    code = main(["collect", "binance", "BTC-USDT", "--db", str(tmp_path / "t.sqlite"),
                 "--url", "ws://127.0.0.1:9/ws", "--duration", "0.2",
                 f"--flush-interval={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "rtkit collect: flush_interval_s must be between 0.01 and 3,600 seconds" in err
    assert "Traceback" not in err
