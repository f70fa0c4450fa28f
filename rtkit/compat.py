"""The original plan's functions, kept as a thin layer so code written against it runs.

``connect_to_websocket``, ``process_real_time_data``, ``start_real_time_collection``,
``store_data`` and ``log_error`` do what their names promised, on top of the
real pieces. New code should use :func:`rtkit.collect` and :class:`rtkit.TickStore`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import orjson
import websocket

from rtkit.collector import Collector
from rtkit.pipeline import quote
from rtkit.store import DEFAULT_DB, TickStore
from rtkit.validate import (
    BUY,
    SELL,
    UNKNOWN_SIDE,
    Reject,
    positive,
    trade_time_ns,
    ws_url,
)  # fmt: skip
from rtkit.wsconnect import open_websocket

log = logging.getLogger("rtkit")

#: a plain SQL identifier; used with fullmatch, since ``$`` would also match before a
#: trailing newline (``"ticks\n"``)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_local = threading.local()
#: tables rtkit writes itself: store_data must not mix rows into them
_OWN_TABLES = {"ticks", "rejects", "gaps", "runs", "blocks", "swaps"}


def log_error(msg: str) -> None:
    """Log an error through the ``rtkit`` logger (untrusted text is quoted safely)."""
    log.error("%s", quote(msg, 1000))


def connect_to_websocket(url: str, timeout_s: float = 10.0) -> websocket.WebSocket:
    """An open websocket-client connection to ``url`` (the caller closes it).

    The upgrade must finish within ``timeout_s``; a redirect is refused (see
    :mod:`rtkit.wsconnect`). ``timeout_s`` stays the socket's timeout afterwards.
    """
    ws_url(url)
    ws = websocket.WebSocket(skip_utf8_validation=True)
    open_websocket(ws, url, timeout_s)
    return ws


def process_real_time_data(message) -> dict:
    """One message → a validated tick dict (``price``, ``volume``, ``timestamp`` ns, …).

    ``message`` is the raw frame text/bytes or an already decoded dict with
    ``price``, ``volume`` and optional ``timestamp`` (s, ms, µs, ns or ISO-8601;
    now when absent), ``symbol``, ``side`` and ``trade_id``. Raises
    :class:`rtkit.validate.Reject` (with ``.reason``) for anything that is not a
    valid trade.
    """
    received = time.time_ns()
    if isinstance(message, (str, bytes, bytearray)):
        try:
            message = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise Reject("malformed_json", str(exc)[:200]) from None
    if not isinstance(message, dict):
        raise Reject("unknown_message", "expected a JSON object with price and volume")
    side = {"buy": BUY, "sell": SELL}.get(str(message.get("side", "")).lower(), UNKNOWN_SIDE)
    ts = message.get("timestamp")
    return {
        "timestamp": received if ts is None else trade_time_ns(ts, "auto"),
        "received_at": received,
        "symbol": message.get("symbol"),
        "price": positive(message.get("price"), "price"),
        "volume": positive(message.get("volume"), "volume"),
        "side": {BUY: "buy", SELL: "sell"}.get(side),
        "trade_id": None if message.get("trade_id") is None else str(message["trade_id"]),
    }


def store_data(table: str, row: dict, db: str | Path = DEFAULT_DB) -> None:
    """Insert one dict as a row of ``table`` (created on first use) in ``db``.

    ``table`` and the row's keys become SQL identifiers, so they must be plain
    names (letters, digits, underscore). Use :class:`rtkit.TickStore` for ticks.
    """
    if (not isinstance(table, str) or not _NAME.fullmatch(table)
            or table.lower().startswith("sqlite_")):  # SQLite's own, in any case
        raise ValueError(f"table name {table!r} is not a plain name; use letters, digits and _ "
                         "(e.g. 'my_signals')")
    if table.lower() in _OWN_TABLES:
        raise ValueError(f"table {table!r} belongs to rtkit's own data; store your rows in a "
                         "table of your own (e.g. 'my_signals')")
    if not isinstance(row, dict) or not row:
        raise ValueError("row must be a non-empty dict of column → value")
    bad = [k for k in row if not isinstance(k, str) or not _NAME.fullmatch(k)]
    if bad:
        raise ValueError(f"column names {bad!r} are not plain names; use letters, digits and _")
    if len({k.lower() for k in row}) < len(row):  # one SQL column, whatever the case
        raise ValueError(f"column names {sorted(row)!r} differ only in case, which SQL does "
                         "not tell apart; give each column one spelling")
    stores = getattr(_local, "stores", None)
    if stores is None:
        stores = _local.stores = {}
    key = str(Path(db).resolve())
    store = stores.get(key) or stores.setdefault(key, TickStore(db))
    store.db[table].insert(row, alter=True)


def start_real_time_collection(url: str, venue: str = "binance", symbols=("BTC-USDT",),
                               duration_s: float | None = None, **kwargs) -> dict:
    """Collect from ``url`` and **block** until ``duration_s`` passes or Ctrl-C; returns stats.

    This is the plan's blocking call, for scripts. In a notebook use
    ``rtkit.collect(...)``, which returns at once.
    """
    collector = Collector(venue, list(symbols), url=url, **kwargs).start()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while collector.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        collector.stop()
    return collector.stats
