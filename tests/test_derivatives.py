"""Derivatives sizes (issue 14 item 5): OKX SWAP/FUTURES and Bybit inverse trades are
stored in base units, converted with the contract's value; the value comes from the
venue's instruments list at start (or ``contract_values=``), is kept in the
``instruments`` table and in the recording, and a replay converts alike. The golden
frames are in tests/venues/fixtures/okx-derivatives.json and bybit-inverse.json."""

from __future__ import annotations

import sqlite3

import orjson
import pytest

import rtkit
from rtkit.instruments import Contract, ContractError, contracts_from_option, okx_contract_id
from rtkit.recording import read_recording
from rtkit.sim import Simulator
from rtkit.sim.rest import SimRest
from rtkit.validate import Reject
from rtkit.venues import get_adapter
from tests.conftest import wait_for

#: the simulated OKX's contract values (rtkit.sim.rest_answers): 0.01 BTC linear, 100 USD
#: inverse; BTC-USD-261225 is the simulated FUTURES listing
LINEAR, INVERSE, FUTURE = "BTC-USDT-SWAP", "BTC-USD-SWAP", "BTC-USD-261225"


def ticks(db) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks "
                           "ORDER BY symbol, CAST(trade_id AS INTEGER), trade_id").fetchall()


def instruments(db) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT venue, symbol, kind, ct_val, ct_val_ccy, ct_type "
                           "FROM instruments ORDER BY symbol").fetchall()


# --- symbols and facts -------------------------------------------------------------------
def test_okx_contract_symbols_keep_their_id():
    okx = get_adapter("okx")
    assert okx.normalise_symbol("btc-usdt-swap") == "BTC-USDT-SWAP"
    assert okx.normalise_symbol(" BTC-USD-220527") == "BTC-USD-220527"
    assert okx.native_symbol("BTC-USD-SWAP") == "BTC-USD-SWAP"
    assert okx.normalise_symbol("btc/usdt") == "BTC-USDT"  # spot unchanged
    assert okx.contract_symbols(["BTC-USDT", LINEAR, "BTC-USD-220527"]) == [
        LINEAR, "BTC-USD-220527"]
    for bad in ("BTC-USDT-PERP", "BTC-USD-2205", "BTC-USD-SWAP-X"):
        assert okx_contract_id(bad) is None
        with pytest.raises(ValueError, match="not in okx form"):
            okx.normalise_symbol(bad)


def test_bybit_inverse_symbols_and_endpoint():
    bybit = get_adapter("bybit", category="inverse")
    assert bybit.normalise_symbol("BTCUSD") == "BTC-USD"
    assert bybit.native_symbol("BTC-USD") == "BTCUSD"
    assert bybit.url(None, []) == "wss://stream.bybit.com/v5/public/inverse"
    assert bybit.contract_symbols(["BTC-USD"]) == ["BTC-USD"]
    assert get_adapter("bybit", category="linear").contract_symbols(["BTC-USDT"]) == []


def test_contract_values_option_and_its_checks():
    got = contracts_from_option("okx", {"btc-usdt-swap": 0.01, INVERSE: "100"})
    assert got[LINEAR] == Contract("okx", LINEAR, "swap", 0.01, "BTC", "linear")
    assert got[INVERSE] == Contract("okx", INVERSE, "swap", 100.0, "USD", "inverse")
    for bad, message in [({LINEAR: 0}, "above 0"), ({LINEAR: "x"}, "not a number"),
                         ({LINEAR: float("nan")}, "above 0"), ({"BTC-USDT": 1}, "no OKX SWAP"),
                         ({LINEAR: {"ct_val": 1, "ct_val_ccy": "USDT"}}, "must be in BTC"),
                         ({INVERSE: {"ct_val": 100, "ct_val_ccy": "BTC", "ct_type": "inverse"}},
                          "must be in USD"),
                         ({INVERSE: {"ct_val": 100, "ct_type": "both"}}, "'linear' or")]:
        with pytest.raises(ContractError, match=message):
            contracts_from_option("okx", bad)
    with pytest.raises(ContractError, match="takes no contract_values"):
        contracts_from_option("bybit", {"BTC-USD": 1})


def test_stored_volume_gives_back_the_contracts():
    linear = Contract("okx", LINEAR, "swap", 0.01, "BTC", "linear")
    inverse = Contract("okx", INVERSE, "swap", 100.0, "USD", "inverse")
    assert linear.contracts(linear.base_volume(12.0, 42_000.0), 42_000.0) == pytest.approx(12.0)
    assert inverse.contracts(inverse.base_volume(3.0, 40_000.0), 40_000.0) == pytest.approx(3.0)


def test_a_contract_of_unknown_value_is_refused_not_stored_in_contracts():
    frame = orjson.dumps({"arg": {"channel": "trades", "instId": LINEAR}, "data": [
        {"instId": LINEAR, "tradeId": "5", "px": "42000", "sz": "12", "side": "buy",
         "ts": "1630048897897", "count": "1"}]})
    [reject] = get_adapter("okx").parse(frame, 0)
    assert isinstance(reject, Reject) and reject.reason == "unknown_symbol"
    assert "contract of unknown value" in reject.detail


# --- end to end over the simulator (WebSocket + REST) ------------------------------------
def _expected_okx(sim: Simulator) -> list[tuple]:
    """The simulator's trades as they must be stored: sizes are contracts."""
    out = []
    for t in sim.trades:
        contracts, price = float(t.volume), float(t.price)
        volume = contracts * 0.01 if t.symbol == LINEAR else contracts * 100.0 / price
        out.append((t.symbol, str(t.trade_id), t.ts_ns, price, volume,
                    "buy" if t.side == "buy" else "sell"))
    return sorted(out, key=lambda r: (r[0], int(r[1])))


def test_okx_linear_inverse_and_futures_over_the_simulator(db, tmp_path):
    recording = tmp_path / "okx.jsonl"
    with Simulator("okx", rate=3000, count=300, seed=3) as sim, \
            SimRest(sim, symbols=["BTC-USD"]) as rest:
        c = rtkit.Collector("okx", ["btc-usdt-swap", INVERSE, FUTURE], url=sim.url, db=db,
                            flush_interval_s=0.1, record_raw=recording)
        with c:
            wait_for(lambda: c.stats["stored"] >= 300, 15)
    assert c.stats["rejected"] == 0, c.stats
    assert {t.symbol for t in sim.trades} == {LINEAR, INVERSE, FUTURE}
    assert ticks(db) == _expected_okx(sim)  # exactly contracts × ctVal (÷ price if inverse)
    assert instruments(db) == [
        ("okx", FUTURE, "futures", 100.0, "USD", "inverse"),
        ("okx", INVERSE, "swap", 100.0, "USD", "inverse"),
        ("okx", LINEAR, "swap", 0.01, "BTC", "linear")]
    # one list per instrument type, fetched once at start
    assert rest.requests["/api/v5/public/instruments"] == 2
    # the recording keeps the facts, and its replay converts alike
    [event] = [e for e in read_recording(recording) if getattr(e, "event", "") == "instruments"]
    assert {f["symbol"]: f["ct_val"] for f in event.instruments} == {
        LINEAR: 0.01, INVERSE: 100.0, FUTURE: 100.0}
    replayed = tmp_path / "replay.sqlite"
    summary = rtkit.replay(recording, replayed)
    assert summary["rejected"] == 0 and ticks(replayed) == ticks(db)
    assert instruments(replayed) == instruments(db)


def test_a_recording_without_the_facts_does_not_store_contracts_as_coins(db, tmp_path):
    recording = tmp_path / "okx.jsonl"
    with Simulator("okx", rate=3000, count=50, seed=4) as sim, SimRest(sim):
        c = rtkit.Collector("okx", [LINEAR], url=sim.url, db=db, flush_interval_s=0.1,
                            record_raw=recording)
        with c:
            wait_for(lambda: c.stats["stored"] >= 50, 15)
    lines = [line for line in recording.read_bytes().splitlines()
             if b'"event":"instruments"' not in line]
    stripped = tmp_path / "stripped.jsonl"
    stripped.write_bytes(b"\n".join(lines) + b"\n")
    summary = rtkit.replay(stripped, tmp_path / "replay.sqlite")
    assert summary["stored"] == 0
    assert summary["rejected_by_reason"] == {"unknown_symbol": 50}


def test_explicit_contract_values_need_no_rest(db):
    with Simulator("okx", rate=3000, count=100, seed=5) as sim:  # no REST side at all
        c = rtkit.Collector("okx", [LINEAR], url=sim.url, db=db, flush_interval_s=0.1,
                            rest_url="http://127.0.0.1:9",  # nothing listens: never asked
                            contract_values={LINEAR: 0.01})
        with c:
            wait_for(lambda: c.stats["stored"] >= 100, 15)
    assert c.stats["rejected"] == 0
    assert ticks(db) == _expected_okx(sim)
    assert instruments(db) == [("okx", LINEAR, "swap", 0.01, "BTC", "linear")]


def test_bybit_inverse_over_the_simulator(db):
    with Simulator("bybit", rate=3000, count=300, seed=6, category="inverse") as sim:
        c = rtkit.Collector("bybit", ["BTCUSD", "ETH-USD"], url=sim.url, db=db,
                            flush_interval_s=0.1, category="inverse")
        with c:
            wait_for(lambda: c.stats["stored"] >= 300, 15)
    assert c.stats["rejected"] == 0, c.stats
    expected = sorted(
        (t.symbol, sim.dialect.expected_trade_id(t), t.ts_ns, float(t.price),
         float(t.volume) / float(t.price), t.side) for t in sim.trades)
    assert sorted(ticks(db)) == expected  # USD contracts / price
    assert instruments(db) == [("bybit", "BTC-USD", "inverse", 1.0, "USD", "inverse"),
                               ("bybit", "ETH-USD", "inverse", 1.0, "USD", "inverse")]


def test_spot_collection_has_no_instruments_table(db):
    with Simulator("okx", rate=3000, count=20, seed=7) as sim:
        c = rtkit.Collector("okx", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.1)
        assert c.receiver.before_connect is None  # nothing to learn before connecting
        with c:
            wait_for(lambda: c.stats["stored"] >= 20, 15)
    with sqlite3.connect(db) as con:
        assert not con.execute("SELECT 1 FROM sqlite_master WHERE name='instruments'").fetchall()


# --- failures are visible ---------------------------------------------------------------
def test_a_failing_instruments_fetch_fails_the_collector_and_says_why(db):
    with Simulator("okx", rate=3000, count=50, seed=8) as sim, SimRest(sim) as rest:
        rest.inject(500, count=10, path="/api/v5/public/instruments")
        c = rtkit.Collector("okx", [LINEAR], url=sim.url, db=db, flush_interval_s=0.1)
        with c:
            wait_for(lambda: c.status == "failed", 15)
    reason = c.status.reason
    assert "contract values of BTC-USDT-SWAP" in reason and "HTTP 500" in reason, reason
    assert "contract_values=" in reason and c.last_error
    assert c.stats["ticks"] == 0 and sim.connections == 0  # never subscribed unconverted


def test_a_contract_the_venue_does_not_list_is_refused_at_start(db):
    with Simulator("okx", rate=3000, count=50, seed=9) as sim, SimRest(sim):
        c = rtkit.Collector("okx", ["BTC-USDT-SWAP", "DOGE-USD-SWAP"], url=sim.url, db=db,
                            flush_interval_s=0.1)
        with c:
            wait_for(lambda: c.status == "failed", 15)
    reason = c.status.reason
    assert "okx lists no SWAP instrument 'DOGE-USD-SWAP'" in reason, reason
    assert c.stats["ticks"] == 0 and sim.connections == 0


def test_a_forged_instruments_event_is_a_bad_line_and_converts_nothing(tmp_path):
    frame = orjson.dumps({"arg": {"channel": "trades", "instId": LINEAR}, "data": [
        {"instId": LINEAR, "tradeId": "5", "px": "42000", "sz": "12", "side": "buy",
         "ts": "1630048897897", "count": "1"}]}).decode()
    good = {"venue": "okx", "symbol": LINEAR, "kind": "swap", "ct_val": 0.01,
            "ct_val_ccy": "BTC", "ct_type": "linear"}
    forged = [{**good, "ct_val": "0.01"}, {**good, "ct_val": -1.0}, {**good, "venue": "bybit"},
              {**good, "ct_val_ccy": "USDT"}, {"symbol": LINEAR}, "BTC-USDT-SWAP"]
    lines = [{"event": "open", "received_at": 1, "venue": "okx", "symbols": [LINEAR]}]
    lines += [{"event": "instruments", "received_at": 2, "venue": "okx", "instruments": [f]}
              for f in forged]
    lines += [{"event": "instruments", "received_at": 2, "venue": "okx",
               "instruments": [good] * 10_001},  # more than a recording line may carry
              {"event": "instruments", "received_at": 2, "venue": "binance",
               "instruments": [{**good, "venue": "binance"}]},  # a venue without contracts
              {"received_at": 3, "venue": "okx", "frame": frame}]
    recording = tmp_path / "forged.jsonl"
    recording.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    summary = rtkit.replay(recording, tmp_path / "replay.sqlite")
    assert summary["bad_lines"] == len(forged) + 2
    assert summary["stored"] == 0 and summary["rejected_by_reason"]["unknown_symbol"] == 1


def test_a_stop_during_the_fetch_never_connects(db):
    with Simulator("okx", rate=3000, count=50, seed=10) as sim, SimRest(sim) as rest:
        rest.inject(200, delay_s=1.0, path="/api/v5/public/instruments")  # a slow venue
        c = rtkit.Collector("okx", [LINEAR], url=sim.url, db=db, flush_interval_s=0.1).start()
        wait_for(lambda: c.status.reason == "learning the contract values first", 5)
        c.stop(timeout_s=0.1)
        wait_for(lambda: not c.running, 10)
        assert c.status == "stopped" and sim.connections == 0 and c.stats["ticks"] == 0
