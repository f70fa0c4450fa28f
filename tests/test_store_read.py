"""TickStore.ticks: the collector's symbol spellings, and a fast read identical to the old one."""

import subprocess
import sys

import numpy as np
import pandas as pd

from rtkit.frame import SIDE_CATEGORIES, empty_frame, tick_frame
from rtkit.store import TickStore, filters

T0 = 1_764_000_000_000_000_000


def old_ticks(store, venue=None, symbol=None, start=None, end=None):
    """The implementation before the fast read: the reference for values and dtypes."""
    side_code = {name: code for code, name in enumerate(SIDE_CATEGORIES)}

    def trade_ids(values):
        text = np.array(values, dtype=object)
        try:
            ints = np.array(values, dtype=np.int64) if all(v.isdigit() for v in values) else None
        except (ValueError, OverflowError):
            ints = None
        if ints is not None and all(str(i) == v
                                    for i, v in zip(ints.tolist(), values, strict=True)):
            return ints
        return text

    where, args = filters(venue, symbol, start, end)
    sql = ("SELECT timestamp, received_at, venue, symbol, price, volume, side, trade_id "
           "FROM ticks" + where)
    order = " ORDER BY timestamp, received_at, length(trade_id), trade_id"
    rows = store.conn.execute(sql + order, args).fetchall()
    if not rows:
        return empty_frame()
    ts, recv, venues, symbols, price, volume, side, tid = zip(*rows, strict=True)
    venue_codes, venue_names = pd.factorize(np.array(venues, dtype=object))
    symbol_codes, symbol_names = pd.factorize(np.array(symbols, dtype=object))
    return tick_frame(
        timestamp=np.array(ts, np.int64), received_at=np.array(recv, np.int64),
        venue_codes=venue_codes, venues=list(venue_names),
        symbol_codes=symbol_codes, symbols=list(symbol_names),
        price=np.array(price, np.float64), volume=np.array(volume, np.float64),
        side_codes=np.array([side_code.get(s, -1) for s in side], np.int8),
        trade_id=trade_ids(tid),
    )


def _rows(n, ids, venue="binance"):
    rng = np.random.default_rng(7)
    syms = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    return [(venue, syms[i % 3], ids(i), T0 + int(rng.integers(0, n // 2)), T0 + i,
             float(rng.random() * 1e5), float(rng.random()), SIDE_CATEGORIES[i % 2])
            for i in range(n)]


def _same(db, **filt):
    with TickStore(db, readonly=True) as store:
        new, old = store.ticks(**filt), old_ticks(store, **filt)
    pd.testing.assert_frame_equal(new, old, check_exact=True, check_categorical=True)
    assert list(new.dtypes) == list(old.dtypes)
    return new


def test_fast_read_is_identical_to_the_old_one_value_by_value(tmp_path):
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        store.write(_rows(3000, str))
        store.write(_rows(500, lambda i: str(10 ** 18 + i), venue="bybit"))
    assert _same(db)["trade_id"].dtype == np.int64
    _same(db, venue="bybit")
    _same(db, venue="binance", symbol="ETH-USDT", start=T0 + 100, end=T0 + 1000)
    _same(db, venue="binance", symbol="NOPE-USDT")


def test_fast_read_keeps_text_ids_text_like_the_old_one(tmp_path):
    hostile = ["007", "-5", "+5", " 5", "", "٣", "²", "9223372036854775808",
               "9223372036854775807", "0", "1e3", "abc-def"]
    for k, odd in enumerate(hostile):
        db = tmp_path / f"t{k}.sqlite"
        with TickStore(db) as store:
            rows = _rows(200, str)
            rows[57] = rows[57][:2] + (odd,) + rows[57][3:]
            store.write(rows)
        out = _same(db)
        expect_int = odd in ("9223372036854775807", "0")
        assert (out["trade_id"].dtype == np.int64) is expect_int, odd


def test_ticks_accepts_the_symbol_spelling_the_collector_accepts(tmp_path):
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        store.write(_rows(30, str))
        assert len(store.ticks(venue="binance", symbol="btcusdt")) == 10
        assert len(store.ticks(venue="binance", symbol="BTC-USDT")) == 10
        assert len(store.ticks(venue="binance", symbol="BTCUSDT")) == 10


_TIMING = """
import sys, time, sqlite3
import pandas as pd
from rtkit.store import TickStore
db = sys.argv[1]
from benchmarks.foundation import READ_SQL
def best(f):
    times = []
    for _ in range(3):
        t = time.perf_counter(); out = f(); times.append(time.perf_counter() - t)
    return out, min(times)
with TickStore(db, readonly=True) as store:
    df, ours = best(store.ticks)
conn = sqlite3.connect(db)
_, theirs = best(lambda: pd.read_sql(READ_SQL, conn))
print(len(df), ours / theirs)
"""


def test_reading_back_costs_no_more_than_pandas_read_sql(tmp_path):
    db = tmp_path / "t.sqlite"
    n = 200_000
    with TickStore(db) as store:
        store.write([("binance", "BTC-USDT", str(i), T0 + i, T0 + i, 100.0, 0.5, "buy")
                     for i in range(n)])
    out = subprocess.run([sys.executable, "-c", _TIMING, str(db)], capture_output=True,
                         text=True, check=True, timeout=120).stdout.split()
    assert int(out[0]) == n
    # the old read took ~1.4x pd.read_sql on the same query; now ~0.75x
    assert float(out[1]) < 1.1, out
