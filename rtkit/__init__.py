"""rtkit: real-time market trades over WebSocket, analysed live in Jupyter.

Start here::

    import rtkit
    c = rtkit.collect("binance", ["BTC-USDT"])    # returns at once
    c.df                                           # a DataFrame of validated ticks
    c.stats, c.status                              # counters and state
    c.stop()                                       # flushes to SQLite, joins threads
"""

import importlib
import logging

from rtkit.buffer import RingBuffer
from rtkit.collector import Collector, collect, stop_all
from rtkit.compat import (
    connect_to_websocket,
    log_error,
    process_real_time_data,
    start_real_time_collection,
    store_data,
)
from rtkit.group import CollectorGroup, collect_many
from rtkit.replay import replay
from rtkit.store import StoreError, TickStore
from rtkit.validate import AnomalyFilter, Reject
from rtkit.venues import get_adapter, venue_names

logging.getLogger("rtkit").addHandler(logging.NullHandler())

from rtkit.version import __version__ as __version__  # noqa: E402  (re-exported)

__all__ = [
    "AnomalyFilter",
    "Collector",
    "CollectorGroup",
    "Reject",
    "RingBuffer",
    "StoreError",
    "TickStore",
    "collect",
    "collect_many",
    "connect_to_websocket",
    "get_adapter",
    "log_error",
    "process_real_time_data",
    "replay",
    "start_real_time_collection",
    "stop_all",
    "store_data",
    "venue_names",
]

#: submodules that are attributes of ``rtkit`` without an import of their own
#: (``rtkit.analysis.ohlcv(...)``, ``rtkit.sim.Simulator``, ``rtkit.lake.read(...)``), imported
#: on first use so that ``import rtkit`` stays light: no ipywidgets or bqplot, no simulator,
#: no on-chain code, no DuckDB, no HTTP client
LAZY_SUBMODULES = ("analysis", "lake", "onchain", "rest", "sim", "widgets")
#: functions of lazily imported modules that are attributes of ``rtkit`` (no httpx at import)
LAZY_FUNCTIONS = {"markets": "rtkit.rest.markets", "check_symbols": "rtkit.rest.markets"}


def __getattr__(name: str):
    if name in LAZY_SUBMODULES:
        return importlib.import_module(f"rtkit.{name}")  # also sets rtkit.<name>
    if name in LAZY_FUNCTIONS:
        return getattr(importlib.import_module(LAZY_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'rtkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY_SUBMODULES) | set(LAZY_FUNCTIONS))
