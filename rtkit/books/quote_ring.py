"""QuoteRing: the last N quotes (best bid and offer) in numpy columns, for ``c.quotes``.

The quotes kind's own ring, shaped by its description (``rtkit.kinds.quotes``):
venue and symbol as codes, times as int64 ns, prices and sizes as float64,
the venue's sequence as int64 — ``QUOTE_BYTES`` per quote, fixed at
construction (``np.zeros`` pages cost memory only once written). One thread
appends (the receive thread), any thread reads, a short lock around each.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from rtkit.frame import categorical, utc_times
from rtkit.kinds.quotes import QUOTES

_INT8_CODES = 127  # pandas keeps categorical codes as int8 below this many categories
#: quotes the ring keeps by default
DEFAULT_QUOTES_CAPACITY = 1_000_000
#: bytes one quote costs in the ring (the README's memory formula)
QUOTE_BYTES = sum(np.dtype(d).itemsize for d in QUOTES.ring_dtypes().values())


class QuoteRing:
    """Fixed-capacity columns of the newest quotes; the oldest are overwritten."""

    def __init__(self, capacity: int = DEFAULT_QUOTES_CAPACITY) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be a positive int (e.g. 1_000_000), not {capacity!r}")
        self.capacity = capacity
        self.columns = {name: np.zeros(capacity, dtype)
                        for name, dtype in QUOTES.ring_dtypes().items()}
        self._names = QUOTES.names
        self._codes: dict[str, dict[str, int]] = {"venue": {}, "symbol": {}}
        self._lock = threading.Lock()
        self.total = 0

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.columns.values())

    def append(self, rows: list[tuple]) -> None:
        """Quotes rows in the kind's column order. Writer only."""
        if not rows:
            return
        venues, symbols = self._codes["venue"], self._codes["symbol"]
        cols = [self.columns[n] for n in self._names]
        with self._lock:
            cap, i = self.capacity, self.total % self.capacity
            for row in rows:
                v = venues.setdefault(row[0], len(venues))
                s = symbols.setdefault(row[1], len(symbols))
                cols[0][i], cols[1][i] = v, s
                for col, value in zip(cols[2:], row[2:], strict=True):
                    col[i] = value
                i += 1
                if i == cap:
                    i = 0
            self.total += len(rows)

    def snapshot(self, last: int | None = None) -> pd.DataFrame:
        """A fresh DataFrame of every quote in the ring, or of the ``last`` newest (the
        panel's chart reads those), oldest first."""
        with self._lock:
            n, cap = len(self), self.capacity
            if last is not None:
                n = min(n, max(0, int(last)))
            begin = (self.total - n) % cap  # where the oldest quote asked for sits
            names = {key: list(codes) for key, codes in self._codes.items()}
            copied = {}
            for name, col in self.columns.items():
                # codes of few categories as int8, which pandas keeps without a cast
                small = name in names and len(names[name]) < _INT8_CODES
                dtype = np.int8 if small else col.dtype
                copied[name] = (np.concatenate((col[begin:], col[:begin + n - cap]),
                                               dtype=dtype, casting="unsafe")
                                if begin + n > cap else col[begin:begin + n].astype(dtype))
        data = {}
        for c in QUOTES.columns:
            values = copied[c.name]
            if c.frame == "category":
                data[c.name] = categorical(values, names[c.name])  # type: ignore[arg-type]
            elif c.frame.startswith("datetime64"):
                data[c.name] = utc_times(values)
            else:
                data[c.name] = values
        return pd.DataFrame(data, copy=False)
