"""The fast read behind ``TickStore.ticks``: integer trade ids, one snapshot, two cores.

Python's sqlite3 makes an object of every value fetched, and that is most of a read's
time. So the integer columns (times, side codes, ids) come as one text per column
(``group_concat``, built by SQLite in C) that numpy parses in C; only prices and volumes
are fetched as rows: SQLite 3.40's float-to-text is not exact, and an exact split of each
float into scaled integers in SQL cost SQLite about as much CPU per column as the rows
cost Python (two integers and a check a value where volumes span many powers of two).

SQLite releases the GIL while it steps, so the integer texts are built on helper
connections (this process's own sqlite3 library, each in a thread of its own) while the
caller's connection fetches the float rows. All of them read one snapshot: each helper
notes ``PRAGMA data_version`` before the caller's read transaction begins and again
once its own has begun; equal values mean no other connection committed in between,
so the helper's snapshot is the caller's. If a commit came in between, all of them
begin again (:data:`SNAPSHOT_TRIES` times), then the caller's connection reads alone.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from rtkit.frame import SIDE_CATEGORIES, empty_frame, tick_frame
from rtkit.store_schema import file_identity

#: helper connections building integer texts beside the caller's (which fetches the
#: float rows): one per spare core, at most two (the columns split in two groups)
HELPERS = min(2, max(1, (os.cpu_count() or 1) - 1))
#: how often the helpers' snapshots are lined up with the caller's before the caller
#: reads alone (each try fails only if a write commits in a window of microseconds)
SNAPSHOT_TRIES = 3
#: trade ids looked at before the read, to send a table of text ids to the text read
#: at once rather than after the integer texts are built
TEXT_ID_PROBE = 1000
#: the longest text of one integer in a group_concat, its comma included (-2**63,)
INT_TEXT_CHARS = 21

#: SQL for the side's code in :data:`SIDE_CATEGORIES` (-1, i.e. missing, for any other)
SIDE_CODE_SQL = ("CASE side " + " ".join(f"WHEN '{name}' THEN {code}"
                                          for code, name in enumerate(SIDE_CATEGORIES))
                  + " ELSE -1 END")
#: the integer columns, each as SQL; ``id_text`` (the stored text) is compared with
#: ``id`` (SQLite's integer of it, printed) to tell canonical integer ids
_INT_SQL = {"timestamp": "timestamp", "received_at": "received_at", "side": SIDE_CODE_SQL,
            "id": "CAST(trade_id AS INTEGER)", "id_text": "trade_id"}
#: the columns each connection builds, by how many helpers there are (the last group
#: holds ``id`` and ``id_text``, compared in one query)
_GROUPS = {0: (("timestamp", "received_at", "side", "id", "id_text"),),
           1: (("timestamp", "received_at", "side", "id", "id_text"),),
           2: (("timestamp", "received_at", "side"), ("id", "id_text"))}
#: SQL true when ``trade_id`` is a non-negative integer in canonical form that fits int64
#: (what ``str(int(v)) == v`` says in Python)
CANONICAL_INT = ("trade_id NOT GLOB '*[^0-9]*' AND trade_id != '' "
                 "AND CAST(CAST(trade_id AS INTEGER) AS TEXT) = trade_id")


class TextIds(Exception):
    """Some trade id is not a canonical integer: the ids are read as text."""


class ChangedWhileRead(Exception):
    """The connections disagree on a pair's rows (no shared snapshot)."""


def _after_snapshot() -> None:
    """Called between the caller's snapshot and the helpers' (a test commits here)."""


def read_int_ids(conn: sqlite3.Connection, where: str, args: list,
                 file_id: tuple[int, int] | None = None) -> pd.DataFrame | None:
    """``TickStore.ticks`` when every trade id is a canonical integer, else None.

    ``file_id`` (:func:`file_identity` of the file when ``conn`` opened it) lets helper
    connections read beside ``conn``; without it, or once the path names another file
    (replaced since), ``conn`` reads alone.

    Each (venue, symbol) is read in trade-id order (the primary key's, so no sort), in
    chunks that keep a text under SQLite's length limit; numpy then sorts by trade
    time, arrival and id, the order SQLite's ORDER BY gives.
    """
    probe = conn.execute(f"SELECT EXISTS (SELECT 1 FROM (SELECT trade_id FROM ticks{where} "
                         f"LIMIT {TEXT_ID_PROBE}) WHERE NOT ({CANONICAL_INT}))", args)
    if probe.fetchone()[0]:
        return None
    began = not conn.in_transaction
    helpers: list[sqlite3.Connection] = []
    try:
        if began:
            helpers, pairs = _begin_together(conn, where, args, file_id)
        else:  # the caller's own transaction: only its connection sees what it wrote
            pairs = _pairs(conn, where, args)
        if not pairs:
            return empty_frame()
        return _read(conn, helpers, pairs, where, args)
    except TextIds:
        return None
    finally:
        for helper in helpers:
            helper.close()  # ends its read transaction
        if began and conn.in_transaction:
            conn.execute("COMMIT")


def _pairs(conn: sqlite3.Connection, where: str, args: list) -> list[tuple[str, str, int]]:
    return conn.execute(f"SELECT venue, symbol, count(*) FROM ticks{where} "
                        "GROUP BY venue, symbol", args).fetchall()


def _data_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA data_version").fetchone()[0]


def _begin_together(conn: sqlite3.Connection, where: str, args: list,
                    file_id: tuple[int, int] | None) -> tuple[list[sqlite3.Connection], list]:
    """Begin the caller's read transaction and the helpers' on one snapshot; returns
    the helpers (none if they cannot be opened or lined up) and the pairs to read."""
    helpers = _open_helpers(conn, file_id)
    try:
        for _ in range(SNAPSHOT_TRIES if helpers else 0):
            before = [_data_version(helper) for helper in helpers]
            conn.execute("BEGIN")
            pairs = _pairs(conn, where, args)  # the caller's snapshot is taken here
            _after_snapshot()
            for helper in helpers:
                helper.execute("BEGIN")
            # each helper's read transaction began at its PRAGMA; the same version as
            # before the caller's began: no commit since, the same snapshot
            if [_data_version(helper) for helper in helpers] == before:
                return helpers, pairs
            for helper in helpers:
                helper.execute("COMMIT")
            conn.execute("COMMIT")
    except BaseException:
        for helper in helpers:
            helper.close()
        raise
    for helper in helpers:
        helper.close()
    conn.execute("BEGIN")
    return [], _pairs(conn, where, args)


def _open_helpers(conn: sqlite3.Connection,
                  file_id: tuple[int, int] | None) -> list[sqlite3.Connection]:
    """:data:`HELPERS` read-only connections to the caller's file, or none if that
    cannot be (a database in memory, a file they may not open)."""
    # the file the caller's connection opened, by the absolute name SQLite made of it
    # then (the store's path may be relative to a working directory since changed)
    file = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"),
                "")
    if not file or file_id is None:
        return []
    helpers: list[sqlite3.Connection] = []
    try:
        for _ in range(HELPERS):
            helpers.append(_open_helper(conn, Path(file)))
            _data_version(helpers[-1])  # it can read
    except sqlite3.Error:
        for helper in helpers:
            helper.close()
        return []
    if file_identity(file) != file_id:  # checked once they opened it: the caller's file
        for helper in helpers:
            helper.close()
        return []
    return helpers


def _open_helper(conn: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    helper = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False,
                             timeout=5.0)
    helper.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH))
    return helper


def _read(conn: sqlite3.Connection, helpers: list[sqlite3.Connection], pairs: list,
          where: str, args: list) -> pd.DataFrame:
    cond = where + (" AND" if where else " WHERE") + " venue = ? AND symbol = ?"
    groups = _GROUPS[len(helpers)]
    chunk = max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) // INT_TEXT_CHARS - 1)
    chunks = _chunks(conn, pairs, cond, args, chunk)
    if helpers:
        with ThreadPoolExecutor(len(helpers)) as pool:
            futures = [pool.submit(_int_columns, helper, group, chunks, cond, args, chunk)
                       for helper, group in zip(helpers, groups, strict=True)]
            try:
                floats = _float_rows(conn, pairs, cond, args)
            finally:  # the helpers finish before their connections close
                found = [future.result() for future in futures]
    else:
        found = [_int_columns(conn, groups[0], chunks, cond, args, chunk)]
        floats = _float_rows(conn, pairs, cond, args)
    ints = {name: column for columns in found for name, column in columns.items()}
    return _frame(pairs, ints, floats)


def _chunks(conn: sqlite3.Connection, pairs: list, cond: str, args: list,
            chunk: int) -> list[tuple[str, str, int, list[tuple[str, str | None]]]]:
    """Each pair with the trade-id ranges ``(after, up to)`` that its texts are built
    in, ``chunk`` rows each at most (``None``: to the end); every connection reads the
    same ranges, so that their rows line up."""
    out = []
    for venue, symbol, count in pairs:
        bounds: list[str] = [""]  # every id sorts after the empty text
        for _ in range((count - 1) // chunk):  # only past SQLite's length limit
            bounds.append(conn.execute(
                f"SELECT trade_id FROM ticks{cond} AND trade_id > ? ORDER BY trade_id "
                f"LIMIT 1 OFFSET {chunk - 1}", [*args, venue, symbol, bounds[-1]]).fetchone()[0])
        ranges: list[tuple[str, str | None]] = list(zip(bounds, [*bounds[1:], None], strict=True))
        out.append((venue, symbol, count, ranges))
    return out


def _int_columns(conn: sqlite3.Connection, names: tuple[str, ...], chunks: list, cond: str,
                 args: list, chunk: int) -> dict[str, list[np.ndarray]]:
    """The integer columns ``names`` of every pair, an array per pair; raises
    :class:`TextIds` if some trade id is not a canonical integer."""
    sql = (f"SELECT count(*), {', '.join(f'group_concat({name})' for name in names)} "
           f"FROM (SELECT {', '.join(f'{_INT_SQL[name]} AS {name}' for name in names)} "
           f"FROM ticks{cond} AND trade_id > ?")
    # the LIMIT (never reached: a range holds ``chunk`` rows at most) keeps SQLite from
    # flattening the subquery or dropping its ORDER BY: the texts follow the id order
    order = f" ORDER BY trade_id LIMIT {chunk})"
    out: dict[str, list[np.ndarray]] = {name: [] for name in names if name != "id_text"}
    for venue, symbol, count, ranges in chunks:
        parts: dict[str, list[np.ndarray]] = {name: [] for name in out}
        read = 0
        for after, up_to in ranges:
            n, *texts = conn.execute(
                sql + order if up_to is None else sql + " AND trade_id <= ?" + order,
                [*args, venue, symbol, after, *([] if up_to is None else [up_to])]).fetchone()
            if not n:
                continue
            column = dict(zip(names, texts, strict=True))
            if "id_text" in column:
                # equal texts: no id holds a comma (SQLite's integers have none), so
                # each id is its integer's text; no '-': none is negative
                ids = column.pop("id_text")
                if ids != column["id"] or "-" in ids:
                    raise TextIds
            for name, text in column.items():
                parts[name].append(np.fromstring(text, dtype=np.int64, sep=","))
            read += n
        if read != count or any(sum(map(len, p)) != count for p in parts.values()):
            raise ChangedWhileRead(f"{venue} {symbol}")
        for name, p in parts.items():
            out[name].append(np.concatenate(p) if len(p) != 1 else p[0])
    return out


def _float_rows(conn: sqlite3.Connection, pairs: list, cond: str,
                args: list) -> list[np.ndarray]:
    """Each pair's (price, volume) rows in trade-id order, flattened straight into
    one array (no list of a million tuples kept alive)."""
    out = []
    for venue, symbol, count in pairs:
        cursor = conn.execute(f"SELECT price, volume FROM ticks{cond} ORDER BY trade_id",
                              [*args, venue, symbol])
        try:
            floats = np.fromiter(itertools.chain.from_iterable(cursor), np.float64,
                                 count=2 * count).reshape(count, 2)
        except ValueError as exc:  # fewer rows than counted
            raise ChangedWhileRead(f"{venue} {symbol}") from exc
        if cursor.fetchone() is not None:
            raise ChangedWhileRead(f"{venue} {symbol}")
        out.append(floats)
    return out


def _frame(pairs: list, ints: dict[str, list[np.ndarray]],
           floats: list[np.ndarray]) -> pd.DataFrame:
    ts, recv, side, tid = (_joined(ints[name]) for name in
                           ("timestamp", "received_at", "side", "id"))
    both = _joined(floats)
    if len(pairs) == 1 and _in_order(ts, recv, tid):  # one pair read in its time order
        return tick_frame(
            timestamp=ts, received_at=recv, venue_codes=np.zeros(len(ts), np.int8),
            venues=[pairs[0][0]], symbol_codes=np.zeros(len(ts), np.int8),
            symbols=[pairs[0][1]], price=both[:, 0].copy(), volume=both[:, 1].copy(),
            side_codes=side.astype(np.int8), trade_id=tid,
        )
    pair = np.repeat(np.arange(len(pairs)), [count for _, _, count in pairs])
    order = np.lexsort((tid, recv, ts))
    # categories in the order of first appearance, as pd.factorize of the rows gives
    pair_codes, pair_seen = pd.factorize(pair[order])
    venue_codes, venues = pd.factorize(np.array([pairs[i][0] for i in pair_seen],
                                                dtype=object))
    symbol_codes, symbols = pd.factorize(np.array([pairs[i][1] for i in pair_seen],
                                                  dtype=object))
    return tick_frame(
        timestamp=ts[order], received_at=recv[order],
        venue_codes=venue_codes[pair_codes], venues=list(venues),
        symbol_codes=symbol_codes[pair_codes], symbols=list(symbols),
        price=both[order, 0], volume=both[order, 1],
        side_codes=side[order].astype(np.int8), trade_id=tid[order],
    )


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _in_order(ts: np.ndarray, recv: np.ndarray, tid: np.ndarray) -> bool:
    """True when the rows are already in (timestamp, received_at, id) order."""
    if len(ts) < 2:
        return True
    step = np.diff(ts)
    if (step < 0).any():
        return False
    tie = step == 0
    if not tie.any():
        return True
    recv_step = np.diff(recv)[tie]
    return bool(((recv_step > 0) | ((recv_step == 0) & (np.diff(tid)[tie] > 0))).all())
