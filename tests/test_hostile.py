"""Hostile input: TLS verified by default, frames size-limited, untrusted text
quoted in logs, nothing from the wire evaluated or used as an SQL identifier,
and user-supplied names checked with errors that say what to do."""

from __future__ import annotations

import contextlib
import sqlite3

import orjson
import pytest

import rtkit
from rtkit.compat import store_data
from rtkit.sim import Faults, Simulator
from rtkit.venues import get_adapter, venue_names
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
RTKIT_TABLES = {"ticks", "rejects", "gaps", "runs"}


def run_with(db, bad_frames, count=400, **options) -> rtkit.Collector:
    """Collect from a simulator that sends ``bad_frames`` between its trades."""
    faults = Faults(bad_frame_every=20, bad_frames=tuple(bad_frames))
    with Simulator("binance", rate=4000, count=count, seed=1, faults=faults) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1,
                          **options)
        wait_for(lambda: sim.all_sent and c.stats["frames"] >= sim.frames_sent
                 and c.stats["pending"] == c.stats["rejects_pending"] == 0)
        c.stop()
    assert c.stats["stored"] == count  # the good trades around the bad frames all arrived
    return c


def tables(db) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# --- transport ---------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", [v for v in venue_names() if v != "generic"])
def test_default_endpoints_are_wss(venue):
    assert get_adapter(venue).default_url.startswith("wss://")


def test_certificates_are_verified_by_default(db, tls_server_context):
    context, pem = tls_server_context
    with Simulator("binance", rate=2000, count=300, seed=1, tls=context) as sim:
        assert sim.url.startswith("wss://")
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, backoff_initial_s=0.05)
        wait_for(lambda: c.status == "backoff" and "CERTIFICATE_VERIFY_FAILED" in c.status.reason)
        assert c.stats["ticks"] == 0
        c.stop()
        # trusting that certificate is the user's explicit choice
        trusted = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, name="trusted",
                                sslopt={"ca_certs": pem})
        wait_for(lambda: trusted.stats["stored"] == 300)
        trusted.stop()


def test_oversized_frames_are_refused_from_their_header(db):
    big = '{"e":"trade","pad":"' + "x" * 200_000 + '"}'
    c = run_with(db, [(big, "frame_too_large", False)], max_frame_bytes=64 * 1024)
    assert c.stats["rejected_by_reason"] == {"frame_too_large": 20}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        kept, size = conn.execute("SELECT max(length(frame)), max(frame_bytes) FROM rejects "
                                  "").fetchone()
    assert kept <= 4096 and size == len(big)  # only the head was kept; the size is on record


# --- what the wire can say -----------------------------------------------------------------
def test_log_lines_quote_untrusted_text(db, caplog):
    message = "\x1b[2J\x1b[31mFAKE\nWARNING rtkit: all good\r\x00" + "A" * 10_000
    error = orjson.dumps({"error": {"code": 2, "msg": message}, "id": 1}).decode()
    run_with(db, [(error, None, False)])
    said = [r.getMessage() for r in caplog.records if r.name == "rtkit"]
    assert said and any("FAKE" in line for line in said)
    for line in said:
        assert not any(ch in line for ch in "\x1b\n\r\x00"), line[:300]
        assert len(line) < 1200  # truncated, not 10 KB of someone else's text
    assert any("\\x1b[2J" in line for line in said)  # escaped, still readable


SQL = "x');DROP TABLE ticks;--"
CODE = "__import__('os').system('touch {sentinel}')"


def test_nothing_from_the_wire_is_evaluated_or_becomes_an_sql_identifier(db, tmp_path):
    sentinel = tmp_path / "pwned"
    code = CODE.format(sentinel=sentinel)
    frames = [
        ('{"e":"%s","s":"BTCUSDT"}' % SQL, "unknown_message", False),
        ('{"e":"trade","E":1,"s":"BTCUSDT","t":900000,"p":"%s","q":"0.1","T":1764000000000,'
         '"m":true}' % code, "bad_number", False),
        ('{"e":"trade","E":1,"s":"BTCUSDT","t":900000,"p":"1.5","q":"0.1","T":"%s","m":true}'
         % code, "bad_timestamp", False),
        ('{"%s":1}' % SQL, "unknown_message", False),
    ]
    c = run_with(db, frames)
    assert c.stats["rejected_by_reason"] == {"unknown_message": 10, "bad_number": 5,
                                             "bad_timestamp": 5}
    assert not sentinel.exists()
    assert tables(db) == RTKIT_TABLES
    with contextlib.closing(sqlite3.connect(db)) as conn:  # kept as data, verbatim
        assert conn.execute("SELECT count(*) FROM rejects WHERE frame LIKE ?",
                            (f"%{SQL}%",)).fetchone()[0] == 10


def test_a_symbol_that_is_not_a_symbol_is_rejected(db):
    frames = [('{"e":"trade","E":1,"s":%s,"t":900000,"p":"1.5","q":"0.1","T":1764000000000,'
               '"m":true}' % orjson.dumps(s).decode(), "unknown_symbol", False)
              for s in (SQL + "USDT", "BTC\x00USDT", "\x1b[31mUSDT", "BT CUSDT")]
    c = run_with(db, frames)
    assert c.stats["rejected_by_reason"] == {"unknown_symbol": 20}


def test_generic_mappings_never_run_code_from_the_feed(tmp_path):
    sentinel = tmp_path / "pwned"
    code = CODE.format(sentinel=sentinel)
    # a path that looks like code is only ever a path of dict keys
    adapter = get_adapter("generic", url="ws://127.0.0.1:1/", price=code, volume="q")
    frame = orjson.dumps({"q": "1", code: "2", "__class__": "3"})
    with pytest.raises(rtkit.Reject, match="missing_field"):
        adapter.parse(frame, 1)
    # values that look like code are only ever values
    plain = get_adapter("generic", url="ws://127.0.0.1:1/", default_symbol="BTC-USDT")
    for value in (code, {"__class__": code}, [code]):
        frame = orjson.dumps({"price": value, "volume": "1"})
        with pytest.raises(rtkit.Reject) as reject:
            plain.parse(frame, 1)
        assert reject.value.reason == "bad_number"
    frame = orjson.dumps({"price": "1", "volume": "1", "timestamp": code})
    with pytest.raises(rtkit.Reject, match="bad_timestamp"):
        plain.parse(frame, 1)
    assert not sentinel.exists()


# --- names the user gives ----------------------------------------------------------------------
@pytest.mark.parametrize("venue", ["nyse", "binance; rm -rf /", "../binance", "", 42, None])
def test_unknown_venues_are_refused_with_the_choices(venue, db):
    with pytest.raises(ValueError, match="unknown venue .*; choose one of: .*binance"):
        rtkit.Collector(venue, ["BTC-USDT"], db=db)


@pytest.mark.parametrize("symbol", [SQL, "BTC\x00USDT", "BTC-US\nDT", "BTC USDT", "", 7])
def test_symbols_that_are_not_symbols_are_refused(symbol, db):
    with pytest.raises(ValueError, match="expected e.g. 'BTC-USDT'"):
        rtkit.Collector("binance", [symbol], db=db)


@pytest.mark.parametrize("table", ["ticks; DROP TABLE runs", "sqlite_master", "my table", "",
                                   "1st", "t\x00", "a" * 65, None])
def test_store_data_refuses_table_names_that_are_not_plain(table, db):
    with pytest.raises(ValueError, match="is not a plain name; use letters, digits and _"):
        store_data(table, {"x": 1}, db=db)
    assert not (tables(db) - RTKIT_TABLES) if db.exists() else True


@pytest.mark.parametrize("column", ["x; DROP TABLE ticks", "a b", '"q"', "", 3])
def test_store_data_refuses_column_names_that_are_not_plain(column, db):
    with pytest.raises(ValueError, match="not plain names"):
        store_data("signals", {column: 1}, db=db)


def test_store_queries_take_values_as_values(db):
    rtkit.TickStore(db).close()
    with rtkit.TickStore(db, readonly=True) as store:
        assert store.ticks(venue=SQL, symbol="' OR 1=1 --").empty
    assert tables(db) == RTKIT_TABLES
