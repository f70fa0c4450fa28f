"""RingBuffer: the last N ticks in fixed-dtype numpy columns, snapshotted to pandas.

One thread writes (the collector's receive thread, or a replay); any thread
may read. A short lock around each frame's write and around the snapshot copy
means a reader never sees half a row, and the writer never waits longer than
one copy. Memory is fixed at construction: 47 bytes per tick when trade ids
are integers (ids that are not integers are kept in an extra object column).
"""

from __future__ import annotations

import threading
from operator import itemgetter

import numpy as np
import pandas as pd

from rtkit.frame import tick_frame
from rtkit.kinds.trades import TRADES

DEFAULT_CAPACITY = 1_000_000
#: pandas keeps categorical codes as int8 below this many categories (np.iinfo(np.int8).max)
_INT8_CODES = 127
#: ticks in one ``append`` from which they go in a column at a time (below: one by one)
_BY_COLUMN = 32
#: a tick's fields, read a column at a time by ``map`` (symbol, trade id, timestamp,
#: price, volume, side)
_FIELDS = tuple(itemgetter(i) for i in range(6))


class RingBuffer:
    """Fixed-capacity columnar store of the most recent ticks; oldest rows are overwritten."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be a positive int (e.g. 1_000_000), not {capacity!r}")
        self.capacity = capacity
        #: one numpy column per column the trades kind keeps in the ring (its ``ring`` dtype)
        self.columns = {name: np.zeros(capacity, dtype)
                        for name, dtype in TRADES.ring_dtypes().items()}
        c = self.columns
        self._ts, self._recv = c["timestamp"], c["received_at"]
        self._price, self._volume, self._side = c["price"], c["volume"], c["side"]
        self._venue, self._symbol, self._tid = c["venue"], c["symbol"], c["trade_id"]
        self._tid_text: np.ndarray | None = None  # allocated on the first non-int id
        self._venues: list[str] = []
        self._venue_codes: dict[str, int] = {}
        self._symbols: list[str] = []
        self._symbol_codes: dict[str, int] = {}
        self._reused: dict[str, np.ndarray] | None = None  # see snapshot(reuse=True)
        self._lock = threading.Lock()
        self.total = 0  # ticks ever appended

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns."""
        text = self._tid_text.nbytes if self._tid_text is not None else 0
        return sum(c.nbytes for c in self.columns.values()) + text

    def _code(self, codes: dict[str, int], names: list[str], name: str) -> int:
        code = codes.get(name)
        if code is None:
            code = codes[name] = len(names)
            names.append(name)
        return code

    def append(self, venue: str, received_at_ns: int, ticks: list) -> None:
        """Append ticks (tuples from a venue adapter) received at one moment. Writer only."""
        with self._lock:
            v = self._venue_codes.get(venue)
            if v is None:
                v = self._code(self._venue_codes, self._venues, venue)
            if _BY_COLUMN <= len(ticks) < self.capacity:
                self._append_columns(v, received_at_ns, ticks)
                return
            cap = self.capacity
            i = self.total % cap
            codes = self._symbol_codes
            ts_col, recv_col, price_col = self._ts, self._recv, self._price
            volume_col, side_col, venue_col = self._volume, self._side, self._venue
            symbol_col, tid_col = self._symbol, self._tid
            text_col = self._tid_text
            for sym, tid, ts, price, volume, side in ticks:
                s = codes.get(sym)
                if s is None:
                    s = self._code(codes, self._symbols, sym)
                ts_col[i] = ts
                recv_col[i] = received_at_ns
                price_col[i] = price
                volume_col[i] = volume
                side_col[i] = side
                venue_col[i] = v
                symbol_col[i] = s
                if type(tid) is int:
                    tid_col[i] = tid
                    if text_col is not None:
                        text_col[i] = None
                else:
                    if text_col is None:
                        text_col = self._tid_text = np.full(cap, None, object)
                    text_col[i] = tid
                i += 1
                if i == cap:
                    i = 0
            self.total += len(ticks)

    def _append_columns(self, v: int, received_at_ns: int, ticks: list) -> None:
        """``append`` of many ticks a column at a time (numpy converts each column in C:
        a read of hundreds of frames costs a fraction of the tick-by-tick loop).

        The columns are read with ``map``, not transposed by ``zip(*ticks)``: that makes
        an iterator a tick, which the garbage collector counts as a new container. In a
        200k-frame burst they set off twice the young collections, and a second full one
        (~25 ms of the receive thread, the interpreter's every object walked) (issue 17).
        Every column is converted before any is written, so a tick that cannot be (an
        adapter's bug) leaves the ring as it was."""
        start, n = self.total % self.capacity, len(ticks)
        if len(set(map(len, ticks))) != 1 or len(ticks[0]) != len(_FIELDS):
            raise ValueError(f"ticks must be tuples of {len(_FIELDS)} fields (symbol, trade "
                             "id, timestamp, price, volume, side)")
        sym_of, tid_of, ts_of, price_of, volume_of, side_of = _FIELDS
        ts = np.fromiter(map(ts_of, ticks), self._ts.dtype, n)
        prices = np.fromiter(map(price_of, ticks), self._price.dtype, n)
        volumes = np.fromiter(map(volume_of, ticks), self._volume.dtype, n)
        sides = np.fromiter(map(side_of, ticks), self._side.dtype, n)
        tids = list(map(tid_of, ticks))
        text_ids = set(map(type, tids)) != {int}
        if text_ids:  # text ids (or a mix): the text column holds them, the int one the rest
            ids = np.array([tid if type(tid) is int else 0 for tid in tids], self._tid.dtype)
            texts = [None if type(tid) is int else tid for tid in tids]
        else:
            ids = np.array(tids, self._tid.dtype)
        # new symbols last: a tick whose numbers could not be stored registers none
        codes = self._symbol_codes
        symbol_codes = list(map(codes.get, map(sym_of, ticks)))
        if None in symbol_codes:  # a symbol seen for the first time
            symbol_codes = [self._code(codes, self._symbols, sym) if code is None else code
                            for sym, code in zip(map(sym_of, ticks), symbol_codes, strict=True)]
        symbols = np.array(symbol_codes, self._symbol.dtype)
        put = self._put
        put(self._ts, start, n, ts)
        put(self._recv, start, n, received_at_ns)
        put(self._price, start, n, prices)
        put(self._volume, start, n, volumes)
        put(self._side, start, n, sides)
        put(self._venue, start, n, v)
        put(self._symbol, start, n, symbols)
        put(self._tid, start, n, ids)
        if text_ids:
            if self._tid_text is None:
                self._tid_text = np.full(self.capacity, None, object)
            put(self._tid_text, start, n, texts)
        elif self._tid_text is not None:
            put(self._tid_text, start, n, None)
        self.total += n

    def _put(self, column: np.ndarray, start: int, n: int, values) -> None:
        """``n`` values (a sequence, or one value for all) into ``column`` from ``start``,
        wrapping round the ring's end (``n`` is below the capacity)."""
        first = min(n, self.capacity - start)
        one = not isinstance(values, (list, tuple, np.ndarray))
        column[start:start + first] = values if one else values[:first]
        if first < n:
            column[:n - first] = values if one else values[first:]

    def _ordered(self, column: np.ndarray, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """The newest ``n`` rows of a column, oldest first: a fresh copy, or copied
        into the first ``n`` rows of ``out`` (then a view of ``out``)."""
        cap = self.capacity
        end = (self.total % cap) or cap  # one past the newest row
        if out is None:
            if end >= n:
                return column[end - n : end].copy()
            return np.concatenate((column[cap - (n - end) :], column[:end]))
        dst = out[:n]
        if end >= n:
            dst[:] = column[end - n : end]
        else:
            older = n - end
            dst[:older] = column[cap - older :]
            dst[older:] = column[:end]
        return dst

    def _reuse_columns(self) -> dict[str, np.ndarray]:
        """The output columns ``snapshot(reuse=True)`` copies into, made on first use.

        Venue and symbol codes are kept as int8 while there are few enough names:
        pandas narrows categorical codes to int8 below ``_INT8_CODES`` categories,
        into a new array on every snapshot if they were not already (1.2 ms of a
        million-row snapshot)."""
        reused = self._reused
        if reused is None:
            reused = self._reused = {}
        for name, col in self._named_columns():
            names = {"venue": self._venues, "symbol": self._symbols}.get(name)
            dtype = np.int8 if names is not None and len(names) < _INT8_CODES else col.dtype
            if name not in reused or reused[name].dtype != dtype:
                reused[name] = np.empty(self.capacity, dtype)
        return reused

    def _named_columns(self) -> tuple[tuple[str, np.ndarray], ...]:
        return (("timestamp", self._ts), ("received_at", self._recv), ("price", self._price),
                ("volume", self._volume), ("side", self._side), ("venue", self._venue),
                ("symbol", self._symbol), ("tid", self._tid))

    def tail(self, n: int | None = None) -> pd.DataFrame:
        """The newest ``n`` ticks (all of them when None) as a fresh DataFrame, oldest first."""
        return self._frame(n, reuse=False)

    def snapshot(self, reuse: bool = False) -> pd.DataFrame:
        """Every tick in the buffer as a DataFrame, in arrival order.

        By default a fresh copy that nothing else touches (``Collector.df``).
        ``reuse=True`` copies into column arrays the ring keeps between such calls
        instead: a million-row snapshot then skips the page faults of ~47 MB of new
        memory and takes about half the time. Its price: the arrays behind the
        DataFrame it returns are overwritten by the next ``snapshot(reuse=True)``
        (from any thread), so ask for it only where one reader redraws from the newest
        snapshot and keeps nothing (a live panel); ``.copy()`` what you keep. The
        reused arrays (``nbytes`` again, minus text ids) are made on the first such
        call and live as long as the ring.
        """
        return self._frame(None, reuse=reuse)

    def _frame(self, n: int | None, reuse: bool) -> pd.DataFrame:
        with self._lock:
            size = len(self)
            n = size if n is None else max(0, min(int(n), size))
            out = self._reuse_columns() if reuse else {}
            cols = {name: self._ordered(col, n, out.get(name))
                    for name, col in self._named_columns()}
            text = None if self._tid_text is None else self._ordered(self._tid_text, n)
            venues, symbols = list(self._venues), list(self._symbols)
        tid = cols.pop("tid")
        if text is not None:
            missing = np.equal(text, np.array(None))  # elementwise `is None` of objects
            text[missing] = tid[missing].astype(str)
            tid = text
        return tick_frame(
            timestamp=cols["timestamp"], received_at=cols["received_at"],
            venue_codes=cols["venue"], venues=venues,
            symbol_codes=cols["symbol"], symbols=symbols,
            price=cols["price"], volume=cols["volume"], side_codes=cols["side"],
            trade_id=tid,
        )

    def __repr__(self) -> str:
        return f"RingBuffer({len(self):,}/{self.capacity:,} ticks, {self.total:,} appended)"
