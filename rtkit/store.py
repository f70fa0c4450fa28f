"""TickStore: the SQLite file that outlives the kernel (schema via sqlite-utils).

The ``ticks`` table is a contract other tools read directly::

    venue TEXT, symbol TEXT, trade_id TEXT, timestamp INTEGER (ns, UTC),
    received_at INTEGER (ns), price REAL, volume REAL, side TEXT ('buy'/'sell'/NULL)
    PRIMARY KEY (venue, symbol, trade_id)

so a replay or a reconnect overlap never doubles a row. Beside it: ``rejects``
(every frame or trade that could not become a tick, with its reason),
``gaps`` (missing trade-id ranges) and ``runs`` (one row per collection run).

A connection belongs to the thread that opened it: the collector opens its
writing store inside its writer thread; a notebook opens its own
(``TickStore(path, readonly=True)``) and, thanks to WAL, reads committed data
while the writer goes on. Ticks go in through multi-row ``INSERT`` statements
(:mod:`rtkit.store_insert`), one transaction per flush — sqlite-utils builds each
row's SQL in Python and caps its batches at 999 variables, which measured 3x
slower for this hot path.

Whose file it is and the tables made in it: :mod:`rtkit.store_schema`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rtkit.gaps import insert_gaps
from rtkit.kinds import Kind, get_kind
from rtkit.kinds.ledger import GAPS, REJECTS, insert_sql
from rtkit.kinds.sql import database
from rtkit.kinds.trades import TRADES
from rtkit.store_insert import insert_many
from rtkit.store_schema import create_schema, create_tables, file_identity, refusal

if TYPE_CHECKING:  # imported where they are used: a writer process needs none (issue 17)
    import numpy as np
    import pandas as pd
    import sqlite_utils

DEFAULT_DB = Path("data") / "ticks.sqlite"
#: longest raw frame text kept in ``rejects.frame`` (the length is kept too)
MAX_REJECT_TEXT = 4096

_INSERT_TICK = TRADES.insert_sql()
_INSERT_REJECT = insert_sql(REJECTS)
_INSERT_GAP = insert_sql(GAPS)
#: the ``ticks`` table's columns, in order (the contract above)
TICK_COLUMNS = TRADES.names
#: what SQLite (or the binding of a value) says about one row rather than about the
#: database: an int beyond 64 bits, a str with a lone surrogate, a type it cannot store,
#: a broken constraint. Busy, locked, full, read-only and I/O errors are
#: ``OperationalError`` and stay errors of the whole write.
ROW_ERRORS = (OverflowError, ValueError, TypeError, sqlite3.IntegrityError, sqlite3.DataError,
              sqlite3.InterfaceError, sqlite3.ProgrammingError)


class TickParts:
    """Trades that arrive in parts while their write is under way: ``TickStore.write``
    inserts each part as it comes, in the one transaction. The writer process reads a
    flush's next part from its pipe while SQLite inserts the one before (issue 17)."""

    def __init__(self, parts: Iterable[list]) -> None:
        self.parts = parts


class Inserted(int):
    """How many ticks a write inserted, with ``.kinds``: how many rows of each other
    kind of record."""

    kinds: dict[str, int]

    def __new__(cls, ticks: int, kinds: dict[str, int] | None = None) -> Inserted:
        obj = super().__new__(cls, ticks)
        obj.kinds = kinds or {}
        return obj


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message says what to do."""


def to_ns(when) -> int | None:
    """ns since the epoch (UTC) from a str, datetime, pandas Timestamp or int ns."""
    if when is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(when, (int, np.integer)) and not isinstance(when, bool):
        return int(when)
    try:
        ts = pd.Timestamp(when)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"cannot read {when!r} as a time; pass e.g. '2026-11-26 10:00', a datetime, "
            "a pandas Timestamp or int ns since the epoch"
        ) from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


def filters(venue=None, symbol=None, start=None, end=None) -> tuple[str, list]:
    """``(" WHERE …", args)`` for the usual venue/symbol/time filters ("" for none);
    ``start`` is inclusive and ``end`` exclusive on the ``timestamp`` column; a tuple
    of venues or symbols matches any of them."""
    where: list[str] = []
    args: list = []
    for column, value in (("venue", venue), ("symbol", symbol)):
        if isinstance(value, tuple):  # any of these spellings
            where.append(f"{column} IN ({', '.join('?' * len(value))})")
            args.extend(value)
        elif value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if (lo := to_ns(start)) is not None:
        where.append("timestamp >= ?")
        args.append(lo)
    if (hi := to_ns(end)) is not None:
        where.append("timestamp < ?")
        args.append(hi)
    return (" WHERE " + " AND ".join(where) if where else ""), args


class RowStore(Protocol):
    """What a replay writes its batches through: a :class:`TickStore`, or a store that
    wraps one and writes its own rows (``rtkit.onchain.ChainStore``)."""

    path: Path

    def write(self, ticks: Iterable[tuple] = (), rejects: Iterable[tuple] = (),
              gaps: Iterable[tuple] = (), records: Mapping[str, list] | None = None, *,
              refused: list | None = None) -> object: ...

    def close(self) -> None: ...


class TickStore:
    """Read and write ticks, rejects, gaps and runs in one SQLite file."""

    def __init__(
        self, path: str | Path = DEFAULT_DB, *, readonly: bool = False, busy_timeout_s: float = 5.0,
        adopt: bool = False, kinds: tuple[Kind, ...] = (),
    ) -> None:
        """Open (and, unless ``readonly``, create) the database at ``path``; ``kinds``
        are more kinds of record whose tables the file keeps (``rtkit.onchain``'s).

        A database that holds another application's tables and none of rtkit's is
        refused (rtkit would switch it to WAL mode and add its tables); ``adopt=True``
        adds them anyway.
        """
        self.path = Path(path).expanduser()  # "~/x.sqlite" is in the home folder
        self.readonly = readonly
        self.kinds = kinds
        self._tables_made: set[str] = {kind.name for kind in kinds}
        self._db: sqlite_utils.Database | None = None
        conn = None
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(
                        f"no database at '{self.path}'; check the path, or run a collector "
                        "or `rtkit replay FILE --db PATH` to create it"
                    )
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                       timeout=busy_timeout_s)
                conn.execute("SELECT count(*) FROM sqlite_master")  # not SQLite: said here
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=busy_timeout_s)
            if not readonly:
                if problem := refusal(conn, self.path, adopt):
                    raise StoreError(problem)
                create_schema(conn, self.kinds)
        except StoreError:
            if conn is not None:
                conn.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            hint = ("Pass the SQLite file a collector's db= wrote." if readonly else
                    "Pass db= a file path in a folder you can write to (e.g. 'data/ticks.sqlite').")
            raise StoreError(f"cannot {'read' if readonly else 'write'} the database at "
                             f"'{self.path}': {exc}. {hint}") from exc
        self.conn = conn
        # the file opened, so that ticks()' helper connections read no other put there since
        self._file_id = file_identity(self.path)

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils' view of the connection, made when first asked: writing ticks
        needs none (:func:`rtkit.kinds.sql.database`)."""
        if self._db is None:
            self._db = database(self.conn)
        return self._db

    # --- writing --------------------------------------------------------------
    def write(self, ticks: Iterable[tuple] = (), rejects: Iterable[tuple] = (),
              gaps: Iterable[tuple] = (), records: Mapping[str, list] | None = None, *,
              refused: list | None = None) -> Inserted:
        """Insert one flush in one transaction; returns how many ticks were new.

        ``ticks`` rows follow the ``ticks`` column order; ``rejects`` rows are
        ``(received_at, venue, reason, detail, frame, frame_bytes)``; ``gaps``
        rows ``(venue, symbol, first_missing, last_missing, missing, seen_at, kind)``.
        A tick already stored (same venue, symbol, trade_id) is skipped.
        ``records`` maps other kinds of record (``rtkit.kinds``) to rows in their
        columns' order; their tables are made on first use, a row whose key is stored
        is skipped, and how many of each were new is the result's ``.kinds``.

        Without ``refused`` a row SQLite refuses fails the whole write. With a list,
        such rows (see ROW_ERRORS) are appended to it as ``(table, row, error)`` and
        the others written, so that one bad row cannot hold a flush hostage; an error
        of the database itself (busy, full, …) still fails the whole write.
        """
        conn = self.conn
        # told only once the write commits
        set_aside: list[tuple] | None = None if refused is None else []
        with conn:
            if isinstance(ticks, TickParts):
                inserted = sum(self.insert_rows(_INSERT_TICK, part, "ticks", set_aside)
                               for part in ticks.parts)
            else:
                inserted = self.insert_rows(_INSERT_TICK, ticks, "ticks", set_aside)
            self.insert_rows(_INSERT_REJECT, rejects, "rejects", set_aside)
            insert_gaps(self.insert_rows, _INSERT_GAP, gaps, set_aside)
            new = {name: _insert_kind(self, name, rows, set_aside)
                   for name, rows in (records or {}).items()}
        if set_aside and refused is not None:
            refused += set_aside
        return Inserted(inserted, new)


    def insert_rows(self, sql: str, rows: Iterable[tuple], table: str,
                     refused: list | None) -> int:
        """Insert ``rows`` inside the caller's transaction, in multi-row statements
        (:mod:`rtkit.store_insert`); returns the rows inserted.

        With ``refused``, under a savepoint: if a row is refused the rows are halved
        and each half tried again, down to the single rows to set aside, which costs
        a few more statements per bad row and nothing when there is none.
        """
        conn = self.conn
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return 0
        if refused is None:
            before = conn.total_changes
            insert_many(conn, sql, rows)
            return conn.total_changes - before
        if not conn.in_transaction:
            conn.execute("BEGIN")  # the savepoint must not be the transaction itself
        conn.execute("SAVEPOINT rtkit_rows")
        before = conn.total_changes
        try:
            insert_many(conn, sql, rows)
        except ROW_ERRORS as exc:
            conn.execute("ROLLBACK TO rtkit_rows")
            conn.execute("RELEASE rtkit_rows")
            if len(rows) == 1:
                refused.append((table, rows[0], f"{type(exc).__name__}: {exc}"))
                return 0
            half = len(rows) // 2
            return (self.insert_rows(sql, rows[:half], table, refused)
                    + self.insert_rows(sql, rows[half:], table, refused))
        inserted = conn.total_changes - before
        conn.execute("RELEASE rtkit_rows")
        return inserted

    def start_run(self, *, name: str, venue: str, symbols: list[str], url: str, config: dict,
                  started_at: int) -> int:
        """Record a collection run's start; returns its id."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (name, venue, symbols, url, config, started_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (name, venue, ",".join(symbols), url, json.dumps(config, default=str), started_at),
            )
        assert cur.lastrowid is not None  # set by the INSERT just made
        return cur.lastrowid

    def finish_run(self, run_id: int, *, stopped_at: int, status: str, counters: dict) -> None:
        """Record a run's end and its final counters."""
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET stopped_at = ?, status = ?, counters = ? WHERE id = ?",
                (stopped_at, status, json.dumps(counters, default=str), run_id),
            )

    # --- reading ------------------------------------------------------------
    def count(self) -> int:
        """Number of stored ticks."""
        return self.conn.execute("SELECT count(*) FROM ticks").fetchone()[0]

    def ticks(self, venue: str | None = None, symbol: str | None = None, start=None,
              end=None) -> pd.DataFrame:
        """Stored ticks as a DataFrame with the ring's dtypes, in trade-time order.

        ``start`` is inclusive and ``end`` exclusive, on the trade ``timestamp``;
        each takes a str, datetime, pandas Timestamp or int ns. With a ``venue``, the
        ``symbol`` may be spelled as the collector accepts it (``btcusdt``).
        """
        import numpy as np
        import pandas as pd

        from rtkit.frame import empty_frame, tick_frame
        from rtkit.store_read import SIDE_CODE_SQL, ChangedWhileRead, read_int_ids

        spellings: str | tuple[str, ...] | None = symbol
        if venue is not None and isinstance(symbol, str):
            # the collector's spelling (btcusdt → BTC-USDT) or the one given
            spellings = tuple(dict.fromkeys((_stored_symbol(venue, symbol), symbol)))
        where, args = filters(venue, spellings, start, end)
        # trade ids come back as int64 only when every one is a canonical non-negative
        # integer (as the ring keeps them); the fast read tells, and reads only those
        try:
            frame = read_int_ids(self.conn, where, args, self._file_id)
        except ChangedWhileRead as exc:
            raise StoreError(f"the ticks of {exc} changed while they were read; "
                             "read them again") from exc
        if frame is not None:
            return frame
        sql = ("SELECT timestamp, received_at, venue, symbol, price, volume, "
               f"{SIDE_CODE_SQL}, trade_id FROM ticks" + where)
        # trade time, then arrival; equal times keep a symbol's id order (numeric ids
        # compare by length first), which is the order the venue traded them in
        order = " ORDER BY timestamp, received_at, length(trade_id), trade_id"
        rows = self.conn.execute(sql + order, args).fetchall()
        if not rows:
            return empty_frame()
        # numpy reads the row tuples into columns in C (no zip, no per-column lists)
        cols = np.array(rows, dtype=_row_dtype("O"))  # text trade ids
        del rows
        venue_codes, venue_names = pd.factorize(cols["venue"])
        symbol_codes, symbol_names = pd.factorize(cols["symbol"])
        return tick_frame(
            timestamp=cols["timestamp"].copy(), received_at=cols["received_at"].copy(),
            venue_codes=venue_codes, venues=list(venue_names),
            symbol_codes=symbol_codes, symbols=list(symbol_names),
            price=cols["price"].copy(), volume=cols["volume"].copy(),
            side_codes=cols["side"].copy(), trade_id=cols["trade_id"].copy(),
        )

    def rejects(self) -> pd.DataFrame:
        """The ``rejects`` table as a DataFrame (received_at as UTC times)."""
        return self._table("rejects", ("received_at",))

    def gaps(self) -> pd.DataFrame:
        """The ``gaps`` table as a DataFrame."""
        return self._table("gaps", ("seen_at",))

    def runs(self) -> pd.DataFrame:
        """The ``runs`` table as a DataFrame."""
        return self._table("runs", ("started_at", "stopped_at"))

    def _table(self, name: str, time_columns: tuple[str, ...]) -> pd.DataFrame:
        import pandas as pd

        df = pd.DataFrame(list(self.db[name].rows))
        if df.empty:
            return pd.DataFrame(columns=list(self.db[name].columns_dict))
        for column in time_columns:
            df[column] = pd.to_datetime(df[column], unit="ns", utc=True)
        return df

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TickStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TickStore('{self.path}'{', readonly' if self.readonly else ''})"


def _insert_kind(store: TickStore, name: str, rows: list, refused: list | None) -> int:
    """Rows of another kind of record into its table (made on its first rows)."""
    kind = get_kind(name)
    if name not in store._tables_made:  # the file may have it: then sqlite-utils is not needed
        create_tables(store.conn, (kind,))
        store._tables_made.add(name)
    return store.insert_rows(kind.insert_sql(), rows, kind.table, refused)


def _row_dtype(trade_id: str) -> np.dtype:
    import numpy as np

    return np.dtype([("timestamp", np.int64), ("received_at", np.int64), ("venue", object),
                     ("symbol", object), ("price", np.float64), ("volume", np.float64),
                     ("side", np.int8), ("trade_id", trade_id)])


def _stored_symbol(venue: str, symbol: str) -> str:
    """``symbol`` as the collector stores it for ``venue`` (``btcusdt`` → ``BTC-USDT``),
    or as given when the venue is unknown or cannot read it."""
    from rtkit.venues import get_adapter  # the venues' modules: not for a writer process

    try:
        return get_adapter(venue).normalise_symbol(symbol)
    except (ValueError, TypeError, KeyError, LookupError):
        return symbol
